"""Tools whose definition changed since they were pinned: the diff, and accepting the change.

A changed tool stays quarantined (every call needs a person) until the user accepts its new
definition here or with ``approver pins accept``. Accepting is always a deliberate click on a
selected tool after its diff was on screen.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from approver.errors import ApproverError
from approver.policy.pins import PinInfo, PinStore
from approver.ui.text import plain_label, plain_view, set_plain, set_view_text
from approver.visible import reveal_text

_NONE_CHANGED = "No tool has changed since approver pinned it."


class PinsPanel(QWidget):
    """Lists changed tools; shows the selected one's diff; accepts it on request."""

    def __init__(self, pins: PinStore | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pins = pins
        self._changed: list[PinInfo] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = plain_label(wrap=True, selectable=True, name="pins_summary")
        layout.addWidget(self.summary)
        self.list = QListWidget()
        self.list.setObjectName("changed_tools")
        self.list.setMaximumHeight(120)
        self.list.currentRowChanged.connect(self._show_selected)
        layout.addWidget(self.list)
        self.diff = plain_view(monospace=True)
        self.diff.setObjectName("pin_diff")
        layout.addWidget(self.diff)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept the new definition")
        self.accept_button.setObjectName("accept_pin")
        self.accept_button.setToolTip("Trust the selected tool as it is now; calls follow the policy again")
        self.accept_button.clicked.connect(self.accept_selected)
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
        self.list.clear()
        for info in self._changed:
            item = QListWidgetItem(reveal_text(f"{info.tool} on {info.server}"))
            self.list.addItem(item)
        if error:
            set_plain(self.summary, error)
        elif self._changed:
            count = len(self._changed)
            set_plain(
                self.summary,
                f"{count} tool{'s' if count != 1 else ''} changed since first seen and "
                f"{'are' if count != 1 else 'is'} quarantined: every call needs your approval until you "
                "accept the new definition.",
                reveal=False,
            )
        else:
            set_plain(self.summary, _NONE_CHANGED, reveal=False)
        self.list.setVisible(bool(self._changed))
        keep = next((i for i, info in enumerate(self._changed) if (info.server, info.tool) == selected), 0)
        self.list.setCurrentRow(keep if self._changed else -1)
        self._show_selected()

    def _selected(self) -> tuple[str, str] | None:
        row = self.list.currentRow()
        if 0 <= row < len(self._changed):
            return self._changed[row].server, self._changed[row].tool
        return None

    def _show_selected(self, _row: int = -1) -> None:
        row = self.list.currentRow()
        info = self._changed[row] if 0 <= row < len(self._changed) else None
        set_view_text(self.diff, info.diff if info is not None else "")
        self.diff.setVisible(info is not None)
        self.accept_button.setEnabled(info is not None)

    def accept_selected(self) -> None:
        """Accept the selected tool's new definition."""
        selected = self._selected()
        if selected is None or self._pins is None:
            return
        server, tool = selected
        try:
            accepted = self._pins.accept(server, tool)
        except ApproverError as exc:
            set_plain(self.message, f"Not accepted: {exc}")
        else:
            names = ", ".join(accepted) or tool
            set_plain(self.message, f"Accepted the new definition of {names} on {server}.")
        self.refresh()
