"""Every window opens inside the screen's available area, at any scale factor."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from approver.clients.setup import Installer
from approver.config.tokens import TokenStore
from approver.testing.harness import MemoryKeyring
from approver.ui.approval_view import MINIMUM_SIZE, PREFERRED_SIZE
from approver.ui.connect import ConnectWindow
from approver.ui.placement import FRAME_ALLOWANCE, fit_within, place

SCREENS = {
    "1440x900 at scale 1, panel at the bottom": QRect(0, 0, 1440, 870),
    "1366x768 at scale 1, panel at the bottom": QRect(0, 0, 1366, 738),
    "1440x900 at scale 2 (logical), panel at the bottom": QRect(0, 0, 720, 435),
    "a second screen to the right, panel on top": QRect(1920, 30, 1280, 994),
}


@pytest.mark.parametrize("screen", SCREENS.values(), ids=SCREENS.keys())
def test_the_approval_dialog_fits_inside_every_screen_with_its_frame(screen: QRect) -> None:
    frame = QSize(8, 20) if screen.width() < 1000 else FRAME_ALLOWANCE  # drawn unscaled at scale 2
    rect = fit_within(screen, PREFERRED_SIZE, MINIMUM_SIZE, frame)
    border = frame.width() // 2
    framed = rect.adjusted(-border, -(frame.height() - border), border, border)
    assert screen.contains(framed), (rect, screen)
    assert rect.width() >= MINIMUM_SIZE.width() and rect.height() >= MINIMUM_SIZE.height()


def test_a_roomy_screen_gets_the_preferred_size_centred() -> None:
    rect = fit_within(QRect(0, 0, 1920, 1080), QSize(900, 700), QSize(560, 420))
    assert rect.size() == QSize(900, 700)
    assert abs(rect.center().x() - 960) <= 1


def test_a_screen_smaller_than_the_minimum_still_holds_the_whole_window() -> None:
    screen = QRect(0, 0, 500, 380)
    rect = fit_within(screen, QSize(900, 700), QSize(560, 420))
    assert screen.contains(rect) and rect.width() <= 500 - FRAME_ALLOWANCE.width()


def test_place_puts_a_widget_inside_its_screens_available_area(qtbot: QtBot) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.setMinimumSize(200, 150)
    screen = QGuiApplication.primaryScreen()
    assert screen is not None
    huge = QSize(screen.availableGeometry().width() * 3, screen.availableGeometry().height() * 3)
    rect = place(widget, huge)
    assert screen.availableGeometry().contains(rect)
    assert widget.geometry() == rect


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
