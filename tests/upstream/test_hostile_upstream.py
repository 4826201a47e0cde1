"""A misbehaving upstream through a real gateway: odd names, duplicates, huge lists, hostile text.

The upstream is :mod:`approver.testing.hostile_server` as a real stdio subprocess. The gateway must
keep serving, expose only safe names, offer one definition per name, list thousands of tools,
still decide and record every call, and show every string from the server as plain text with
hidden characters made visible: in the approval dialog, the Servers window, the audit window,
its exports and the ``approver audit`` commands.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from approver.audit.log import AuditLog
from approver.cli import main as cli
from approver.config.paths import Paths
from approver.testing.harness import legacy_client, running_service, write_config
from approver.testing.hostile_server import (
    ANSI,
    BAD_NAMES,
    DUPLICATE_DESCRIPTIONS,
    HIDDEN_INSTRUCTION,
    HTML,
    MARKUP,
    RESULT_MARKUP,
    TAGGED,
)
from approver.ui.approval import ApprovalController
from approver.ui.audit_model import COLUMN_TITLES
from approver.ui.audit_window import AuditWindow, ExportResult
from approver.ui.servers import ServersWindow
from approver.ui.signals import CoreSignals

ALLOW_ALL = {"version": "1", "default": "allow"}
ASK_ALL = {"version": "1", "default": "require_approval"}
SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
RAW_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\U000e0000-\U000e007f]"
)
"""Characters that must never reach a terminal or a label raw (newline and tab are fine)."""
WAIT = 30.0


def hostile(*flags: str) -> dict[str, Any]:
    """A servers.json entry running the hostile server with ``flags``."""
    return {"command": sys.executable, "args": ["-m", "approver.testing.hostile_server", *flags]}


async def list_all(session: ClientSession) -> tuple[list[types.Tool], int]:
    """Every tool the gateway lists, following its cursors; and how many pages that took."""
    tools: list[types.Tool] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools += page.tools
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            return tools, pages


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


# -- names, duplicates, size --------------------------------------------------------------------


def test_invalid_tool_names_are_exposed_under_safe_names_that_still_reach_the_upstream(
    tmp_path: Path,
) -> None:
    paths = write_config(tmp_path, {"h": hostile("--bad-names")}, ALLOW_ALL)

    async def body() -> None:
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("agent")
            async with legacy_client(service.url, token) as session:
                tools, _ = await list_all(session)
                by_upstream = {entry.ref.tool: entry.ref.name for entry in service.catalog.tools()}
                assert set(BAD_NAMES) <= set(by_upstream)
                assert all(SAFE_NAME.fullmatch(tool.name) for tool in tools), [t.name for t in tools]
                assert len({tool.name for tool in tools}) == len(tools)
                for bad in BAD_NAMES:
                    result = await session.call_tool(by_upstream[bad], {"text": "hi"})
                    assert not result.is_error
                    assert text_of(result) == f"{bad}: hi"
            note = service.catalog.warnings["h"]
            assert "not valid MCP tool names" in note and "'with space' as h__with_space-" in note
            await service.recorder.flush()
            recorded = [row["upstream_tool"] for row in service.audit.query(limit=100)]
            assert sorted(recorded) == sorted(BAD_NAMES)

    anyio.run(body)


def test_a_duplicated_name_offers_only_the_first_definition_and_is_reported(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"h": hostile("--duplicates")}, ALLOW_ALL)

    async def body() -> None:
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("agent")
            async with legacy_client(service.url, token) as session:
                tools, _ = await list_all(session)
                names = [tool.name for tool in tools]
                assert names.count("h__dup") == 1 and names.count("h__echo") == 1
                described = {tool.name: tool.description for tool in tools}
                assert described["h__dup"] == DUPLICATE_DESCRIPTIONS[0]
                assert described["h__echo"] == "Return the text, with hostile markup appended."
                result = await session.call_tool("h__dup", {"text": "x"})
                assert text_of(result) == "dup: x"
            assert "2 tool name(s) are listed more than once ('echo', 'dup')" in service.catalog.warnings["h"]
            pinned = service.pins.pins()
            dup = next(info for info in pinned if info.tool == "dup")
            assert not dup.changed  # the second definition did not replace (or unsettle) the pin
            await service.recorder.flush()
            assert [row["decision"] for row in service.audit.query()] == ["allow"]

    anyio.run(body)


def test_thousands_of_tools_are_listed_in_pages_and_a_call_among_them_is_decided_and_recorded(
    tmp_path: Path,
) -> None:
    count = 5_000
    paths = write_config(tmp_path, {"big": hostile("--many", str(count), "--page-size", "1000")}, ALLOW_ALL)

    async def body() -> None:
        async with running_service(paths) as service:
            assert service.upstreams["big"].status().tools == count + 4
            token = service.tokens.get_or_create("agent")
            async with legacy_client(service.url, token) as session:
                started = time.perf_counter()
                tools, pages = await list_all(session)
                listed = time.perf_counter() - started
                assert len(tools) == count + 4 and pages > 1
                assert len({tool.name for tool in tools}) == len(tools)
                result = await session.call_tool(f"big__bulk_{count - 1:05d}", {"text": "last"})
                assert text_of(result) == f"bulk_{count - 1:05d}: last"
                with pytest.raises(MCPError, match="invalid cursor"):
                    await session.list_tools(params=types.PaginatedRequestParams(cursor="nope"))
                assert (await session.call_tool("big__echo", {"text": "still here"})).content
            print(f"listed {len(tools)} tools in {pages} pages in {listed:.2f} s")
            await service.recorder.flush()
            assert [row["upstream_tool"] for row in service.audit.query()] == [
                "echo",
                f"bulk_{count - 1:05d}",
            ]

    anyio.run(body)


def test_hostile_descriptions_and_results_pass_through_unchanged_and_errors_are_recorded(
    tmp_path: Path,
) -> None:
    paths = write_config(tmp_path, {"h": hostile("--markup")}, ALLOW_ALL)

    async def body() -> None:
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("agent")
            async with legacy_client(service.url, token) as session:
                tools, _ = await list_all(session)
                described = {tool.name: tool.description for tool in tools}
                assert [described[f"h__markup_{i}"] for i in range(len(MARKUP))] == list(MARKUP)
                result = await session.call_tool("h__echo", {"text": ANSI})
                assert text_of(result) == f"{ANSI} {RESULT_MARKUP}"
                assert result.structured_content == {"text": ANSI, "markup": list(MARKUP)}
                failed = await session.call_tool("h__raise_error", {"text": ANSI + HTML})
                assert failed.is_error and ANSI in text_of(failed)
                assert not (await session.call_tool("h__echo", {"text": "after"})).is_error
            await service.recorder.flush()
            errors = [row["error"] for row in service.audit.query()]
            assert errors[1] == f"upstream error -32603: {ANSI}{HTML}"

    anyio.run(body)


# -- what a person sees -------------------------------------------------------------------------


def assert_plain_and_revealed(widget: QWidget) -> None:
    """Every label is plain text and no label, view or title holds a raw hidden character."""
    for label in widget.findChildren(QLabel):
        assert label.textFormat() == Qt.TextFormat.PlainText, label.objectName()
        assert not RAW_HIDDEN.search(label.text()), (label.objectName(), label.text())
    for view in widget.findChildren(QPlainTextEdit):
        assert not RAW_HIDDEN.search(view.toPlainText()), view.objectName()
    assert not RAW_HIDDEN.search(widget.windowTitle())


def test_the_approval_dialog_shows_a_hostile_tool_and_call_as_plain_revealed_text(
    qtbot: QtBot, qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"h": hostile("--markup")}, ASK_ALL)

    async def body() -> None:
        async with running_service(paths) as service:
            detach = service.broker.attach_approver()
            signals = CoreSignals(service.broker, service.events)
            controller = ApprovalController(
                signals, service.broker, service, policy_path=paths.policy_file, arm_delay_ms=0
            )
            dialog = controller.dialog
            qtbot.addWidget(dialog)
            arrived = asyncio.Event()
            controller.waiting_changed.connect(lambda _count: arrived.set())
            try:
                token = service.tokens.get_or_create("agent")
                async with legacy_client(service.url, token) as session:
                    call = asyncio.create_task(session.call_tool("h__markup_4", {"text": RESULT_MARKUP}))
                    await asyncio.wait_for(arrived.wait(), WAIT)
                    assert dialog.isVisible()
                    assert_plain_and_revealed(dialog)
                    description = dialog.findChild(QPlainTextEdit, "description")
                    arguments = dialog.findChild(QPlainTextEdit, "raw_arguments")
                    warning = dialog.findChild(QLabel, "warning")
                    assert description is not None and arguments is not None and warning is not None
                    assert description.toPlainText().startswith("A harmless tool.<U+E0069><U+E0067>")
                    shown = arguments.toPlainText()
                    assert HTML.replace('"', '\\"') in shown  # markup as characters, not rendered
                    assert "\\u001b[31m" in shown and "<U+202E>" in shown and "<U+200B>" in shown
                    (value,) = [*dialog.arguments.values.values(), *(b.view for b in dialog.arguments.blocks)]
                    as_read = value.text() if isinstance(value, QLabel) else value.toPlainText()
                    assert "<U+001B>[31m" in as_read and "<U+202E>" in as_read  # the value itself, revealed
                    assert warning.isVisible() and HIDDEN_INSTRUCTION in warning.text()
                    deny = dialog.findChild(QPushButton, "deny")
                    assert deny is not None
                    deny.click()
                    result = await asyncio.wait_for(call, WAIT)
                    assert result.is_error and "denied" in text_of(result)
            finally:
                signals.disconnect_core()
                detach()
            await service.recorder.flush()
            (row,) = service.audit.query()
            assert (row["tool"], row["decision"], row["decided_by"]) == ("h__markup_4", "deny", "user")

    qrun(body(), 60.0)


def test_the_servers_window_reports_renamed_and_duplicated_tools_as_plain_text(
    qtbot: QtBot, qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"h": hostile("--bad-names", "--duplicates", "--markup")}, ALLOW_ALL)

    async def body() -> None:
        async with running_service(paths) as service:
            window = ServersWindow(service)
            qtbot.addWidget(window)
            window.select_server("h")
            detail = window.detail.text()
            assert "listed more than once ('echo', 'dup')" in detail
            assert "not valid MCP tool names" in detail and "'with space' as h__with_space-" in detail
            assert window.table.item(0, 3).text() == str(service.upstreams["h"].status().tools)
            assert_plain_and_revealed(window)

    qrun(body(), 60.0)


def make_hostile_log(paths: Paths) -> None:
    """Calls with hostile arguments, results and an error, recorded by a real gateway."""

    async def body() -> None:
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("agent")
            async with legacy_client(service.url, token) as session:
                await session.call_tool("h__echo", {"text": RESULT_MARKUP})
                await session.call_tool("h__raise_error", {"text": ANSI + TAGGED})

    anyio.run(body)


def assert_no_raw_hidden(text: str) -> None:
    found = RAW_HIDDEN.search(text)
    assert found is None, f"raw U+{ord(found.group()):04X} in output" if found else ""


def test_the_audit_window_and_its_exports_show_hostile_text_visibly(qtbot: QtBot, tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"h": hostile()}, ALLOW_ALL)
    make_hostile_log(paths)
    window = AuditWindow(paths.audit_db)
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=10_000)
        assert_plain_and_revealed(window)
        tool = COLUMN_TITLES.index("Tool")
        assert window.model.data(window.model.index(0, tool)) == "h__raise_error"
        window.table.selectRow(0)
        detail = window.detail.toPlainText()
        assert_no_raw_hidden(detail)
        assert "<U+001B>[31m" in detail and "<U+E0069>" in detail
        window.table.selectRow(1)
        detail = window.detail.toPlainText()
        assert_no_raw_hidden(detail)
        assert HTML.replace('"', '\\"') in detail and "<U+202E>" in detail
        exported: dict[str, str] = {}
        for fmt in ("csv", "jsonl"):
            target = tmp_path / f"out.{fmt}"
            with qtbot.waitSignal(window.export_finished, timeout=30_000) as finished:
                window.export_to(target, fmt)  # type: ignore[arg-type]
            assert isinstance(finished.args[0], ExportResult) and finished.args[0].error is None
            exported[fmt] = target.read_text("utf-8")
    finally:
        qtbot.waitUntil(lambda: not window.busy, timeout=30_000)
    for text in exported.values():
        assert_no_raw_hidden(text)
    rows = list(csv.DictReader(io.StringIO(exported["csv"])))
    assert "<U+001B>[31m" in rows[-1]["error"] and "<U+202E>" in rows[0]["arguments"]
    with AuditLog(paths.audit_db, read_only=True) as log:
        stored = log.tail(limit=10)
    # JSONL escapes hidden characters and keeps every value exact (the hash chain still checks).
    assert [json.loads(line) for line in exported["jsonl"].splitlines()] == stored
    assert "\\u202e" in exported["jsonl"] and "\\udb40\\udc69" in exported["jsonl"]


def test_approver_audit_tail_and_export_never_print_raw_escapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_config(tmp_path, {"h": hostile()}, ALLOW_ALL)
    make_hostile_log(paths)
    base = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir), "audit"]
    outputs = {}
    for command in (["tail"], ["export", "--format", "csv"], ["export", "--format", "jsonl"]):
        assert cli.main([*base, *command]) == 0
        outputs[command[-1]] = capsys.readouterr().out.replace("\r\n", "\n")  # CSV's own line ends
    for text in outputs.values():
        assert_no_raw_hidden(text)
    assert "<U+001B>[31m" in outputs["tail"] and "<U+E0069>" in outputs["tail"]
    assert len(outputs["tail"].splitlines()) == 4
    assert "<U+001B>" in outputs["csv"] and "\\u001b" in outputs["jsonl"]
