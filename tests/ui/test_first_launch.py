"""The first start: no servers yet, and the main window says what to do next."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from pytestqt.qtbot import QtBot

from approver.clients.formats import ClientFormat
from approver.config.autostart import Autostart
from approver.config.paths import Paths
from approver.config.servers import SecretResolver, load_servers
from approver.service import Service
from approver.testing.harness import running_service, upstream_entry
from approver.ui.app import DesktopApp
from approver.ui.controls import Controls
from approver.ui.first_launch import FirstLaunchPanel, FoundClient, found_clients
from approver.ui.main_window import MainWindow

DATA = Path(__file__).parent.parent / "data" / "clients"
TIMEOUT = 40


def locate_in(home: Path) -> Callable[[ClientFormat], Path]:
    return lambda client: home / client.name / "config.json"


def test_apps_with_servers_of_their_own_are_found(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "claude-desktop").mkdir(parents=True)
    shutil.copy(DATA / "claude_desktop_config.json", home / "claude-desktop" / "config.json")
    (home / "cursor").mkdir()
    routed = {"mcpServers": {"approver": {"command": "approver", "args": ["connect", "--client", "cursor"]}}}
    (home / "cursor" / "config.json").write_text(json.dumps(routed))

    found = found_clients(locate_in(home))

    assert found == [
        FoundClient("claude-desktop", "Claude Desktop", ("filesystem", "github", "brave-search", "pricing"))
    ]
    assert found[0].label() == "Import from Claude Desktop (filesystem, github, brave-search, …)…"


def test_the_panel_offers_an_import_per_app_and_says_when_none_was_found(
    qtbot: QtBot, tmp_path: Path
) -> None:
    panel = FirstLaunchPanel(tmp_path / "servers.json", ["approver"])
    qtbot.addWidget(panel)
    panel.set_found([FoundClient("cursor", "Cursor", ("github",))])
    assert [button.text() for button in panel.import_buttons] == ["Import from Cursor (github)…"]
    with qtbot.waitSignal(panel.import_requested) as asked:
        panel.import_buttons[0].click()
    assert asked.args == ["cursor"]
    panel.set_found([])
    assert panel.import_buttons == [] and panel.found_label.text().startswith("No app with MCP servers")


class UrlCatcher(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_open_servers_json_creates_a_valid_empty_file_first(qtbot: QtBot, tmp_path: Path) -> None:
    file = tmp_path / "config" / "servers.json"
    panel = FirstLaunchPanel(file, ["approver"])
    qtbot.addWidget(panel)
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        panel.open_button.click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert catcher.urls == [QUrl.fromLocalFile(str(file))]
    assert load_servers(file, SecretResolver()).servers == ()
    assert "$schema" in json.loads(file.read_text())


def test_the_main_window_shows_the_next_step_until_a_server_exists(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths = Paths(tmp_path / "config", tmp_path / "data")

    async def main() -> None:
        async with running_service(paths) as service:
            desktop = DesktopApp(
                service,
                tray_available=False,
                autostart=Autostart(["approver"], environ={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}),
                bridge_command=["approver"],
            )
            try:
                await scenario(service, desktop)
            finally:
                desktop.close()

    async def scenario(service: Service, desktop: DesktopApp) -> None:
        panel = desktop.first_launch
        assert panel.isVisible()
        assert "Servers: 0 of 0 ready" in desktop.window.details.text()
        paths.servers_file.write_text(json.dumps({"mcpServers": {"alpha": upstream_entry("alpha")}}))
        await service.reload_servers()
        assert not panel.isVisible()

    qrun(main(), TIMEOUT)


def test_on_a_short_screen_the_main_window_scrolls_rather_than_cut_wrapped_lines(
    qtbot: QtBot, tmp_path: Path
) -> None:
    # 1440x900 at 200 % leaves about 430 points of height: less than the first start's content.
    panel = FirstLaunchPanel(tmp_path / "servers.json", ["approver"])
    panel.set_found([])
    window = MainWindow(Controls(), tray_available=False, first_launch=panel)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    # Where the screen has room (the offscreen one is 800x600), all of it shows without scrolling.
    qtbot.waitUntil(lambda: window.scroll_area.verticalScrollBar().maximum() == 0, timeout=5000)
    assert window.autostart.visibleRegion().boundingRect().height() == window.autostart.height()

    window.resize(640, 300)
    qtbot.waitUntil(lambda: window.scroll_area.verticalScrollBar().maximum() > 0, timeout=5000)
    for label in (panel.found_label, window.no_tray_note):
        assert label.height() >= label.heightForWidth(label.width()), label.text()
    window.scroll_area.ensureWidgetVisible(window.autostart)
    assert window.autostart.visibleRegion().boundingRect().height() == window.autostart.height()
