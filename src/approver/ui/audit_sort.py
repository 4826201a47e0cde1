"""Sorting the audit table by any column without losing the lazy model's speed.

Newest first, the model pages through the log as it scrolls and never reads every call. Any
other order (a click on a column header) reads the matching calls' ids once, in that order, on a
worker thread (about a second for a million calls); the model then pages through those ids. The
header shows the order asked for; the status line says while the sort runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QTableView

from approver.audit.log import AuditLog
from approver.ui.audit_model import COLUMN_KEYS, COLUMN_TITLES, AuditTableModel, Sorted, SortOrder, sort_calls
from approver.ui.jobs import Job


def sort_words(order: SortOrder) -> str:
    """``sorted by Tool (Z to A)``, ``oldest first``: the order in words for the status line."""
    if order.key == "time":
        return "newest first" if order.descending else "oldest first"
    title = COLUMN_TITLES[COLUMN_KEYS.index(order.key)]
    return f"sorted by {title} ({'descending' if order.descending else 'ascending'})"


class TableSorter(QObject):
    """Keeps the model in the order the header shows; ``refilter`` re-applies the filter (newest first)."""

    started = Signal(str)
    """A sort began; the text says what is being sorted."""
    finished = Signal(object)
    """A sort ended: None when it is shown, else the error text."""

    def __init__(
        self,
        table: QTableView,
        model: AuditTableModel,
        path: Path,
        jobs: list[Job],
        refilter: Callable[[], None],
    ) -> None:
        super().__init__(table)
        self._model, self._path, self._jobs, self._refilter = model, path, jobs, refilter
        self._wanted = SortOrder()
        self._generation = 0
        header = table.horizontalHeader()
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(0, Qt.SortOrder.DescendingOrder)
        header.sortIndicatorChanged.connect(self._clicked)
        header.setToolTip("Click a column title to sort by it; click again to reverse")
        self._header = header

    @property
    def wanted(self) -> SortOrder:
        """The order the header shows."""
        return self._wanted

    @property
    def sorting(self) -> bool:
        """Whether a sort is running."""
        return self._generation > 0 and self._model.order != self._wanted

    def sort_by(self, column: int, descending: bool) -> None:
        """Sort by ``column`` (as a header click does)."""
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self._header.setSortIndicator(column, order)

    def _clicked(self, column: int, order: Qt.SortOrder) -> None:
        self._wanted = SortOrder(COLUMN_KEYS[column], order == Qt.SortOrder.DescendingOrder)
        if self._wanted.default and not self._model.order.default:
            self._generation += 1  # a sort still running is no longer wanted
            self._refilter()
        else:
            self.apply()

    def apply(self) -> None:
        """Bring the model to the wanted order: call after the filter changed, or to take in new calls."""
        self._generation += 1
        if self._wanted.default or self._model.log is None:
            return
        generation, path, where, order = self._generation, self._path, self._model.where, self._wanted
        self.started.emit(f"Sorting {self._model.rowCount():,} calls: {sort_words(order)}…")

        def work(_job: Job) -> tuple[int, Sorted]:
            with AuditLog(path, read_only=True) as log:
                # Pinned to the newest call now: the sorted table takes in every call recorded so far.
                return generation, sort_calls(log, dataclasses.replace(where, max_id=log.head_id()), order)

        job = Job()
        job.finished.connect(self._done)
        job.start(work, self._jobs)

    def _done(self, result: object, error: object) -> None:
        if not isinstance(result, tuple):
            self.finished.emit(f"The calls could not be sorted: {error}")
            return
        generation, found = result
        if generation == self._generation and self._model.set_sorted(found):
            self.finished.emit(None)
