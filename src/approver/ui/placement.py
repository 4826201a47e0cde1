"""Open every window inside the screen, at any scale factor.

A window asks for a preferred size in logical pixels; :func:`fit_within` shrinks it to the
screen's available geometry (without the panels) and centres it there, never below the window's
minimum unless the screen itself is smaller. :func:`place` applies that to a widget on the
screen the mouse is on (or the primary screen).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QCursor, QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget

FRAME_ALLOWANCE = QSize(16, 40)
"""Room left for the window manager's frame and title bar (device pixels), which the widget's size
excludes. Window managers draw frames unscaled, so at scale 2 they take half as many logical pixels."""


def fit_within(available: QRect, preferred: QSize, minimum: QSize, frame: QSize = FRAME_ALLOWANCE) -> QRect:
    """The client rectangle for a window of ``preferred`` size inside ``available``, centred.

    The size is ``preferred`` shrunk to fit with ``frame`` around it, but not below ``minimum``
    unless ``available`` cannot hold even that; the rectangle always lies inside ``available``.
    """
    room = QSize(max(1, available.width() - frame.width()), max(1, available.height() - frame.height()))
    width = min(preferred.width(), room.width())
    height = min(preferred.height(), room.height())
    width = min(max(width, minimum.width()), room.width())
    height = min(max(height, minimum.height()), room.height())
    border = frame.width() // 2
    left = available.left() + border + (room.width() - width) // 2
    top = available.top() + (frame.height() - border) + (room.height() - height) // 2
    return QRect(left, top, width, height)


def screen_for(widget: QWidget) -> QScreen | None:
    """The screen under the mouse, else the widget's own, else the primary one."""
    return QGuiApplication.screenAt(QCursor.pos()) or widget.screen() or QGuiApplication.primaryScreen()


def place(widget: QWidget, preferred: QSize) -> QRect:
    """Size and move ``widget`` to fit its screen's available area; returns the rectangle used."""
    screen = screen_for(widget)
    if screen is None:
        widget.resize(preferred)
        return QRect(widget.pos(), preferred)
    minimum = widget.minimumSize()
    rect = fit_within(
        screen.availableGeometry(), preferred, minimum, _frame(widget, screen.devicePixelRatio())
    )
    if minimum.width() > rect.width() or minimum.height() > rect.height():
        # A screen smaller than the window's minimum: the window must still fit on it.
        widget.setMinimumSize(min(minimum.width(), rect.width()), min(minimum.height(), rect.height()))
    widget.setGeometry(rect)
    return rect


def _frame(widget: QWidget, ratio: float) -> QSize:
    """The frame around ``widget`` in logical pixels: measured once it was shown, else estimated."""
    frame, inner = widget.frameGeometry(), widget.geometry()
    if widget.isVisible() and frame != inner:
        return QSize(frame.width() - inner.width(), frame.height() - inner.height())
    return QSize(math.ceil(FRAME_ALLOWANCE.width() / ratio), math.ceil(FRAME_ALLOWANCE.height() / ratio))


def keep_inside(widget: QWidget) -> None:
    """Move and shrink an already placed ``widget`` back inside its screen when it overflows."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return
    available = screen.availableGeometry()
    frame = widget.frameGeometry()
    if available.contains(frame):
        return
    place(widget, widget.size())
