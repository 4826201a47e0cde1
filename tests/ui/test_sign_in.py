"""Signing in from the desktop app: "Sign in needed" in Servers and the tray, Sign in… opens the browser."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from approver.testing.browser import visit
from approver.testing.harness import running_service, write_config
from approver.testing.oauth_server import read_events, running_oauth_server
from approver.ui.app import DesktopApp
from approver.ui.servers import COLUMNS, ServersWindow
from approver.ui.sign_in import SignInRunner
from approver.ui.signals import CoreSignals
from approver.ui.status import SIGN_IN_NEEDED, status_details
from approver.upstream.status import UpstreamState

TIMEOUT = 60.0


class Browser(QObject):
    """The system browser as Qt sees it (QDesktopServices' handler): a person who clicks Allow."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url.toString())
        threading.Thread(target=visit, args=(url.toString(),), daemon=True).start()


@pytest.fixture
def browser() -> Iterator[Browser]:
    handler = Browser()
    QDesktopServices.setUrlHandler("http", handler, "open")
    yield handler
    QDesktopServices.unsetUrlHandler("http")


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[str]:
    with running_oauth_server(tmp_path / "events.jsonl") as base:
        yield base


def state_cell(window: ServersWindow, row: int) -> str:
    item = window.table.item(row, COLUMNS.index("State"))
    return item.text() if item is not None else ""


def test_sign_in_from_the_servers_window_opens_the_browser_and_the_server_becomes_ready(
    qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path, remote: str, browser: Browser
) -> None:
    paths = write_config(tmp_path, {"gh": {"type": "http", "url": f"{remote}/mcp"}})

    async def body() -> None:
        async with running_service(paths) as service:
            runner = SignInRunner(service)
            window = ServersWindow(service, runner)
            qtbot.addWidget(window)
            signals = CoreSignals(service.broker, service.events)
            signals.upstream_changed.connect(window.refresh)
            try:
                gh = service.upstreams["gh"]
                await asyncio.wait_for(gh.wait_for_state(UpstreamState.NEEDS_SIGN_IN), 20)
                window.refresh()
                assert state_cell(window, 0) == SIGN_IN_NEEDED
                window.select_server("gh")
                assert not window.sign_in_button.isHidden() and window.sign_in_button.isEnabled()
                assert "Press Sign in…" in window.error_box.toPlainText()
                finished: list[tuple[str, bool, str]] = []
                done = asyncio.Event()

                def on_finished(*args: Any) -> None:
                    finished.append(args)
                    done.set()

                runner.finished.connect(on_finished)
                window.sign_in_button.click()
                assert not window.sign_in_button.isEnabled()  # one sign-in at a time
                await asyncio.wait_for(gh.wait_for_state(UpstreamState.READY), 30)
                await asyncio.wait_for(done.wait(), 10)
                assert finished[0][:2] == ("gh", True)
                assert window.message.text().startswith("Signed in to gh")
                assert state_cell(window, 0) == "ready"
                assert len(browser.urls) == 1 and browser.urls[0].startswith(f"{remote}/authorize?")
            finally:
                signals.disconnect_core()

    qloop.run_until_complete(asyncio.wait_for(body(), TIMEOUT))
    assert [e["event"] for e in read_events(tmp_path / "events.jsonl")].count("authorize") == 1


def test_the_tray_says_sign_in_needed_and_notifies_once(
    qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path, remote: str
) -> None:
    paths = write_config(tmp_path, {"gh": {"type": "http", "url": f"{remote}/mcp"}})

    async def body() -> None:
        async with running_service(paths) as service:
            await asyncio.wait_for(service.upstreams["gh"].wait_for_state(UpstreamState.NEEDS_SIGN_IN), 20)
            app = DesktopApp(service, tray_available=False, bridge_command=["approver"])
            try:
                state = app.state()
                assert state.troubled == ("gh: Sign in needed (not signed in yet)",)
                assert "gh: Sign in needed" in "\n".join(status_details(service, None))
                assert [title for title, _ in app.notifier.history] == ["Sign in needed: gh"]
                app._upstream_changed("gh", "state")
                assert len(app.notifier.history) == 1
            finally:
                app.close()

    qloop.run_until_complete(asyncio.wait_for(body(), TIMEOUT))
