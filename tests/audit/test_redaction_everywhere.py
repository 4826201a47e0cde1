"""A keyring secret and common token shapes never show up where approver writes or shows things.

One real gateway runs a hostile upstream that gets a keyring secret (``${keyring:svc-key}``) in
its environment and echoes it to stderr, and an upstream whose command contains the secret and
does not exist. An agent sends the secret and OpenAI, GitHub, Bearer and AWS shapes in arguments,
gets them back in results, tool errors and a JSON-RPC error, and makes the upstream print them.
Then every place approver writes or shows is searched: the audit database files, CSV and JSONL
exports (CLI and window), ``approver audit tail``, approver's own log, the upstream's stderr log,
the Servers window and the audit window's detail pane.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from approver.audit.log import AuditLog
from approver.cli import main as cli
from approver.config.paths import Paths
from approver.testing.harness import MemoryKeyring, legacy_client, running_service, write_config
from approver.ui.audit_window import AuditWindow
from approver.ui.servers import ServersWindow

KEYRING_SECRET = "kr-9f3c2a71e5b84d06"
OPENAI = "sk-proj4Q9x2LmZ7vB1nK8dR3tY6wE0"
GITHUB = "ghp_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
BEARER_VALUE = "abc123DEF456ghi789JKL"
AWS = "AKIAIOSFODNN7EXAMPLE"
SECRETS = (KEYRING_SECRET, OPENAI, GITHUB, BEARER_VALUE, AWS)
LOADED = f"key={KEYRING_SECRET} openai={OPENAI} gh={GITHUB} Authorization: Bearer {BEARER_VALUE} aws={AWS}"
"""Text carrying every secret, sent in arguments and bounced back by the upstream."""


@dataclass
class Scenario:
    """What one run of the gateway left behind."""

    paths: Paths
    results: dict[str, types.CallToolResult] = field(default_factory=dict)
    log: str = ""
    """approver's own log output (a stderr-style handler on the root logger, as ``approver`` sets up)."""
    servers_window: list[str] = field(default_factory=list)
    """Every text the Servers window showed for each server."""


def assert_no_secret(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret} found in {where}"


def _servers_window_texts(window: ServersWindow) -> list[str]:
    texts = []
    for name in ("h", "gone"):
        window.select_server(name)
        texts += [window.detail.text(), window.error_box.toPlainText()]
        texts += [window.table.item(row, col).text() for row in range(2) for col in range(7)]
        texts += [window.table.item(row, col).toolTip() for row in range(2) for col in range(7)]
    return texts


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, qapp: QApplication) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("redaction")
    hostile = ["-m", "approver.testing.hostile_server", "--stderr-env", "HOSTILE_TOKEN"]
    paths = write_config(
        root,
        {
            "h": {
                "command": sys.executable,
                "args": [*hostile, "--tool", f"leak {OPENAI}"],
                "env": {"HOSTILE_TOKEN": "token=${keyring:svc-key}"},
            },
            "gone": {"command": "/nonexistent/${keyring:svc-key}"},
        },
        {"version": "1", "default": "allow"},
    )
    backend = MemoryKeyring()
    backend.set_password("approver", "svc-key", KEYRING_SECRET)
    found = Scenario(paths)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("approver: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)

    async def body() -> None:
        async with running_service(paths, keyring_backend=backend) as service:
            token = service.tokens.get_or_create("agent")
            async with legacy_client(service.url, token) as session:
                for tool in ("echo", "error_result", "raise_error", "to_stderr"):
                    arguments = {"text": LOADED, "note": f"Bearer {BEARER_VALUE}", "apiKey": "plain"}
                    found.results[tool] = await session.call_tool(f"h__{tool}", arguments)
            window = ServersWindow(service)
            try:
                found.servers_window = _servers_window_texts(window)
            finally:
                window.deleteLater()
        assert service.upstreams["h"].stderr_drained(10.0)

    try:
        anyio.run(body)
    finally:
        logging.getLogger().removeHandler(handler)
    found.log = stream.getvalue()
    yield found


def test_results_and_tool_errors_reach_the_client_unchanged(scenario: Scenario) -> None:
    for tool in ("echo", "error_result"):
        block = scenario.results[tool].content[0]
        assert isinstance(block, types.TextContent) and LOADED in block.text
    assert scenario.results["error_result"].is_error and scenario.results["raise_error"].is_error


def test_the_audit_database_files_hold_the_calls_but_no_secret(scenario: Scenario) -> None:
    files = sorted(scenario.paths.data_dir.glob("audit.db*"))
    assert files and any(path.name == "audit.db" for path in files)
    for path in files:
        assert_no_secret(path.read_bytes(), path.name)
    with AuditLog(scenario.paths.audit_db, read_only=True) as log:
        calls = log.query()
    assert len(calls) == 4
    assert all("[REDACTED:secret]" in call["arguments"] for call in calls)
    assert all('"apiKey":"[REDACTED:api_key]"' in call["arguments"] for call in calls)
    (failed,) = [call for call in calls if call["upstream_tool"] == "raise_error"]
    assert failed["error"].startswith("upstream error -32603: key=[REDACTED:secret] openai=[REDACTED:openai]")
    for kind in ("github", "bearer", "aws_access_key_id"):
        assert f"[REDACTED:{kind}]" in failed["error"]


def test_exports_and_tail_from_the_command_line_show_no_secret(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = scenario.paths
    base = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir), "audit"]
    for command in (["tail"], ["export", "--format", "csv"], ["export", "--format", "jsonl"]):
        assert cli.main([*base, *command]) == 0
        captured = capsys.readouterr()
        assert "REDACTED" in captured.out
        assert_no_secret(captured.out + captured.err, " ".join(command))


def test_the_audit_window_detail_pane_and_its_exports_show_no_secret(
    scenario: Scenario, qtbot: QtBot, tmp_path: Path
) -> None:
    window = AuditWindow(scenario.paths.audit_db)
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.model.rowCount() == 4, timeout=10_000)
        for row in range(4):
            window.table.selectRow(row)
            detail = window.detail.toPlainText()
            assert "[REDACTED:" in detail
            assert_no_secret(detail, f"detail pane of row {row}")
        for fmt in ("csv", "jsonl"):
            target = tmp_path / f"calls.{fmt}"
            with qtbot.waitSignal(window.export_finished, timeout=30_000):
                window.export_to(target, fmt)  # type: ignore[arg-type]
            assert_no_secret(target.read_bytes(), target.name)
    finally:
        qtbot.waitUntil(lambda: not window.busy, timeout=30_000)


def test_approvers_own_log_is_redacted(scenario: Scenario) -> None:
    # The catalog warns about the tool named "leak sk-...", and the missing command names the secret.
    assert "not valid MCP tool names" in scenario.log and "'leak [REDACTED:openai]'" in scenario.log
    assert "upstream gone failed: command not found: /nonexistent/[REDACTED:secret]" in scenario.log
    assert_no_secret(scenario.log, "approver's log")


def test_an_upstreams_stderr_log_file_is_redacted(scenario: Scenario) -> None:
    text = (scenario.paths.logs_dir / "h.log").read_text("utf-8")
    assert "token=[REDACTED:secret]" in text  # the server printed its environment at start
    assert "key=[REDACTED:secret] openai=[REDACTED:openai] gh=[REDACTED:github]" in text
    for path in scenario.paths.logs_dir.iterdir():
        assert_no_secret(path.read_bytes(), path.name)


def test_the_servers_window_shows_no_secret(scenario: Scenario) -> None:
    shown = "\n".join(scenario.servers_window)
    assert "/nonexistent/[REDACTED:secret]" in shown or "${keyring:svc-key}" in shown
    assert "[REDACTED:openai]" in shown  # the renamed "leak sk-..." tool, in the server's notes
    assert_no_secret(shown, "the Servers window")


def test_redaction_is_undone_from_log_handlers_when_the_gateway_stops(scenario: Scenario) -> None:
    record: Any = logging.LogRecord("approver", logging.WARNING, __file__, 1, "leak %s", (OPENAI,), None)
    for handler in logging.getLogger().handlers:
        assert handler.filter(record)
    assert record.getMessage() == f"leak {OPENAI}"
