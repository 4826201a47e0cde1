"""The main window: status at a glance and every control, for desktops without a system tray.

With a tray it is an optional status window ("Show approver"); without one it is how the user
reaches approver at all, so it opens at start and says why. Closing it keeps approver running
(calls still need someone to approve them); launching ``approver`` again brings it back.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from approver.approval.broker import ApprovalRequest
from approver.ui.controls import Controls, describe_request
from approver.ui.icons import TrayState, app_icon, render
from approver.ui.text import plain_label

NO_TRAY_NOTE = (
    "Your desktop has no system tray, so approver shows this window instead: every control of the "
    "tray menu is here. Closing the window keeps approver running and guarding calls; run "
    "`approver` again to bring it back, or use Quit to stop."
)


class MainWindow(QWidget):
    """Status lines, waiting calls and buttons for every command in :class:`Controls`."""

    def __init__(self, controls: Controls, *, tray_available: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("approver")
        self.setWindowIcon(app_icon())
        self._controls = controls
        layout = QVBoxLayout(self)

        top = QGridLayout()
        self.state_icon = QLabel()
        self.state_icon.setFixedSize(48, 48)
        top.addWidget(self.state_icon, 0, 0, 2, 1)
        self.headline = plain_label(wrap=True, selectable=True)
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.headline.setFont(font)
        top.addWidget(self.headline, 0, 1)
        self.details = plain_label(wrap=True, selectable=True)
        top.addWidget(self.details, 1, 1)
        top.setColumnStretch(1, 1)
        layout.addLayout(top)

        self.no_tray_note = plain_label(NO_TRAY_NOTE, reveal=False, wrap=True, selectable=True)
        self.no_tray_note.setVisible(not tray_available)
        self.no_tray_note.setStyleSheet("QLabel { background: #fff7e0; padding: 6px; }")
        layout.addWidget(self.no_tray_note)

        waiting_box = QGroupBox("Calls waiting for approval")
        waiting_layout = QVBoxLayout(waiting_box)
        self.waiting = QListWidget()
        self.waiting.setMaximumHeight(110)
        self.waiting.itemActivated.connect(self._pick)
        self.waiting.itemClicked.connect(self._pick)
        waiting_layout.addWidget(self.waiting)
        layout.addWidget(waiting_box)
        self._panels_at = layout.count()

        buttons = QGridLayout()
        commands = [
            controls.pause,
            controls.audit,
            controls.servers,
            controls.policy,
            controls.rules,
            controls.connect_client,
            controls.autostart,
            controls.quit,
        ]
        self.buttons: dict[str, QToolButton] = {}
        for index, action in enumerate(commands):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            buttons.addWidget(button, index // 4, index % 4)
            self.buttons[action.text()] = button
        layout.addLayout(buttons)

        self.notice = plain_label(wrap=True, selectable=True)
        self.notice.setStyleSheet("QLabel { color: #555; }")
        layout.addWidget(self.notice)
        self.set_waiting([])
        self.resize(560, 380)

    def set_state(self, state: TrayState, headline: str, details: Sequence[str]) -> None:
        """Show the current state: icon, one headline, and detail lines (plain text)."""
        self.state_icon.setPixmap(render(state, 48))
        self.headline.setText(headline)
        self.details.setText("\n".join(details))

    def set_waiting(self, requests: Sequence[ApprovalRequest]) -> None:
        """List the calls waiting for approval (oldest first)."""
        self.waiting.clear()
        for request in requests:
            item = QListWidgetItem(f"Review {describe_request(request)}")
            item.setData(Qt.ItemDataRole.UserRole, request.id)
            self.waiting.addItem(item)
        if not requests:
            placeholder = QListWidgetItem("Nothing is waiting.")
            placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
            self.waiting.addItem(placeholder)

    def show_notice(self, title: str, body: str) -> None:
        """Show the latest notification under the buttons (used when there is no tray)."""
        self.notice.setText(f"{title}: {body}")

    def clear_notice(self) -> None:
        """Remove the notice line (what it said is over: the call it named was answered)."""
        self.notice.setText("")

    def add_panel(self, panel: QWidget) -> None:
        """Add a section under the waiting calls (the Missed list)."""
        layout = self.layout()
        if isinstance(layout, QVBoxLayout):
            layout.insertWidget(self._panels_at, panel)
            self._panels_at += 1

    def _pick(self, item: QListWidgetItem) -> None:
        request_id = item.data(Qt.ItemDataRole.UserRole)
        if request_id:
            self._controls.pick_request.emit(request_id)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Hide instead of closing: approver keeps guarding calls until Quit."""
        event.ignore()
        self.hide()
