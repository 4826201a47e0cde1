"""The approval dialog's queue: every waiting call, most severe first, with next, previous and deny-all.

Each row shows the risk symbol and level in words, the headline, the tool and how long the call
has waited. Picking a row puts that call on screen; "Deny all from <client>" denies every call
of the client on screen (the dialog reports it, the controller settles each through the broker).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from approver.approval.broker import ApprovalRequest
from approver.approval.headline import headline
from approver.approval.presentation import LOOKS, age_text
from approver.ui.risk_band import risk_icon
from approver.ui.text import plain_label, plain_tooltip, set_plain
from approver.visible import reveal_text


def queue_row(request: ApprovalRequest, now: float) -> str:
    """One line for the queue list (revealed): level, headline, tool and age."""
    look = LOOKS[request.risk.level]
    waited = age_text(now - request.received)
    return reveal_text(f"{look.word} · {headline(request).sentence()} · {request.tool.name} · {waited}")


class QueuePanel(QWidget):
    """A list of the waiting calls in review order, with Previous, Next and Deny all from a client."""

    picked = Signal(str)
    """A call was chosen (by row, Previous or Next): its request id."""
    deny_client = Signal(str)
    """"Deny all from <client>" was clicked: the client's name."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queue")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.position = plain_label(reveal=False, name="position")
        self.position.setAccessibleName("Position in the queue")
        layout.addWidget(self.position)
        self.list = QListWidget()
        self.list.setObjectName("queue_list")
        self.list.setAccessibleName("Calls waiting, most severe first")
        self.list.setWordWrap(True)
        self.list.currentItemChanged.connect(self._current_changed)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.previous = QPushButton("◀ &Previous")
        self.previous.setObjectName("previous")
        self.next = QPushButton("&Next ▶")
        self.next.setObjectName("next")
        for button in (self.previous, self.next):
            button.setAutoDefault(False)
            row.addWidget(button)
        self.previous.clicked.connect(lambda: self._step(-1))
        self.next.clicked.connect(lambda: self._step(1))
        layout.addLayout(row)
        self.deny_all = QPushButton()
        self.deny_all.setObjectName("deny_all")
        self.deny_all.setAutoDefault(False)
        self.deny_all.clicked.connect(self._deny_all)
        layout.addWidget(self.deny_all)
        self._ids: list[str] = []
        self._client = ""
        self._filling = False

    def set_requests(
        self, ordered: Sequence[ApprovalRequest], current: ApprovalRequest | None, now: float
    ) -> None:
        """Show ``ordered`` (review order) with ``current`` selected."""
        self._filling = True
        try:
            self.list.clear()
            self._ids = [request.id for request in ordered]
            for request in ordered:
                item = QListWidgetItem(risk_icon(request.risk.level), queue_row(request, now))
                item.setData(Qt.ItemDataRole.UserRole, request.id)
                item.setToolTip(plain_tooltip(headline(request).sentence()))
                self.list.addItem(item)
            index = self._ids.index(current.id) if current is not None and current.id in self._ids else -1
            self.list.setCurrentRow(index)
        finally:
            self._filling = False
        count = len(ordered)
        set_plain(self.position, f"Call {index + 1} of {count}" if count else "", reveal=False)
        self.previous.setEnabled(index > 0)
        self.next.setEnabled(0 <= index < count - 1)
        self._client = current.client if current is not None else ""
        same = sum(request.client == self._client for request in ordered)
        self.deny_all.setText(reveal_text(f"Deny all {same} from {self._client}") if same > 1 else "")
        self.deny_all.setVisible(same > 1)

    def update_ages(self, ordered: Sequence[ApprovalRequest], now: float) -> None:
        """Refresh the "waited" part of each row."""
        for row, request in enumerate(ordered):
            item = self.list.item(row)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == request.id:
                item.setText(queue_row(request, now))

    def _current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if self._filling or current is None:
            return
        self.picked.emit(str(current.data(Qt.ItemDataRole.UserRole)))

    def _step(self, by: int) -> None:
        row = self.list.currentRow() + by
        if 0 <= row < len(self._ids):
            self.picked.emit(self._ids[row])

    def _deny_all(self) -> None:
        if self._client:
            self.deny_client.emit(self._client)
