"""Tools whose definition changed since they were pinned: the diff, and accepting the change.

A changed tool stays quarantined (every call needs a person) until the user accepts its new
definition here or with ``approver pins accept``; so does a tool new on a server since its first
pinning, listed as "new: ...". The selected tool's change is shown field by field, pinned and new
side by side, with the changed words coloured. Accepting asks for confirmation in a window that
shows the change again; only that window's Accept accepts.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from approver.errors import ApproverError
from approver.policy.pin_diff import field_changes
from approver.policy.pins import PinInfo, PinStore
from approver.ui.diff_view import SideBySideDiff
from approver.ui.placement import place
from approver.ui.text import plain_label, set_plain
from approver.visible import reveal_text

_NONE_CHANGED = "No tool has changed since approver pinned it."


class AcceptDialog(QDialog):
    """ "Trust the new definition of <tool>?", with the change side by side; Accept or Cancel."""

    def __init__(self, info: PinInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.info = info
        self.setObjectName("accept_confirmation")
        self.setWindowTitle(reveal_text(f"Accept the new definition of {info.tool}?"))
        self.setMinimumSize(480, 320)
        layout = QVBoxLayout(self)
        layout.addWidget(
            plain_label(
                f"Trust {info.tool} on {info.server} as it is now? Its calls then follow the policy again, "
                "without the quarantine. A server that rewrote a tool's description or hints may be "
                "attacking you: accept only a change you expected.",
                wrap=True,
                name="accept_question",
            )
        )
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        self.diff = SideBySideDiff()
        self.diff.show_changes(field_changes(info.pinned_definition, info.pending_definition))
        scroll.setWidget(self.diff)
        layout.addWidget(scroll, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        self.accept_button = QPushButton("Accept the new definition")
        self.accept_button.setObjectName("confirm_accept")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel_accept")
        self.cancel_button.setDefault(True)
        self.accept_button.setAutoDefault(False)
        self.accept_button.clicked.connect(self.accept)
        self.cancel_button.clicked.connect(self.reject)
        row.addWidget(self.accept_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        place(self, QSize(900, 560))


class PinsPanel(QWidget):
    """Lists changed tools; shows the selected one's change side by side; accepts it after confirming."""

    accepted = Signal(str, str)
    """Server and tool whose new definition was accepted."""

    def __init__(self, pins: PinStore | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pins = pins
        self._changed: list[PinInfo] = []
        self.confirmation: AcceptDialog | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = plain_label(wrap=True, selectable=True, name="pins_summary")
        layout.addWidget(self.summary)
        self.list = QListWidget()
        self.list.setObjectName("changed_tools")
        self.list.setMaximumHeight(120)
        self.list.currentRowChanged.connect(self._show_selected)
        layout.addWidget(self.list)
        self.diff = SideBySideDiff()
        self.diff.setObjectName("pin_diff")
        layout.addWidget(self.diff)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept the new definition…")
        self.accept_button.setObjectName("accept_pin")
        self.accept_button.setToolTip("Trust the selected tool as it is now (asks first, showing the change)")
        self.accept_button.clicked.connect(self.ask_to_accept)
        row.addWidget(self.accept_button)
        row.addStretch()
        layout.addLayout(row)
        self.message = plain_label(wrap=True, selectable=True, name="pins_message")
        layout.addWidget(self.message)
        self.refresh()

    @property
    def changed_count(self) -> int:
        """How many tools are quarantined now."""
        return len(self._changed)

    def refresh(self) -> None:
        """Read the pins again (another process may have accepted a change)."""
        selected = self._selected()
        self._changed = []
        error = ""
        if self._pins is None:
            error = "Tool pinning is off."
        else:
            try:
                self._changed = [info for info in self._pins.pins() if info.changed]
            except ApproverError as exc:
                error = str(exc)
        self.list.blockSignals(True)
        self.list.clear()
        for info in self._changed:
            what = "new: " if info.new else ""
            item = QListWidgetItem(reveal_text(f"{what}{info.tool} on {info.server}"))
            item.setData(Qt.ItemDataRole.UserRole, (info.server, info.tool))
            self.list.addItem(item)
        self.list.blockSignals(False)
        if error:
            set_plain(self.summary, error)
        elif self._changed:
            count = len(self._changed)
            set_plain(
                self.summary,
                f"{count} tool{'s' if count != 1 else ''} changed since first seen and "
                f"{'are' if count != 1 else 'is'} quarantined: every call needs your approval until you "
                "accept the new definition. The change, pinned (left) and now (right):",
                reveal=False,
            )
        else:
            set_plain(self.summary, _NONE_CHANGED, reveal=False)
        self.list.setVisible(bool(self._changed))
        keep = next((i for i, info in enumerate(self._changed) if (info.server, info.tool) == selected), 0)
        self.list.setCurrentRow(keep if self._changed else -1)
        self._show_selected()

    def select(self, server: str, tool: str) -> bool:
        """Show the change of ``tool`` on ``server``; False when it is not changed."""
        for row, info in enumerate(self._changed):
            if (info.server, info.tool) == (server, tool):
                self.list.setCurrentRow(row)
                return True
        return False

    def _selected(self) -> tuple[str, str] | None:
        info = self._selected_info()
        return (info.server, info.tool) if info is not None else None

    def _selected_info(self) -> PinInfo | None:
        row = self.list.currentRow()
        return self._changed[row] if 0 <= row < len(self._changed) else None

    def _show_selected(self, _row: int = -1) -> None:
        info = self._selected_info()
        changes = field_changes(info.pinned_definition, info.pending_definition) if info is not None else []
        self.diff.show_changes(changes)
        self.diff.setVisible(info is not None)
        self.accept_button.setEnabled(info is not None)

    def ask_to_accept(self) -> AcceptDialog | None:
        """Ask for confirmation, showing the change; accepting happens only from that window."""
        info = self._selected_info()
        if info is None:
            return None
        if self.confirmation is not None:
            self.confirmation.close()
            self.confirmation.deleteLater()
        self.confirmation = AcceptDialog(info, self)
        # open(), not exec(): a nested event loop would stall the gateway on the qasync loop.
        self.confirmation.finished.connect(self._confirmed)
        self.confirmation.open()
        return self.confirmation

    def _confirmed(self, result: int) -> None:
        dialog = self.confirmation
        if dialog is None or result != QDialog.DialogCode.Accepted.value:
            return
        self._accept(dialog.info.server, dialog.info.tool)

    def _accept(self, server: str, tool: str) -> None:
        if self._pins is None:
            return
        try:
            accepted = self._pins.accept(server, tool)
        except ApproverError as exc:
            set_plain(self.message, f"Not accepted: {exc}")
        else:
            names = ", ".join(accepted) or tool
            set_plain(self.message, f"Accepted the new definition of {names} on {server}.")
            self.accepted.emit(server, tool)
        self.refresh()
