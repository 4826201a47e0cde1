"""The tray icon's look and tooltip say the state."""

from __future__ import annotations

from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from approver.ui.icons import TrayState, render


def pixels(state: TrayState) -> QImage:
    return render(state, 64).toImage()


def test_each_state_has_its_own_look(qtbot: QtBot) -> None:
    states = [
        TrayState(),
        TrayState(paused=True),
        TrayState(troubled=("git: failed",)),
        TrayState(waiting=3),
        TrayState(waiting=12),
    ]
    images = [pixels(state) for state in states]
    for i, first in enumerate(images):
        for second in images[i + 1 :]:
            assert first != second


def test_the_tooltip_puts_waiting_calls_first_and_lists_trouble() -> None:
    state = TrayState(paused=True, waiting=2, troubled=("git: failed (exit 1)",))
    assert state.tooltip().splitlines() == [
        "2 calls waiting for approval",
        "approver: paused, every call is denied",
        "git: failed (exit 1)",
    ]
    assert TrayState().tooltip() == "approver: running"
