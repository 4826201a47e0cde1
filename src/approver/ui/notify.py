"""Desktop notifications: a call is waiting or was missed, a call was denied, a tool changed.

With a system tray they are tray balloons (the desktop's notification service). Without one
they appear in the main window's notice line and the window asks for attention. A burst (an
agent looping on a denied tool) is folded: at most one notification per kind every few seconds,
and the next one says how many were folded into it. It names the most severe of them (the newest
among equals), so a critical call is not hidden behind the harmless ones that followed it.

A notification may name what it is about (a ``target``: an audit row id, or a waiting call's
request id); clicking the balloon, or the notice line's button, emits :attr:`Notifier.activated`
with it, so the app can open that call.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from approver.ui.text import plain_message

QUIET_SECONDS = 3.0
"""Minimum time between two shown notifications of the same kind."""


@dataclass
class _Kind:
    last_shown: float = -1e9
    folded: list[tuple[int, str, str, QIcon | None, object]] = field(default_factory=list)
    """``(severity, title, body, icon, target)`` of each notification waiting to be folded."""


class Notifier(QObject):
    """Shows notifications through the tray when there is one; always emits :attr:`shown`."""

    shown = Signal(str, str)
    """Title and body of every notification actually shown (the fallback window displays these)."""
    activated = Signal(object)
    """The user clicked the latest notification: its target (an audit row id or a request id)."""

    def __init__(
        self,
        tray: QSystemTrayIcon | None = None,
        *,
        quiet: float = QUIET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.tray = tray
        self.quiet = quiet
        self._clock = clock
        self._kinds: dict[str, _Kind] = {}
        self.history: deque[tuple[str, str]] = deque(maxlen=50)
        """The last notifications shown, newest last."""
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.timeout.connect(self._show_folded)
        self.target: object = None
        """What the latest notification shown is about (None: nothing to open)."""
        if tray is not None:
            tray.messageClicked.connect(self.activate)

    def notify(
        self,
        kind: str,
        title: str,
        body: str,
        icon: QIcon | None = None,
        *,
        target: object = None,
        severity: int = 0,
    ) -> None:
        """Show a notification now, or fold it into the next one of the same ``kind``.

        ``icon`` (a risk level's symbol, say) replaces the generic information icon. ``target`` is
        what a click on it opens (an audit row id, a waiting call's request id). Of a folded
        burst, the one with the highest ``severity`` is shown (the newest among equals).
        """
        state = self._kinds.setdefault(kind, _Kind())
        now = self._clock()
        if now - state.last_shown < self.quiet:
            state.folded.append((severity, title, body, icon, target))
            if not self._flush.isActive():
                self._flush.start(int(self.quiet * 1000))
            return
        self._show(state, title, body, now, icon, target)

    def activate(self) -> None:
        """The latest notification was clicked: emit :attr:`activated` with its target, if it has one."""
        if self.target is not None:
            self.activated.emit(self.target)

    def _show(
        self, state: _Kind, title: str, body: str, now: float, icon: QIcon | None, target: object = None
    ) -> None:
        state.last_shown = now
        self.target = target
        self.history.append((title, body))
        if self.tray is not None and self.tray.isVisible():
            # Notification servers may render markup in the body: show the characters instead.
            if icon is not None:
                self.tray.showMessage(title, plain_message(body), icon, 8000)
            else:
                self.tray.showMessage(
                    title, plain_message(body), QSystemTrayIcon.MessageIcon.Information, 8000
                )
        self.shown.emit(title, body)

    def _show_folded(self) -> None:
        now = self._clock()
        for state in self._kinds.values():
            if not state.folded:
                continue
            # max() keeps the first of equals: search from the newest.
            _, title, body, icon, target = max(reversed(state.folded), key=lambda folded: folded[0])
            if len(state.folded) > 1:
                body += f"\n(and {len(state.folded) - 1} more like it)"
            state.folded.clear()
            self._show(state, title, body, now, icon, target)
