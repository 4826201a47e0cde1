"""The desktop app around a real running gateway: state, controls, notifications, quit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import mcp.types as types
from PySide6.QtCore import Qt, QTimer, SignalInstance
from PySide6.QtWidgets import QCheckBox, QLabel, QPushButton

from approver.approval.broker import ApprovalRequest, Resolution
from approver.config.autostart import Autostart
from approver.config.paths import Paths
from approver.demo.agent import CLIENT_NAME, Step, run_agent
from approver.demo.sandbox import prepare_demo
from approver.service import Service
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.ui.app import DesktopApp
from approver.ui.audit_window import AuditWindow
from approver.ui.main_window import NO_TRAY_NOTE
from approver.ui.single_instance import InstanceServer
from approver.upstream.status import UpstreamState

TIMEOUT = 40
POLICY = {
    "version": "1",
    "default": "allow",
    "tools": {
        "test__echo": {"action": "require_approval"},
        "test__delete_note": {"action": "deny", "reason": "notes are kept forever"},
    },
}


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def signalled(signal: SignalInstance) -> tuple[Any, ...]:
    """Wait for the next emission of a Qt signal (bounded by the caller)."""
    future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def fire(*args: Any) -> None:
        if not future.done():
            future.set_result(args)

    signal.connect(fire)
    try:
        return await future
    finally:
        signal.disconnect(fire)


async def first_pending(service: Service) -> ApprovalRequest:
    arrived: asyncio.Future[ApprovalRequest] = asyncio.get_running_loop().create_future()

    def observe(request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None and not arrived.done():
            arrived.set_result(request)

    unsubscribe = service.broker.subscribe(observe)
    try:
        return await arrived
    finally:
        unsubscribe()


Scenario = Callable[[Service, DesktopApp], Awaitable[None]]


def run_with_app(qrun: Callable[..., Any], paths: Paths, tmp_path: Path, scenario: Scenario) -> None:
    """Run ``scenario`` against a started service with the desktop app attached (no tray)."""

    async def main() -> None:
        async with running_service(paths) as service:
            desktop = DesktopApp(
                service,
                tray_available=False,
                autostart=Autostart(
                    ["approver"], environ={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, platform="linux"
                ),
                bridge_command=["approver"],
                arm_delay_ms=20,
            )
            try:
                await scenario(service, desktop)
            finally:
                desktop.close()

    qrun(main(), TIMEOUT)


def test_without_a_tray_the_main_window_opens_with_every_control_and_says_why(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        window = desktop.window
        assert window.isVisible() and desktop.tray is None
        assert window.no_tray_note.isVisible() and window.no_tray_note.text() == NO_TRAY_NOTE
        labels = set(window.buttons)
        assert labels == {
            "Pause all calls",
            "Audit log…",
            "Servers…",
            "Policy…",
            "Rules…",
            "Connect a client…",
            "Quit",
        }
        shown = [button for button in window.buttons.values() if button.isVisible()]
        assert len(shown) == len(window.buttons)
        for index, button in enumerate(shown):  # none lies under another
            assert all(not button.geometry().intersects(other.geometry()) for other in shown[index + 1 :])
        assert isinstance(window.autostart, QCheckBox) and window.autostart.text() == "Start at login"
        assert window.headline.text() == "Running: guarding your agents' tool calls"
        assert (
            f"Gateway: 127.0.0.1:{service.port} (clients connect with their own token"
            in window.details.text()
        )
        assert service.url not in window.details.text()  # a URL without a token fails when pasted
        for label in window.findChildren(QLabel):
            if label.text():
                assert label.textFormat() == Qt.TextFormat.PlainText, label.text()

    run_with_app(qrun, paths, tmp_path, scenario)


def test_pause_denies_new_calls_shows_paused_and_resume_lets_them_through(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        token = service.tokens.get_or_create("agent")
        desktop.window.buttons["Pause all calls"].click()
        assert service.paused and desktop.state().paused
        assert desktop.window.headline.text() == "Paused: every call is denied"
        assert desktop.controls.pause.text() == "Resume calls"
        async with legacy_client(service.url, token) as session:
            paused = await session.call_tool("test__add", {"a": 1, "b": 2})
            desktop.controls.pause.trigger()
            resumed = await session.call_tool("test__add", {"a": 1, "b": 2})
        assert paused.is_error and "paused" in text_of(paused)
        assert not resumed.is_error and not service.paused

    run_with_app(qrun, paths, tmp_path, scenario)


def test_a_waiting_call_shows_in_icon_menu_window_and_a_notification(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        token = service.tokens.get_or_create("agent")
        async with legacy_client(service.url, token) as session:
            call = asyncio.ensure_future(session.call_tool("test__echo", {"text": "hi"}))
            request = await first_pending(service)
            state = desktop.state()
            menu_entries = desktop.menu.waiting_texts()
            window_entry = desktop.window.waiting.item(0).text()
            headline = desktop.window.headline.text()
            notified = list(desktop.notifier.history)
            notice = desktop.window.notice.text()
            service.broker.approve(request.id)
            result = await call
        assert state.waiting == 1 and "1 call waiting for approval" in state.tooltip()
        assert state.waiting_level is request.risk.level
        risk = f"{request.risk.risk_class.value}/{request.risk.level.value}"
        assert menu_entries == [f"Review test__echo ({risk}) from agent"]
        assert window_entry == menu_entries[0]
        assert headline == "1 call waiting for your approval"
        level = request.risk.level.value.upper()
        assert notified[-1] == (
            f"{level} risk: approve test__echo?",
            "agent wants to call test__echo with 1 argument "
            f"({request.risk.risk_class.value}, {level.lower()}).",
        )
        assert notice == f"{notified[-1][0]}: {notified[-1][1]}"
        assert not result.is_error
        assert desktop.state().waiting == 0 and desktop.menu.waiting_texts() == []
        assert desktop.window.notice.text() == ""  # the line asking about the call is gone with it

    run_with_app(qrun, paths, tmp_path, scenario)


def test_a_call_denied_by_policy_raises_a_notification_with_the_reason(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        token = service.tokens.get_or_create("agent")
        shown = asyncio.ensure_future(signalled(desktop.notifier.shown))
        async with legacy_client(service.url, token) as session:
            result = await session.call_tool("test__delete_note", {"name": "x"})
        title, body = await shown
        assert result.is_error
        assert title == "Denied by policy: test__delete_note"
        assert body == "agent: notes are kept forever (the rule for test__delete_note)"
        assert desktop.window.notice.text() == f"{title}: {body}"
        # One click away: the call's audit row, which keeps the rule's exact path.
        assert desktop.window.notice_button.isVisible()
        desktop.window.notice_button.click()
        audit = desktop.windows["audit"]
        assert isinstance(audit, AuditWindow) and audit.isVisible()
        details = audit.detail.toPlainText()
        assert "Tool:         test__delete_note" in details
        assert 'Rule:         tools["test__delete_note"]' in details

    run_with_app(qrun, paths, tmp_path, scenario)


def test_quit_denies_and_records_the_waiting_call_before_the_gateway_stops(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)
    results: list[types.CallToolResult] = []

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        token = service.tokens.get_or_create("agent")
        quit_asked = asyncio.ensure_future(signalled(desktop.quit_requested))
        async with legacy_client(service.url, token) as session:
            call = asyncio.ensure_future(session.call_tool("test__echo", {"text": "hi"}))
            await first_pending(service)
            desktop.window.buttons["Quit"].click()
            await quit_asked
            results.append(await call)
        await service.recorder.flush()
        rows = service.audit.query(limit=5)
        assert [(row["tool"], row["decision"], row["decided_by"]) for row in rows] == [
            ("test__echo", "deny", "shutdown")
        ]

    run_with_app(qrun, paths, tmp_path, scenario)
    assert results[0].is_error and "quitting" in text_of(results[0])


def test_a_failing_upstream_turns_the_state_to_trouble_with_its_error(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    broken = {"command": str(tmp_path / "no-such-server")}
    paths = write_config(tmp_path, {"test": upstream_entry("test"), "broken": broken}, POLICY)

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        # running_service returned after the first attempt failed; retries keep it in trouble.
        assert service.upstreams["broken"].state in (UpstreamState.FAILED, UpstreamState.RESTARTING)
        state = desktop.state()
        assert len(state.troubled) == 1 and state.troubled[0].startswith("broken: ")
        assert "command not found" in state.troubled[0]
        assert desktop.window.headline.text() == "Running, with problems"
        assert "Servers: 1 of 2 ready" in desktop.window.details.text()

    run_with_app(qrun, paths, tmp_path, scenario)


def test_a_notification_folded_during_a_burst_that_fires_after_close_touches_no_deleted_window(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)

    async def main() -> tuple[Any, ...]:
        async with running_service(paths) as service:
            desktop = DesktopApp(service, tray_available=False, bridge_command=["approver"])
            desktop.notifier.notify("denied", "Call denied", "first")
            desktop.notifier.notify("denied", "Call denied", "second")  # folded: shown by a timer
            desktop.close()
            return await signalled(desktop.notifier.shown)

    assert qrun(main(), TIMEOUT) == ("Call denied", "second")


def test_start_at_login_switches_the_autostart_entry(qrun: Callable[..., Any], tmp_path: Path) -> None:
    paths = write_config(tmp_path, {}, POLICY)

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        entry = tmp_path / "xdg" / "autostart" / "approver.desktop"
        desktop.controls.autostart.trigger()
        assert entry.exists() and "Exec=approver" in entry.read_text()
        assert desktop.window.autostart.isChecked()  # the window's checkbox follows the tray's item
        desktop.window.autostart.click()
        assert not entry.exists() and not desktop.controls.autostart.isChecked()

    run_with_app(qrun, paths, tmp_path, scenario)


def test_a_second_launch_shows_the_running_window_instead_of_failing(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {}, POLICY)

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        instance = InstanceServer(paths.data_dir)
        assert instance.listen()
        instance.show_requested.connect(desktop.show_window)
        desktop.window.hide()
        shown = asyncio.ensure_future(signalled(instance.show_requested))
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "approver",
            "--config-dir",
            str(paths.config_dir),
            "--data-dir",
            str(paths.data_dir),
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, err = await second.communicate()
        await shown
        instance.close()
        assert second.returncode == 0, err.decode()
        assert "already running" in err.decode()
        assert desktop.window.isVisible()

    run_with_app(qrun, paths, tmp_path, scenario)


def test_the_demo_shows_allow_policy_deny_and_approval_through_the_real_dialog(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    setup = prepare_demo(tmp_path / "demo")
    answers = ["approve", "deny"]  # the write is approved, deleting draft.txt is denied
    clicked: list[str] = []
    narration: list[str] = []

    async def main() -> list[Step]:
        async with running_service(setup.paths) as service:
            desktop = DesktopApp(
                service,
                tray_available=False,
                autostart=Autostart(
                    ["approver"], environ={"XDG_CONFIG_HOME": str(tmp_path)}, platform="linux"
                ),
                bridge_command=["approver"],
                arm_delay_ms=0,
            )
            dialog = desktop.approvals.dialog

            def click() -> None:
                request = dialog.current()
                if request is not None and answers:
                    name = answers.pop(0)
                    clicked.append(f"{name} {request.tool.name}")
                    button = dialog.findChild(QPushButton, name)
                    assert button is not None and button.isEnabled()
                    button.click()

            desktop.approvals.waiting_changed.connect(lambda count: count and QTimer.singleShot(0, click))
            try:
                token = service.tokens.get_or_create(CLIENT_NAME)
                return await run_agent(service.url, token, pause=0, say=narration.append)
            finally:
                desktop.close()

    steps = qrun(main(), TIMEOUT)
    assert clicked == ["approve files__write_file", "deny files__delete_file"]
    assert [(step.tool, step.allowed) for step in steps] == [
        ("files__list_files", True),
        ("files__read_file", True),
        ("files__write_file", True),
        ("files__delete_file", False),
        ("files__delete_file", False),
    ]
    assert (setup.sandbox / "summary.txt").exists()
    assert (setup.sandbox / "draft.txt").exists() and (setup.sandbox / "keep" / "contract.txt").exists()
    assert any("keep/" in line for line in narration)


def test_windows_open_inside_the_screen_with_titles_that_do_not_repeat_the_app_name(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        screen = desktop.window.screen().availableGeometry()
        windows = [
            desktop.open_audit(),
            desktop.open_servers(),
            desktop.open_policy(),
            desktop.open_connect(),
        ]
        for window in windows:
            assert screen.contains(window.geometry()), (window.windowTitle(), window.geometry(), screen)
            assert "approver" not in window.windowTitle().lower()
        assert [window.windowTitle() for window in windows] == [
            "Audit log",
            "Servers",
            "Policy",
            "Connect a client",
        ]
        lines = desktop.window.notice.fontMetrics().lineSpacing()
        assert desktop.window.notice.minimumHeight() >= 2 * lines  # a notice arriving moves nothing

    run_with_app(qrun, paths, tmp_path, scenario)
