"""Windows open whole on the screen, whatever its size."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from approver.clients.setup import Installer
from approver.config.tokens import TokenStore
from approver.testing.harness import MemoryKeyring
from approver.ui.connect import ConnectWindow
from approver.ui.placement import fitted


def test_a_window_larger_than_the_screen_is_shrunk_and_centred() -> None:
    available = QRect(0, 32, 1366, 736)  # 1366x768 with a 32 px panel
    placed = fitted(780, 900, available)
    assert available.contains(placed)
    assert placed.height() < 736 and placed.width() == 780
    assert placed.center().x() in (683, 682)


def test_a_small_window_keeps_its_size() -> None:
    assert fitted(400, 300, QRect(0, 0, 2880, 1800)).size().toTuple() == (400, 300)


def test_connect_a_client_opens_inside_the_screen(qtbot: QtBot, tmp_path: Path) -> None:
    tokens = TokenStore(tmp_path / "tokens.json", backend=MemoryKeyring())
    installer = Installer(
        tmp_path / "servers.json", ("approver",), None, lambda client: tmp_path / client.name
    )
    window = ConnectWindow(tokens, 39999, ["approver"], installer=installer)
    qtbot.addWidget(window)
    window.show()
    screen = QGuiApplication.primaryScreen().availableGeometry()
    assert screen.contains(window.geometry())
