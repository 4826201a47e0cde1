"""Rug pulls are raised at once: a changed tool definition turns the tray amber and says so.

:class:`RugPullWatch` follows ``CoreSignals.tool_changed`` (the pins noticed a tool whose
definition no longer matches what was trusted). It notifies, naming the server and the tool,
asks the desktop to open the Servers window on that tool's diff, and keeps the list of changed
tools that the tray icon and tooltip show until each change is accepted.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from approver.errors import ApproverError
from approver.policy.pins import PinStore
from approver.visible import reveal_text


class RugPullWatch(QObject):
    """The changed tools now, and what to do when one more changes."""

    changed = Signal()
    """The list of changed tools changed (redraw the tray)."""
    review = Signal(str, str)
    """Open the Servers window on this server's tool."""

    def __init__(
        self, pins: PinStore | None, notify: Callable[[str, str], None], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._pins = pins
        self._notify = notify
        self.tools: tuple[str, ...] = ()
        """Changed tools as ``tool on server``, for the tray's tooltip."""
        self.refresh()

    def refresh(self) -> None:
        """Read the pins again (after an accept, here or with ``approver pins accept``)."""
        tools: tuple[str, ...] = ()
        if self._pins is not None:
            try:
                tools = tuple(reveal_text(f"{i.tool} on {i.server}") for i in self._pins.pins() if i.changed)
            except ApproverError as exc:
                tools = (reveal_text(f"the pins file cannot be read ({exc})"),)
        if tools != self.tools:
            self.tools = tools
            self.changed.emit()

    def tool_changed(self, server: str, tool: str) -> None:
        """Follow ``CoreSignals.tool_changed``: raise it now."""
        self.refresh()
        self._notify(
            reveal_text(f"Tool definition changed: {tool} on {server}"),
            reveal_text(
                f"The server {server} changed the definition of {tool} since you trusted it (a possible rug "
                "pull). Every call to it now needs your approval; review the change in Servers."
            ),
        )
        self.review.emit(server, tool)
