"""Nothing ends silently: calls that timed out or were withdrawn while waiting for you.

:class:`MissedCalls` follows the approval endings and the audit rows. A call that ended without
your answer (nobody answered in time, or the client cancelled or went away) raises a
notification and lands in the main window's "Missed" list, newest first, with a link to its row
in the audit log once that row is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from approver.approval.broker import ApprovalRequest, Resolution, Verdict
from approver.approval.headline import headline
from approver.audit.log import DecisionRecord
from approver.events import Recorded
from approver.ui.text import plain_label
from approver.visible import reveal_text

KEEP: Final = 50
"""Missed calls listed at most (the audit log keeps them all)."""

_WHY: Final = {
    Verdict.TIMED_OUT: "nobody answered in time, so it was denied",
    Verdict.CANCELLED: "the client withdrew it (cancelled or went away)",
}


@dataclass
class MissedCall:
    """A call that ended while waiting for you, and its audit row once written."""

    request: ApprovalRequest
    resolution: Resolution
    ended: float
    row_id: int | None = None

    def describe(self) -> str:
        """One line for the list (revealed)."""
        moment = time.strftime("%H:%M:%S", time.localtime(self.ended))
        why = _WHY.get(self.resolution.verdict, self.resolution.decided_by)
        link = "" if self.row_id is None else f" · audit row {self.row_id}: open it"
        return reveal_text(
            f"{moment} {headline(self.request).sentence()} ({self.request.tool.name}): {why}{link}"
        )


def missed(resolution: Resolution) -> bool:
    """Whether an ending happened without the user's answer (and not by pausing or quitting)."""
    return resolution.verdict in _WHY


class MissedCalls(QGroupBox):
    """The "Missed" list: calls that timed out or were withdrawn, newest first."""

    open_row = Signal(int)
    """The user asked to see a missed call's audit row (its decision row id)."""

    def __init__(self, notify: Callable[[str, str], None], parent: QWidget | None = None) -> None:
        super().__init__("Missed calls", parent)
        self.setObjectName("missed")
        self._notify = notify
        self.calls: list[MissedCall] = []
        layout = QVBoxLayout(self)
        self.empty = plain_label(
            "No call has timed out or been withdrawn.", reveal=False, name="missed_empty"
        )
        layout.addWidget(self.empty)
        self.list = QListWidget()
        self.list.setObjectName("missed_list")
        self.list.setAccessibleName("Missed calls, newest first; activate one to open its audit row")
        self.list.setMaximumHeight(110)
        self.list.setWordWrap(True)
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        layout.addWidget(self.list)
        self._redraw()

    def ended(self, request: ApprovalRequest, resolution: Resolution) -> None:
        """Follow ``CoreSignals.approval_ended``: list and announce a missed call."""
        if not missed(resolution):
            return
        call = MissedCall(request, resolution, time.time())
        self.calls.insert(0, call)
        del self.calls[KEEP:]
        self._redraw()
        self._notify(
            reveal_text(f"Missed: {request.tool.name}"),
            reveal_text(f"{headline(request).sentence()}, but {_WHY[resolution.verdict]}."),
        )

    def recorded(self, event: Recorded) -> None:
        """Follow ``CoreSignals.recorded``: link a missed call to its decision row."""
        record = event.record
        if not isinstance(record, DecisionRecord):
            return
        for call in self.calls:
            if call.request.id == record.call_id and call.row_id is None:
                call.row_id = event.row_id
                self._redraw()
                return

    def _redraw(self) -> None:
        self.list.clear()
        for call in self.calls:
            item = QListWidgetItem(call.describe())
            item.setData(Qt.ItemDataRole.UserRole, call.row_id)
            self.list.addItem(item)
        self.list.setVisible(bool(self.calls))
        self.empty.setVisible(not self.calls)

    def _activated(self, item: QListWidgetItem) -> None:
        row_id = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(row_id, int):
            self.open_row.emit(row_id)
