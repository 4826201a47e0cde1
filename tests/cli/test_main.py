"""The ``approver`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from approver.audit.log import AuditLog, DecisionRecord
from approver.testing.harness import upstream_entry, write_config

TIMEOUT = 60


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    dirs = ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [sys.executable, "-m", "approver", *dirs, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


def test_policy_check_accepts_the_policylayer_example(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "version": "1",
                "default": "deny",
                "tools": {
                    "close_session": {
                        "limits": [
                            {"counter": "close_session_rate", "window": "minute", "max": 30, "scope": "grant"}
                        ]
                    }
                },
            }
        )
    )
    result = run(tmp_path, "policy", "check", str(policy))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:")


def test_policy_check_names_the_pointer_of_a_mistake(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text('{"version": "1", "tools": {"x": {"action": "perhaps"}}}')
    result = run(tmp_path, "policy", "check", str(policy))
    assert result.returncode == 1
    assert "/tools/x/action" in result.stderr and "perhaps" in result.stderr


def test_url_and_token_print_the_same_client_token(tmp_path: Path) -> None:
    url = run(tmp_path, "url", "--client", "cursor")
    token = run(tmp_path, "token", "--client", "cursor")
    other = run(tmp_path, "token", "--client", "vscode")
    assert url.returncode == token.returncode == 0
    assert url.stdout.strip() == f"http://127.0.0.1:39217/t/{token.stdout.strip()}/mcp"
    assert other.stdout.strip() != token.stdout.strip()
    assert "not running" in url.stderr
    assert "readable only by you" in token.stderr


def test_an_invalid_client_name_is_refused_clearly(tmp_path: Path) -> None:
    result = run(tmp_path, "token", "--client", "no spaces please")
    assert result.returncode == 2
    assert "client name" in result.stderr and "Traceback" not in result.stderr


def test_audit_verify_passes_on_an_intact_log_and_names_an_edited_row(tmp_path: Path) -> None:
    db = tmp_path / "data" / "audit.db"
    db.parent.mkdir(parents=True)
    with AuditLog(db) as log:
        for i in range(5):
            log.record_decision(
                DecisionRecord(
                    call_id=f"c{i}",
                    client="c",
                    server="s",
                    tool="s__t",
                    upstream_tool="t",
                    risk_class="read",
                    risk_level="low",
                    risk_reasons=[],
                    arguments=b"{}",
                    decision="allow",
                    decided_by="policy",
                    rule="default",
                    reason="",
                )
            )
    intact = run(tmp_path, "audit", "verify")
    with sqlite3.connect(db) as raw:
        triggers = [row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        for trigger in triggers:
            raw.execute(f"DROP TRIGGER {trigger}")
        raw.execute("UPDATE events SET decision = 'deny' WHERE id = 3")
    tampered = run(tmp_path, "audit", "verify")
    assert intact.returncode == 0 and intact.stdout.startswith("ok: 5 rows")
    assert tampered.returncode == 1
    assert "row 3" in tampered.stderr


def test_tools_json_lists_every_tool_with_risk_and_action(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {"test": upstream_entry("test")},
        {"version": "1", "default": "deny", "tools": {"test__echo": {"action": "allow"}}},
    )
    result = run(tmp_path, "tools", "--json")
    assert result.returncode == 0, result.stderr
    tools = {tool["name"]: tool for tool in json.loads(result.stdout)}
    echo, delete = tools["test__echo"], tools["test__delete_note"]
    assert {"name", "server", "tool", "risk_class", "risk_level", "reasons", "action"} <= set(echo)
    assert echo["action"] == "allow" and echo["server"] == "test" and echo["tool"] == "echo"
    assert delete["risk_class"] == "destructive" and delete["action"] == "deny"
    assert delete["reasons"]


def test_serve_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "loopback" in result.stderr and "Traceback" not in result.stderr


def test_serve_starts_says_where_it_listens_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    dirs = ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data")]
    process = subprocess.Popen(
        [sys.executable, "-m", "approver", *dirs, "serve", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "listening on" in line:
            break
    runtime = json.loads((tmp_path / "data" / "gateway.json").read_text())
    process.send_signal(signal.SIGTERM)
    try:
        rest = process.stderr.read()
        code = process.wait(timeout=TIMEOUT)
    finally:
        process.kill()
        process.stderr.close()
    assert code == 0, rest
    assert runtime["pid"] == process.pid
    assert any("No servers configured yet" in line for line in lines)
    assert not (tmp_path / "data" / "gateway.json").exists()


@pytest.mark.parametrize("command", [["audit", "export", "--format", "csv"], ["audit", "tail"]])
def test_audit_commands_on_a_missing_log_say_so(tmp_path: Path, command: list[str]) -> None:
    result = run(tmp_path, *command)
    assert result.returncode == 0
    assert "no audit log yet" in result.stderr


def start_and_stop(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run approver until it says it listens, then SIGTERM it; returns (exit code, stderr)."""
    dirs = ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data")]
    process = subprocess.Popen(
        [sys.executable, "-m", "approver", *dirs, *args], stderr=subprocess.PIPE, text=True, env=env
    )
    assert process.stderr is not None
    lines = []
    try:
        for line in process.stderr:
            lines.append(line)
            if "listening on" in line:
                break
        process.send_signal(signal.SIGTERM)
        lines.append(process.stderr.read())
        code = process.wait(timeout=TIMEOUT)
    finally:
        process.kill()
        process.stderr.close()
    return code, "".join(lines)


def without_display() -> dict[str, str]:
    hidden = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    env = {name: value for name, value in os.environ.items() if name not in hidden}
    return env | {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def test_the_desktop_app_starts_the_gateway_and_quits_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = dict(
        os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", QT_QPA_PLATFORM="offscreen"
    )
    code, stderr = start_and_stop(tmp_path, env, "app", "--port", "0")
    assert code == 0, stderr
    assert "No servers configured yet" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "data" / "gateway.json").exists()


def test_without_a_display_approver_runs_the_gateway_headless_and_says_why(tmp_path: Path) -> None:
    code, stderr = start_and_stop(tmp_path, without_display(), "app", "--port", "0")
    assert code == 0, stderr
    assert "there is no display here" in stderr and "running the gateway headless" in stderr


def test_the_demo_without_a_display_says_it_needs_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "approver", "demo"],
        capture_output=True,
        text=True,
        env=without_display(),
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert "the demo shows approval dialogs, and there is no display here" in result.stderr


def test_a_reader_that_closes_the_pipe_early_is_not_reported_as_a_problem(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has its lines: every write now fails with EPIPE
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    dirs = ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data")]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "approver", *dirs, "doctor", "--json", "--no-servers", "--timeout", "5"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_tools_prints_a_header_and_fails_when_every_server_failed(tmp_path: Path) -> None:
    write_config(tmp_path, {"gone": {"command": str(tmp_path / "no-such-program")}})
    result = run(tmp_path, "tools", "--timeout", "20")
    assert result.returncode == 1
    assert result.stdout.split() == ["TOOL", "RISK", "ACTION", "WHY"]
    assert "server gone: failed: command not found" in result.stderr
    assert "0 tools from 0 of 1 server" in result.stderr


def test_tools_prints_a_header_over_the_tools_and_exits_0_when_every_server_answered(tmp_path: Path) -> None:
    write_config(tmp_path, {"test": upstream_entry("test")})
    result = run(tmp_path, "tools")
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["TOOL", "RISK", "ACTION", "WHY"]
    assert any(line.startswith("test__echo ") for line in lines)
    assert "from 1 of 1 server" in result.stderr
