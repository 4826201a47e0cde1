"""The Servers window against a running gateway: tools with their action, and editing servers.json."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QPlainTextEdit, QPushButton

from approver.config.paths import Paths
from approver.events import ServersReloaded
from approver.service import Service
from approver.testing.harness import running_service, upstream_entry, write_config
from approver.ui.server_edit import HTTP, ServerEditDialog, entry_from_form
from approver.ui.servers import ServersWindow
from approver.ui.servers_text import dot
from approver.upstream.status import UpstreamState

TIMEOUT = 60.0
POLICY = {
    "version": "1",
    "default": "allow",
    "tools": {"alpha__delete_note": {"action": "deny"}, "alpha__echo": {"action": "require_approval"}},
}


def run(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
    loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))


def opened(qtbot: Any, service: Service) -> ServersWindow:
    window = ServersWindow(service, on_written=lambda: asyncio.ensure_future(service.reload_servers()))
    qtbot.addWidget(window)
    window.show()
    service.events.subscribe(
        lambda event: window.reload() if type(event).__name__ == "ServersReloaded" else None
    )
    return window


def next_reload(service: Service) -> asyncio.Future[ServersReloaded]:
    """Resolves with the next ServersReloaded the service publishes."""
    future: asyncio.Future[ServersReloaded] = asyncio.get_running_loop().create_future()

    def listen(event: object) -> None:
        if isinstance(event, ServersReloaded) and not future.done():
            future.set_result(event)

    unsubscribe = service.events.subscribe(listen)
    future.add_done_callback(lambda _future: unsubscribe())
    return future


def dialog_of(window: ServersWindow) -> ServerEditDialog:
    dialogs = window.findChildren(ServerEditDialog)
    assert len(dialogs) == 1
    return dialogs[0]


def test_a_servers_tools_show_risk_level_and_what_the_policy_does(
    qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"alpha": upstream_entry("alpha")}, POLICY)

    async def body() -> None:
        async with running_service(paths) as service:
            window = opened(qtbot, service)
            window.select_server("alpha")
            rows = {row[0]: row for row in window.tools.texts()}
            assert window.tabs.tabText(1) == f"Tools ({len(rows)})" and len(rows) > 3
            assert rows["alpha__delete_note"][1:4] == ["destructive", "high", "deny"]
            assert rows["alpha__echo"][3] == "ask you"
            assert "rule tools[" in rows["alpha__echo"][4]

    run(qloop, body())


def test_add_shows_the_diff_writes_and_the_new_server_starts_without_a_restart(
    qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"alpha": upstream_entry("alpha")}, POLICY)

    async def body() -> None:
        async with running_service(paths) as service:
            window = opened(qtbot, service)
            window.add_button.click()
            dialog = dialog_of(window)
            dialog.name_edit.setText("beta")
            entry = upstream_entry("beta")
            dialog.command_edit.setText(" ".join([entry["command"], *entry["args"]]))
            dialog.pairs_edit.setPlainText("BETA_TOKEN=ghp_EXAMPLEexample0123456789EXAMPLEexam")
            dialog.next_button.click()
            diff = dialog.diff_view.toPlainText()
            assert '+    "beta": {' in diff
            assert "ghp_" not in diff and '"BETA_TOKEN": "[REDACTED:token]"' in diff
            assert "beta" not in json.loads(paths.servers_file.read_text())["mcpServers"]  # not yet
            reloaded = next_reload(service)
            dialog.write_button.click()
            assert "beta" in json.loads(paths.servers_file.read_text())["mcpServers"]
            assert window.message.text() == "Wrote servers.json (adds beta): approver starts it."
            assert (await reloaded).added == ("beta",)
            await service.upstreams["beta"].wait_for_state(UpstreamState.READY)
            window.select_server("beta")
            assert window.selected_server() == "beta"

    run(qloop, body())


def test_disable_then_remove_stop_the_server_and_the_table_follows(
    qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"alpha": upstream_entry("alpha"), "beta": upstream_entry("beta")}, POLICY)

    async def body() -> None:
        async with running_service(paths) as service:
            window = opened(qtbot, service)
            beta = service.upstreams["beta"]
            window.select_server("beta")
            assert window.enable_button.text() == "Disable…"
            window.enable_button.click()
            dialog = dialog_of(window)
            assert '+      "disabled": true' in dialog.diff_view.toPlainText()
            reloaded = next_reload(service)
            dialog.write_button.click()
            assert (await reloaded).removed == ("beta",)
            assert beta.state is UpstreamState.STOPPED and "beta" not in service.upstreams
            window.select_server("beta")
            assert window.enable_button.text() == "Enable…"
            assert "disabled" in window.error_box.toPlainText()

            window.remove_button.click()
            dialog = dialog_of(window)
            assert '-    "beta": {' in dialog.diff_view.toPlainText()
            reloaded = next_reload(service)
            dialog.write_button.click()
            assert list(json.loads(paths.servers_file.read_text())["mcpServers"]) == ["alpha"]
            await reloaded
            assert [window.table.item(row, 0).text() for row in range(window.table.rowCount())] == ["alpha"]
            assert service.upstreams["alpha"].state is UpstreamState.READY

    run(qloop, body())


def test_an_invalid_servers_json_is_shown_and_the_running_servers_stay(
    qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"alpha": upstream_entry("alpha")}, POLICY)

    async def body() -> None:
        async with running_service(paths) as service:
            window = opened(qtbot, service)
            paths.servers_file.write_text('{"mcpServers": {"alpha": {"comand": "x"}}}')
            await service.reload_servers()
            assert window.problem.isVisible()
            assert "did you mean `command`?" in window.problem.text()
            assert window.table.rowCount() == 1

    run(qloop, body())


def test_the_state_dot_is_the_same_in_a_selected_row() -> None:
    icon = dot("#1f8a70")
    normal = icon.pixmap(14, 14, QIcon.Mode.Normal).toImage()
    selected = icon.pixmap(14, 14, QIcon.Mode.Selected).toImage()
    assert normal == selected
    assert normal.pixelColor(7, 7).name() == "#1f8a70"


def test_the_tabs_leave_the_server_table_its_room(
    qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {f"s{index}": upstream_entry(f"s{index}") for index in range(4)}, POLICY)

    async def body() -> None:
        async with running_service(paths) as service:
            window = opened(qtbot, service)
            window.resize(1000, 680)
            qtbot.waitExposed(window)
            row = window.table.rowHeight(0)
            assert window.table.viewport().height() >= 4 * row

    run(qloop, body())


def test_the_add_form_makes_entries_and_names_what_is_missing() -> None:
    assert entry_from_form("x", "uvx 'mcp server' --flag", "", "A=1\nB=${keyring:b}", " Time ") == {
        "command": "uvx",
        "args": ["mcp server", "--flag"],
        "env": {"A": "1", "B": "${keyring:b}"},
        "description": "Time",
    }
    assert entry_from_form(HTTP, "", "https://x/mcp", "Authorization: Bearer ${keyring:t}", "") == {
        "type": "http",
        "url": "https://x/mcp",
        "headers": {"Authorization": "Bearer ${keyring:t}"},
    }
    for args, message in (
        (("x", "", "", "", ""), "type the command"),
        ((HTTP, "", "", "", ""), "type the server's URL"),
        (("x", "a", "", "no-equals-sign", ""), "line 1 needs the form name=value"),
    ):
        try:
            entry_from_form(*args)
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{args} was accepted")


def test_without_servers_add_is_the_way_in(
    qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    paths = Paths(tmp_path / "config", tmp_path / "data")

    async def body() -> None:
        async with running_service(paths) as service:
            window = opened(qtbot, service)
            assert "Add server… adds one" in window.summary.text()
            assert window.findChild(QPlainTextEdit, "example") is not None
            assert window.add_button.isEnabled() and not window.remove_button.isEnabled()
            assert window.findChild(QPushButton, "open_file") is not None

    run(qloop, body())
