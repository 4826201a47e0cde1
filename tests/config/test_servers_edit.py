"""Planned edits of servers.json: shown first, written only when applied, never over a newer file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from approver.config.servers import SecretResolver, load_servers
from approver.config.servers_edit import EditError, apply_edit, plan_add, plan_remove, plan_set_disabled

ENTRY = {"command": "uvx", "args": ["mcp-server-time"]}


@pytest.fixture
def servers_file(tmp_path: Path) -> Path:
    path = tmp_path / "servers.json"
    document = {
        "mcpServers": {
            "github": {
                "type": "http",
                "url": "https://x/mcp",
                "headers": {"Authorization": "Bearer ${keyring:gh}"},
            },
            "time": ENTRY,
        }
    }
    path.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    return path


def test_adding_a_server_shows_the_diff_and_writes_only_when_applied(servers_file: Path) -> None:
    before = servers_file.read_text()
    edit = plan_add(servers_file, "fetch", {"command": "uvx", "args": ["mcp-server-fetch"]})
    assert '+    "fetch": {' in edit.diff() and servers_file.read_text() == before
    apply_edit(edit)
    data = json.loads(servers_file.read_text())
    assert list(data["mcpServers"]) == ["github", "time", "fetch"]
    assert data["mcpServers"]["github"]["headers"]["Authorization"] == "Bearer ${keyring:gh}"  # not resolved
    assert stat.S_IMODE(servers_file.stat().st_mode) == 0o600


def test_a_new_file_is_created_by_the_first_add(tmp_path: Path) -> None:
    path = tmp_path / "config" / "servers.json"
    edit = plan_add(path, "time", ENTRY)
    assert edit.before is None and edit.diff().startswith("--- /dev/null")
    apply_edit(edit)
    assert load_servers(path, SecretResolver()).servers[0].name == "time"


def test_disable_enable_and_remove_change_only_that_entry(servers_file: Path) -> None:
    apply_edit(plan_set_disabled(servers_file, "time", True))
    assert json.loads(servers_file.read_text())["mcpServers"]["time"] == {**ENTRY, "disabled": True}
    apply_edit(plan_set_disabled(servers_file, "time", False))
    assert json.loads(servers_file.read_text())["mcpServers"]["time"] == ENTRY
    edit = plan_remove(servers_file, "time")
    assert '-    "time": {' in edit.diff()
    apply_edit(edit)
    assert list(json.loads(servers_file.read_text())["mcpServers"]) == ["github"]


@pytest.mark.parametrize(
    ("name", "entry", "message"),
    [
        ("time", ENTRY, "already has a server named time"),
        ("bad name", ENTRY, "is not"),
        ("web", {"type": "http", "url": "ftp://x"}, "/mcpServers/web/url"),
        ("x", {"comand": "uvx"}, "did you mean `command`?"),
    ],
)
def test_a_bad_addition_is_refused_before_anything_is_shown(
    servers_file: Path, name: str, entry: dict[str, object], message: str
) -> None:
    with pytest.raises(EditError, match=message.replace("?", r"\?")):
        plan_add(servers_file, name, entry)


def test_an_edit_planned_before_someone_else_changed_the_file_is_refused(servers_file: Path) -> None:
    edit = plan_remove(servers_file, "time")
    servers_file.write_text(servers_file.read_text().replace("mcp-server-time", "mcp-server-time2"))
    with pytest.raises(EditError, match="changed since"):
        apply_edit(edit)
    assert "mcp-server-time2" in servers_file.read_text()


def test_an_unknown_server_cannot_be_disabled_or_removed(servers_file: Path) -> None:
    with pytest.raises(EditError, match="no server named nope"):
        plan_set_disabled(servers_file, "nope", True)
    with pytest.raises(EditError, match="no server named nope"):
        plan_remove(servers_file, "nope")
