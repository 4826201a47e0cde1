"""Installing Claude Code's hook: one PreToolUse entry added, everything else kept, undone byte for byte."""

from __future__ import annotations

import json
import shlex
import stat
from pathlib import Path

import pytest

from approver.clients.formats import CLIENTS
from approver.clients.hooks import (
    HOOK_TIMEOUT,
    hook_command,
    hook_installed,
    is_approver_hook,
    plan_hook_install,
    settings_path,
)
from approver.clients.routing import apply_install, apply_uninstall, plan_uninstall
from approver.errors import ConfigError

APPROVER = ("/opt/approver venv/bin/approver",)
SETTINGS = """{
    "model": "opus",
    "permissions": {"allow": ["Bash(npm test)"], "deny": []},
    "hooks": {
        "PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "prettier --write"}]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/opt/guard.sh"}]}]
    },
    "env": {"MCP_TOOL_TIMEOUT": "180000"}
}
"""


def test_the_command_runs_approvers_hook_with_the_timeout_and_quotes_paths() -> None:
    command = hook_command(APPROVER, Path("/data dir"))
    assert shlex.split(command) == [
        "/opt/approver venv/bin/approver",
        "--data-dir",
        "/data dir",
        "hook",
        "claude-code",
        "--timeout",
        "600",
    ]
    assert is_approver_hook({"type": "command", "command": command})
    assert not is_approver_hook({"type": "command", "command": "/opt/guard.sh"})


def test_install_adds_one_hook_for_every_tool_first_and_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(SETTINGS, "utf-8")
    change = plan_hook_install(path, hook_command(APPROVER))
    assert change.changed and path.read_text("utf-8") == SETTINGS  # nothing written by planning
    backup = apply_install(change)
    after = json.loads(path.read_text("utf-8"))
    before = json.loads(SETTINGS)
    ours, theirs = after["hooks"]["PreToolUse"]
    assert ours == {
        "matcher": "*",
        "hooks": [{"type": "command", "command": hook_command(APPROVER), "timeout": HOOK_TIMEOUT}],
    }
    assert theirs == before["hooks"]["PreToolUse"][0]
    assert {key: value for key, value in after.items() if key != "hooks"} == {
        key: value for key, value in before.items() if key != "hooks"
    }
    assert after["hooks"]["PostToolUse"] == before["hooks"]["PostToolUse"]
    assert path.read_text("utf-8").startswith('{\n    "model": "opus",\n    "permissions"')
    assert backup is not None and backup.read_text("utf-8") == SETTINGS
    assert hook_installed(path)


def test_installing_again_changes_nothing_and_uninstall_restores_the_file_byte_for_byte(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(SETTINGS.encode())
    path.chmod(0o640)
    apply_install(plan_hook_install(path, hook_command(APPROVER)))
    assert not plan_hook_install(path, hook_command(APPROVER)).changed
    apply_uninstall(plan_uninstall(CLIENTS["claude-code"], path))
    assert path.read_bytes() == SETTINGS.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not hook_installed(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_a_hook_for_another_approver_command_is_replaced_not_doubled(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    apply_install(plan_hook_install(path, hook_command(("/old/approver",))))
    change = plan_hook_install(path, hook_command(APPROVER))
    assert change.after is not None
    entries = json.loads(change.after)["hooks"]["PreToolUse"]
    assert [hook["command"] for entry in entries for hook in entry["hooks"]] == [hook_command(APPROVER)]


def test_a_missing_file_is_created_and_uninstall_removes_it_again(tmp_path: Path) -> None:
    path = tmp_path / "project" / ".claude" / "settings.json"
    apply_install(plan_hook_install(path, hook_command(APPROVER)))
    assert json.loads(path.read_text("utf-8"))["hooks"]["PreToolUse"][0]["matcher"] == "*"
    apply_uninstall(plan_uninstall(CLIENTS["claude-code"], path))
    assert not path.exists()


def test_settings_approver_cannot_read_are_refused_with_where_and_why(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"hooks": {"PreToolUse": {"matcher": "*"}}}', "utf-8")
    with pytest.raises(ConfigError, match="/hooks/PreToolUse"):
        plan_hook_install(path, hook_command(APPROVER))
    path.write_text("{", "utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        plan_hook_install(path, hook_command(APPROVER))


def test_the_default_file_is_the_users_claude_settings(tmp_path: Path) -> None:
    assert settings_path(tmp_path) == tmp_path / ".claude" / "settings.json"


def test_settings_of_any_shape_are_read_as_not_installed_rather_than_failing(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    for text in ('{"hooks": []}', '{"hooks": {"PreToolUse": 3}}', "[]", "{", ""):
        path.write_text(text, "utf-8")
        assert not hook_installed(path), text
    assert not hook_installed(tmp_path / "missing.json")
