"""The app's controls as QActions, shared by the tray menu and the main window.

One set of actions means the tray menu and the no-tray window can never drift apart: the same
object is checked, enabled and labelled in both places.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from approver.approval.broker import ApprovalRequest
from approver.visible import reveal_text


def describe_request(request: ApprovalRequest) -> str:
    """One line naming a waiting call (revealed, for menus and lists)."""
    risk = f"{request.risk.risk_class.value}/{request.risk.level.value}"
    return reveal_text(f"{request.tool.name} ({risk}) from {request.client}")


class Controls(QObject):
    """Every command the tray menu and the main window offer."""

    pick_request = Signal(str)
    """A waiting request was chosen from a menu or list: show it in the approval dialog."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.show_window = QAction("Show approver", self)
        self.pause = QAction("Pause all calls", self)
        self.pause.setCheckable(True)
        self.pause.setToolTip("While paused, every new call is denied with a reason the agent sees")
        self.pause.toggled.connect(self._label_pause)
        self.audit = QAction("Audit log…", self)
        self.servers = QAction("Servers…", self)
        self.policy = QAction("Policy…", self)
        self.rules = QAction("Rules…", self)
        self.rules.setToolTip("Every rule, where it came from and how often it decided; edit or remove one")
        self.connect_client = QAction("Connect a client…", self)
        self.autostart = QAction("Start at login", self)
        self.autostart.setCheckable(True)
        self.quit = QAction("Quit", self)
        self.quit.setToolTip("Deny and record any waiting calls, then stop the gateway")

    def _label_pause(self, paused: bool) -> None:
        self.pause.setText("Resume calls" if paused else "Pause all calls")

    def build_menu(self, parent: QWidget | None = None) -> WaitingMenu:
        """A menu with the waiting calls on top and every command below."""
        menu = WaitingMenu(self, parent)
        menu.addAction(self.show_window)
        menu.addSeparator()
        menu.addAction(self.pause)
        menu.addSeparator()
        for action in (self.audit, self.servers, self.policy, self.rules, self.connect_client):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.autostart)
        menu.addAction(self.quit)
        return menu


class WaitingMenu(QMenu):
    """A QMenu whose first section lists the calls waiting for approval."""

    def __init__(self, controls: Controls, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controls = controls
        self._waiting: list[QAction] = []
        self._header = QAction("No calls waiting", self)
        self._header.setEnabled(False)
        self.addAction(self._header)
        self._end = self.addSeparator()

    def set_waiting(self, requests: Sequence[ApprovalRequest]) -> None:
        """Replace the waiting section with ``requests`` (oldest first)."""
        for action in self._waiting:
            self.removeAction(action)
            action.deleteLater()
        self._waiting = []
        count = len(requests)
        self._header.setText(
            f"{count} call{'s' if count != 1 else ''} waiting" if count else "No calls waiting"
        )
        for request in requests:
            action = QAction(f"Review {describe_request(request)}", self)
            action.triggered.connect(_picker(self._controls, request.id))
            self.insertAction(self._end, action)
            self._waiting.append(action)

    def waiting_texts(self) -> list[str]:
        """The texts of the waiting entries (for tests and screenshots)."""
        return [action.text() for action in self._waiting]


def _picker(controls: Controls, request_id: str) -> Callable[[], None]:
    return lambda: controls.pick_request.emit(request_id)
