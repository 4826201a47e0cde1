"""``approver install|uninstall``: rewrite a client's config to go through approver, and restore it."""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from approver.clients import jsonedit
from approver.clients.formats import CLIENTS, ClientFormat
from approver.clients.routing import (
    Route,
    RoutingError,
    apply_install,
    apply_uninstall,
    plan_install,
    plan_uninstall,
    record_file,
)
from approver.clients.status import routing_status

DATA = Path(__file__).parent.parent / "data" / "clients"
BRIDGE = Route("claude-code", ("/opt/approver/bin/approver",))
CLAUDE_CODE_SERVERS = {"sentry", "github", "airtable", "linear", "asana"}


def copy(name: str, target: Path, mode: int = 0o600) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / name, target)
    target.chmod(mode)
    return target


def install(
    client: ClientFormat, path: Path, route: Route = BRIDGE, known: set[str] | None = None
) -> Path | None:
    change = plan_install(client, path, route, known if known is not None else CLAUDE_CODE_SERVERS)
    return apply_install(change)


def test_install_replaces_only_the_server_table_keeping_every_other_key_and_the_indentation(
    tmp_path: Path,
) -> None:
    path = copy("claude.json", tmp_path / ".claude.json")
    original = path.read_text("utf-8")

    install(CLIENTS["claude-code"], path)

    text = path.read_text("utf-8")
    data, before = json.loads(text), json.loads(original)
    assert data["mcpServers"] == {
        "approver": {
            "type": "stdio",
            "command": "/opt/approver/bin/approver",
            "args": ["connect", "--client", "claude-code"],
        }
    }
    assert {k: v for k, v in data.items() if k != "mcpServers"} == {
        k: v for k, v in before.items() if k != "mcpServers"
    }
    assert list(data) == list(before)  # key order too
    start, end = jsonedit.find_span(original, ["mcpServers"])  # type: ignore[misc]
    new_start = text.index('"mcpServers": {\n    "approver"') + len('"mcpServers": ')
    assert text[:new_start] == original[:start] and text.endswith(original[end:])
    assert '\n    "approver": {\n      "type": "stdio",' in text


def test_install_keeps_vscode_comments_tabs_and_inputs(tmp_path: Path) -> None:
    path = copy("vscode-project/.vscode/mcp.json", tmp_path / "p" / ".vscode" / "mcp.json", 0o644)
    route = Route("vscode", ("approver",), data_dir=Path("/data/approver"))

    install(CLIENTS["vscode"], path, route, known={"perplexity", "fetch", "github"})

    text = path.read_text("utf-8")
    assert text.startswith("{\n\t// MCP servers for this workspace.")
    assert '\t"inputs": [\n\t\t{\n\t\t\t"type": "promptString",' in text
    assert (
        '\t"servers": {\n\t\t"approver": {\n\t\t\t"type": "stdio",\n\t\t\t"command": "approver",\n'
        '\t\t\t"args": [\n\t\t\t\t"--data-dir",\n\t\t\t\t"/data/approver",' in text
    )
    assert text.endswith("\t},\n}\n")  # the trailing commas VS Code accepts stay
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_installing_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    path = copy("claude_desktop_config.json", tmp_path / "claude_desktop_config.json")
    client = CLIENTS["claude-desktop"]
    known = {"filesystem", "github", "brave-search", "pricing"}
    install(client, path, known=known)
    after_first = path.read_bytes()

    again = plan_install(client, path, BRIDGE, known)

    assert not again.changed and again.diff() == ""
    assert apply_install(again) is None
    assert path.read_bytes() == after_first
    assert len(json.loads(record_file(path).read_text())["installs"]) == 1


def test_uninstall_restores_the_original_bytes_and_mode_and_cleans_up(tmp_path: Path) -> None:
    path = copy("windsurf_mcp_config.json", tmp_path / "mcp_config.json", 0o640)
    original = path.read_bytes()
    client = CLIENTS["windsurf"]
    backup = install(client, path, known={"github", "userjot", "figma"})
    assert backup is not None and backup.read_bytes() == original
    assert backup.name.startswith("mcp_config.json.approver-backup-")

    change = plan_uninstall(client, path)
    assert change.conflict is None and change.after == original.decode()
    apply_uninstall(change)

    assert path.read_bytes() == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not backup.exists() and not record_file(path).exists()
    second = plan_uninstall(client, path)
    assert not second.changed and "nothing to restore" in second.message


def test_the_backup_of_a_private_file_is_private(tmp_path: Path) -> None:
    path = copy("claude.json", tmp_path / ".claude.json", 0o600)
    backup = install(CLIENTS["claude-code"], path)
    assert backup is not None
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(record_file(path).stat().st_mode) == 0o600


def test_uninstall_refuses_when_the_file_changed_since_install_unless_forced(tmp_path: Path) -> None:
    path = copy("claude.json", tmp_path / ".claude.json")
    original = path.read_bytes()
    client = CLIENTS["claude-code"]
    install(client, path)
    path.write_text(path.read_text().replace('"numStartups": 42', '"numStartups": 43'))

    change = plan_uninstall(client, path)
    assert change.conflict is not None and "changed since approver install wrote it" in change.conflict
    with pytest.raises(RoutingError, match="--force"):
        apply_uninstall(change)
    assert b'"numStartups": 43' in path.read_bytes()

    apply_uninstall(change, force=True)
    assert path.read_bytes() == original


def test_uninstall_undoes_installs_newest_first(tmp_path: Path) -> None:
    path = copy("claude_desktop_config.json", tmp_path / "claude_desktop_config.json")
    original = path.read_bytes()
    client = CLIENTS["claude-desktop"]
    known = {"filesystem", "github", "brave-search", "pricing"}
    first = datetime(2026, 1, 1, tzinfo=UTC)
    apply_install(plan_install(client, path, BRIDGE, known), now=first)
    routed_once = path.read_bytes()
    other = Route("claude-desktop", ("/usr/local/bin/approver",))
    apply_install(plan_install(client, path, other, known), now=datetime(2026, 1, 2, tzinfo=UTC))

    apply_uninstall(plan_uninstall(client, path))
    assert path.read_bytes() == routed_once
    apply_uninstall(plan_uninstall(client, path))
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claude_desktop_config.json"]


def test_install_refuses_to_drop_servers_approver_does_not_know_unless_told(tmp_path: Path) -> None:
    path = copy("claude_desktop_config.json", tmp_path / "claude_desktop_config.json")
    original = path.read_bytes()
    change = plan_install(CLIENTS["claude-desktop"], path, BRIDGE, {"filesystem", "github"})

    assert change.unknown == ("brave-search", "pricing")
    with pytest.raises(RoutingError, match="approver import claude-desktop"):
        apply_install(change)
    assert path.read_bytes() == original and not record_file(path).exists()

    apply_install(change, drop_unknown=True)
    assert list(json.loads(path.read_text())["mcpServers"]) == ["approver"]


def test_install_into_a_missing_file_creates_it_and_uninstall_removes_it(tmp_path: Path) -> None:
    path = tmp_path / ".cursor" / "mcp.json"
    client = CLIENTS["cursor"]
    assert install(client, path, known=set()) is None
    assert json.loads(path.read_text()) == {
        "mcpServers": {
            "approver": {
                "command": "/opt/approver/bin/approver",
                "args": ["connect", "--client", "claude-code"],
            }
        }
    }
    apply_uninstall(plan_uninstall(client, path))
    assert not path.exists() and not record_file(path).exists()


def test_a_symlinked_config_is_edited_where_it_really_lives(tmp_path: Path) -> None:
    real = copy("claude_desktop_config.json", tmp_path / "dotfiles" / "claude.json")
    link = tmp_path / "Claude" / "claude_desktop_config.json"
    link.parent.mkdir()
    link.symlink_to(real)
    install(CLIENTS["claude-desktop"], link, known={"filesystem", "github", "brave-search", "pricing"})
    assert link.is_symlink() and "approver" in json.loads(real.read_text())["mcpServers"]


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (
            "claude-code",
            {"type": "http", "url": "http://127.0.0.1:39217/mcp", "headers": {"Authorization": "Bearer T0K"}},
        ),
        ("cursor", {"url": "http://127.0.0.1:39217/mcp", "headers": {"Authorization": "Bearer T0K"}}),
        (
            "vscode",
            {"type": "http", "url": "http://127.0.0.1:39217/mcp", "headers": {"Authorization": "Bearer T0K"}},
        ),
        ("windsurf", {"serverUrl": "http://127.0.0.1:39217/mcp", "headers": {"Authorization": "Bearer T0K"}}),
    ],
)
def test_the_http_route_uses_each_clients_own_url_key(client: str, expected: dict[str, object]) -> None:
    route = Route(client, ("approver",), http_url="http://127.0.0.1:39217/mcp", token="T0K")
    assert route.entry(CLIENTS[client]) == expected


def test_an_http_install_makes_the_file_private_because_it_holds_a_token(tmp_path: Path) -> None:
    path = copy("windsurf_mcp_config.json", tmp_path / "mcp_config.json", 0o644)
    route = Route("windsurf", ("approver",), http_url="http://127.0.0.1:1/mcp", token="T0K")
    install(CLIENTS["windsurf"], path, route, known={"github", "userjot", "figma"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_claude_desktop_cannot_be_routed_over_http() -> None:
    route = Route("claude-desktop", ("approver",), http_url="http://127.0.0.1:1/mcp", token="T0K")
    with pytest.raises(RoutingError, match="stdio bridge"):
        route.entry(CLIENTS["claude-desktop"])


def test_routing_status_tells_routed_from_partial_direct_empty_and_missing(tmp_path: Path) -> None:
    client = CLIENTS["claude-code"]
    path = copy("claude.json", tmp_path / ".claude.json")
    assert routing_status("claude-code", tmp_path / "nope.json").state == "missing"
    direct = routing_status(client, path)
    assert direct.state == "direct" and "airtable" in direct.bypassing and not direct.installed

    install(client, path)
    partial = routing_status(client, path)
    # The project-scoped postgres server in ~/.claude.json still bypasses approver.
    assert partial.state == "partial" and partial.bypassing == ("postgres (project /home/ada/src/shop)",)
    assert partial.installed

    desktop = copy("claude_desktop_config.json", tmp_path / "claude_desktop_config.json")
    install(CLIENTS["claude-desktop"], desktop, known={"filesystem", "github", "brave-search", "pricing"})
    routed = routing_status("claude-desktop", desktop)
    assert routed.routed and routed.bypassing == ()

    empty = tmp_path / "empty.json"
    empty.write_text('{"mcpServers": {}}')
    assert routing_status("cursor", empty).state == "empty"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    bad = routing_status("cursor", broken)
    assert bad.state == "unreadable" and "not valid JSON" in bad.detail


def test_default_paths_follow_each_platform() -> None:
    home = Path("/home/ada")
    desktop = CLIENTS["claude-desktop"]
    assert desktop.default_path(home, "linux", {}) == home / ".config/Claude/claude_desktop_config.json"
    assert desktop.default_path(home, "darwin", {}) == (
        home / "Library/Application Support/Claude/claude_desktop_config.json"
    )
    appdata = {"APPDATA": "C:/Users/ada/AppData/Roaming"}
    assert desktop.default_path(home, "win32", appdata) == Path(
        "C:/Users/ada/AppData/Roaming/Claude/claude_desktop_config.json"
    )
    assert CLIENTS["claude-code"].default_path(home, "linux", {}) == home / ".claude.json"
    assert CLIENTS["cursor"].default_path(home, "darwin", {}) == home / ".cursor/mcp.json"
    assert CLIENTS["vscode"].default_path(home, "linux", {"XDG_CONFIG_HOME": "/x"}) == Path(
        "/x/Code/User/mcp.json"
    )
    assert (
        CLIENTS["windsurf"].default_path(home, "win32", appdata) == home / ".codeium/windsurf/mcp_config.json"
    )


def test_jsonc_parsing_ignores_comments_and_trailing_commas_but_not_slashes_in_strings() -> None:
    text = '{\n  // a comment\n  "url": "https://x/y", /* b */\n  "list": [1, 2,],\n}\n'
    assert jsonedit.parse(text, "f") == {"url": "https://x/y", "list": [1, 2]}
    assert len(jsonedit.strip_jsonc(text)) == len(text)


def test_set_member_keeps_crlf_line_endings() -> None:
    text = '{\r\n  "a": 1,\r\n  "mcpServers": {}\r\n}\r\n'
    result = jsonedit.set_member(text, ["mcpServers"], {"x": {"command": "y"}})
    assert "\n" not in result.replace("\r\n", "")
    assert json.loads(result) == {"a": 1, "mcpServers": {"x": {"command": "y"}}}


def test_the_config_file_is_never_left_half_written(tmp_path: Path) -> None:
    path = copy("claude_desktop_config.json", tmp_path / "claude_desktop_config.json")
    install(CLIENTS["claude-desktop"], path, known={"filesystem", "github", "brave-search", "pricing"})
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [] and os.access(path, os.R_OK)
