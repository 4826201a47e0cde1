"""Open windows whole on the screen: a size that fits the screen's free area, centred on it.

A window asks for its comfortable size; on a small screen (1366x768, or any screen at 200 %
scale) it gets at most most of the available area instead, so no part opens off-screen and its
title bar stays reachable.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget

SHARE: Final = 0.9
"""The most of the screen's free area a window takes at first."""


def _screen(window: QWidget) -> QScreen | None:
    return window.screen() or QGuiApplication.primaryScreen()


def fitted(width: int, height: int, available: QRect) -> QRect:
    """A ``width`` x ``height`` rectangle shrunk to fit ``available`` and centred in it."""
    width = min(width, int(available.width() * SHARE))
    height = min(height, int(available.height() * SHARE))
    left = available.x() + (available.width() - width) // 2
    top = available.y() + (available.height() - height) // 2
    return QRect(left, top, width, height)


def fit_to_screen(window: QWidget, width: int, height: int) -> None:
    """Give ``window`` its preferred size, or as much of its screen as fits, centred on the screen."""
    screen = _screen(window)
    if screen is None:
        window.resize(width, height)
        return
    window.setGeometry(fitted(width, height, screen.availableGeometry()))


def keep_on_screen(window: QWidget) -> None:
    """Move and shrink ``window`` so that all of it is inside its screen's free area."""
    screen = _screen(window)
    if screen is None:
        return
    available = screen.availableGeometry()
    frame = window.frameGeometry()
    if available.contains(frame):
        return
    window.setGeometry(fitted(window.width(), window.height(), available))
