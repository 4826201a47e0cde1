"""The main window: status at a glance and every control, for desktops without a system tray.

With a tray it is an optional status window ("Show approver"); without one it is how the user
reaches approver at all, so it opens at start and says why. Closing it keeps approver running
(calls still need someone to approve them); launching ``approver`` again brings it back.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from approver.approval.broker import ApprovalRequest
from approver.ui.controls import Controls, describe_request
from approver.ui.icons import TrayState, app_icon, render
from approver.ui.placement import keep_inside, place
from approver.ui.text import plain_label

NO_TRAY_NOTE = (
    "Your desktop has no system tray, so approver shows this window instead: every control of the "
    "tray menu is here. Closing the window keeps approver running and guarding calls; run "
    "`approver` again to bring it back, or use Quit to stop."
)


class MainWindow(QWidget):
    """Status lines, waiting calls and buttons for every command in :class:`Controls`."""

    notice_activated = Signal(object)
    """The notice line's button was pressed: the target of the notification it shows."""

    def __init__(
        self,
        controls: Controls,
        *,
        tray_available: bool,
        first_launch: QWidget | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``first_launch`` is shown under the status while approver guards no server."""
        super().__init__(parent)
        self.setWindowTitle("approver")
        self.setWindowIcon(app_icon())
        self._controls = controls
        # Everything scrolls: on a short or scaled screen (1440x900 at 200 % is 450 points tall)
        # the window cannot grow to its content, and wrapped text must not lose its last lines.
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(self.scroll_area)
        content = QWidget()
        layout = QVBoxLayout(content)
        self._layout = layout
        self.scroll_area.setWidget(content)

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
        self.first_launch = first_launch
        if first_launch is not None:
            layout.addWidget(first_launch)

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
        ]
        self.buttons: dict[str, QToolButton] = {}
        for index, action in enumerate(commands):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            buttons.addWidget(button, index // 3, index % 3)
            self.buttons[action.text()] = button
        quit_button = QToolButton()
        quit_button.setDefaultAction(controls.quit)
        quit_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        quit_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        # A row of its own: in the cell after the six commands it hid Connect a client.
        buttons.addWidget(quit_button, 2, 2)
        self.buttons[controls.quit.text()] = quit_button
        # A checkbox, as in the tray menu: a checked tool button barely looks pressed.
        self.autostart = QCheckBox(controls.autostart.text())
        self.autostart.setObjectName("autostart")
        self.autostart.toggled.connect(controls.autostart.setChecked)
        controls.autostart.toggled.connect(self.autostart.setChecked)
        controls.autostart.changed.connect(self._sync_autostart)
        self._sync_autostart()
        buttons.addWidget(self.autostart, 2, 0, 1, 2)
        layout.addLayout(buttons)

        notice_row = QHBoxLayout()
        self.notice = plain_label(wrap=True, selectable=True, name="notice")
        self.notice.setStyleSheet("QLabel { color: #555; }")
        # Room for two lines from the start, so a notice arriving does not push the window around.
        self.notice.setMinimumHeight(self.notice.fontMetrics().lineSpacing() * 2 + 4)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        notice_row.addWidget(self.notice, 1)
        self.notice_button = QPushButton("Show in audit log")
        self.notice_button.setObjectName("notice_open")
        self.notice_button.clicked.connect(lambda: self.notice_activated.emit(self._notice_target))
        self.notice_button.setVisible(False)
        notice_row.addWidget(self.notice_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(notice_row)
        self._notice_target: object = None
        self.set_waiting([])
        self._placed = False
        self.resize(self._content_size())

    def _content_size(self) -> QSize:
        """The size that shows all of the content without scrolling, at least 640 wide."""
        width = max(self.width(), 640)
        layout = self._layout
        wrapped = layout.hasHeightForWidth()
        return QSize(width, layout.totalHeightForWidth(width) if wrapped else layout.sizeHint().height())

    def fit_contents(self) -> None:
        """Grow to show every line of what is visible now (word-wrapped text included), within the
        screen; what does not fit scrolls."""
        wanted = self._content_size()
        self.resize(wanted.width(), max(self.height(), wanted.height()))
        if self._placed:
            keep_inside(self)

    def showEvent(self, event: QShowEvent) -> None:
        """The first time: as tall as the content, inside the screen."""
        if not self._placed:
            self._placed = True
            place(self, self._content_size())
        super().showEvent(event)

    def _sync_autostart(self) -> None:
        action = self.autostart_action
        self.autostart.setEnabled(action.isEnabled())
        self.autostart.setToolTip(action.toolTip())
        if self.autostart.isChecked() != action.isChecked():
            self.autostart.setChecked(action.isChecked())

    @property
    def autostart_action(self) -> QAction:
        """The shared Start at login action the checkbox mirrors."""
        return self._controls.autostart

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

    def show_notice(self, title: str, body: str, target: object = None) -> None:
        """Show the latest notification under the buttons; with a ``target`` (an audit row id), a
        button opens it in the audit log."""
        self.notice.setText(f"{title}: {body}")
        self._notice_target = target
        self.notice_button.setVisible(isinstance(target, int))

    def clear_notice(self) -> None:
        """Remove the notice line (what it said is over: the call it named was answered)."""
        self.notice.setText("")

    def add_panel(self, panel: QWidget) -> None:
        """Add a section under the waiting calls (the Missed list)."""
        self._layout.insertWidget(self._panels_at, panel)
        self._panels_at += 1

    def _pick(self, item: QListWidgetItem) -> None:
        request_id = item.data(Qt.ItemDataRole.UserRole)
        if request_id:
            self._controls.pick_request.emit(request_id)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Hide instead of closing: approver keeps guarding calls until Quit."""
        event.ignore()
        self.hide()
