"""The audit table's model (every call, newest first, read a page at a time) and its wording.

The model opens its own read-only :class:`~approver.audit.log.AuditLog` and never loads the whole
log: rows are fetched in pages on demand and a bounded number of pages is kept, so a log of a
million calls opens and scrolls like a small one. It pins the newest row id it has seen, so the
list does not shift under the reader; :meth:`AuditTableModel.refresh` then inserts calls
committed since at the top. Pages are numbered from the *oldest* call, which is why new calls
leave every cached page but the newest one valid.
"""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from approver.audit.log import AuditError, AuditLog
from approver.audit.query import CallFilter, CallSummary
from approver.visible import reveal_text

COLUMN_TITLES: Final = (
    "Time",
    "Client",
    "Server",
    "Tool",
    "Risk",
    "Decision",
    "Decided by",
    "Duration",
    "Outcome",
)
"""The table's columns, in order."""

DURATION_COLUMN: Final = COLUMN_TITLES.index("Duration")
_DECISION_COLUMN: Final = COLUMN_TITLES.index("Decision")
_OUTCOME_COLUMN: Final = COLUMN_TITLES.index("Outcome")
_WARNING: Final = QColor("#c62828")

PAGE_SIZE: Final = 200
"""Calls read per query; a screen shows a few dozen."""

CALL_ID_ROLE: Final = int(Qt.ItemDataRole.UserRole)
"""Item data role holding the decision row id of a table row."""

_Index = QModelIndex | QPersistentModelIndex


@functools.lru_cache(maxsize=4096)
def shown(text: str) -> str:
    """``text`` as one line of a cell shows it: hidden characters made visible.

    Cached because clients, servers, tools and decisions repeat on nearly every row (and stay
    cached while unique times come and go).
    """
    return reveal_text(text)


def local_time(ts: str) -> str:
    """A stored UTC time (``2025-01-31T12:00:00.000Z``) in local time, to the second."""
    try:
        return datetime.fromisoformat(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return reveal_text(ts)


def duration_text(duration_ms: float | None) -> str:
    """``12 ms``, ``1.5 s``, ``3 min 5 s``, or "" when unknown."""
    if duration_ms is None:
        return ""
    if duration_ms < 1000:
        return f"{duration_ms:.0f} ms"
    if duration_ms < 60_000:
        return f"{duration_ms / 1000:.1f} s"
    minutes, seconds = divmod(round(duration_ms / 1000), 60)
    return f"{minutes} min {seconds} s"


def is_running(call: CallSummary) -> bool:
    """Whether ``call`` was allowed and its outcome is not recorded yet."""
    return call.decision == "allow" and call.outcome is None


def outcome_text(call: CallSummary) -> str:
    """What the Outcome column says about ``call`` (before revealing)."""
    if call.outcome is not None:
        return call.outcome
    return "no outcome yet" if is_running(call) else "not forwarded"


class _Row(NamedTuple):
    call: CallSummary
    cells: tuple[str, ...]


def _row(call: CallSummary) -> _Row:
    risk = f"{call.risk_class or ''} ({call.risk_level})" if call.risk_level else call.risk_class or ""
    texts = (
        local_time(call.ts),
        call.client or "",
        call.server or "",
        call.tool or "",
        risk,
        call.decision or "",
        call.decided_by or "",
        duration_text(call.duration_ms),
        outcome_text(call),
    )
    return _Row(call, tuple(shown(text) for text in texts))


@dataclass(frozen=True, slots=True)
class SortOrder:
    """How the table is sorted: a key of :data:`~approver.audit.query.SORT_KEYS` and a direction."""

    key: str = "time"
    descending: bool = True

    @property
    def default(self) -> bool:
        """Newest first: the order the model pages through without reading every call."""
        return self == SortOrder()


COLUMN_KEYS: Final = (
    "time",
    "client",
    "server",
    "tool",
    "risk",
    "decision",
    "decided_by",
    "duration",
    "outcome",
)
"""The sort key of each column, in :data:`COLUMN_TITLES` order."""


@dataclass(frozen=True, slots=True)
class Sorted:
    """A filter's calls in a sort order other than newest first, read on a worker thread."""

    where: CallFilter
    """The filter, pinned (``max_id``) to the newest call the ids include."""
    order: SortOrder
    ids: array[int]


def sort_calls(log: AuditLog, where: CallFilter, order: SortOrder) -> Sorted:
    """Every call matching ``where`` (pinned with ``max_id``) in ``order`` (safe on a worker thread)."""
    return Sorted(where, order, log.sorted_ids(where, order.key, descending=order.descending))


@dataclass(frozen=True, slots=True)
class Prepared:
    """A filter's count and newest pages, read ahead so that applying the filter is instant."""

    where: CallFilter
    head: int
    count: int
    page_size: int
    pages: dict[int, list[_Row]]


def prepare(log: AuditLog, where: CallFilter, page_size: int = PAGE_SIZE) -> Prepared:
    """Count the calls matching ``where`` and read the newest two pages (safe on a worker thread)."""
    head, count = log.head_and_count(where)
    pages: dict[int, list[_Row]] = {}
    if count:
        newest = (count - 1) // page_size
        first = max(newest - 1, 0) * page_size
        calls = log.summaries(dataclasses.replace(where, max_id=head), limit=count - first)[::-1]
        for number in range(first // page_size, newest + 1):
            start = number * page_size - first
            pages[number] = [_row(call) for call in calls[start : start + page_size]]
    return Prepared(where, head, count, page_size, pages)


class AuditTableModel(QAbstractTableModel):
    """Calls in the audit log matching a :class:`CallFilter`, newest first, fetched lazily.

    Until the database file exists (or when it cannot be read) the model is empty and
    :attr:`problem` says why; :meth:`refresh` tries again.
    """

    def __init__(
        self,
        audit_db: Path,
        parent: QObject | None = None,
        *,
        page_size: int = PAGE_SIZE,
        max_pages: int = 40,
    ) -> None:
        super().__init__(parent)
        self._path = audit_db
        self._page_size = page_size
        self._max_pages = max_pages
        self._log: AuditLog | None = None
        self._filter = CallFilter()
        self._top = 0
        """The newest row id the rows are pinned to."""
        self._count = 0
        self._pages: OrderedDict[int, list[_Row]] = OrderedDict()
        self._sorted: Sorted | None = None
        """Set while sorted other than newest first: the table shows these ids in this order."""
        self.unsorted_new = 0
        """Matching calls recorded since the sort, which a sorted table leaves out until sorted again."""
        self.problem: str | None = None
        """Why the log cannot be shown right now (None: it can, or it does not exist yet)."""
        self._reload()

    # -- what the window asks --------------------------------------------------------------------

    @property
    def log(self) -> AuditLog | None:
        """The model's read-only connection (None until the database exists)."""
        return self._log

    @property
    def available(self) -> bool:
        """Whether the audit log is open."""
        return self._log is not None

    @property
    def where(self) -> CallFilter:
        """The filter set with :meth:`set_filter`."""
        return self._filter

    @property
    def snapshot(self) -> CallFilter:
        """The filter pinned to the rows shown: exactly the calls in the table."""
        return dataclasses.replace(self._filter, max_id=min(self._top, self._filter.max_id or self._top))

    @property
    def order(self) -> SortOrder:
        """The order of the rows: newest first unless :meth:`set_sorted` said otherwise."""
        return self._sorted.order if self._sorted is not None else SortOrder()

    @property
    def cached_pages(self) -> int:
        """How many pages are held in memory (never more than ``max_pages``)."""
        return len(self._pages)

    def set_filter(self, where: CallFilter, prepared: Prepared | None = None) -> None:
        """Show the calls matching ``where``, newest first (resets the view).

        ``prepared`` (from :func:`prepare` for the same filter and page size, on a worker
        thread) saves the queries that can be slow, such as counting a text search.
        """
        self.beginResetModel()
        self._filter = where
        self._sorted, self.unsorted_new = None, 0
        if prepared is not None and prepared.where == where and prepared.page_size == self._page_size:
            self._pages.clear()
            self._top, self._count, self.problem = prepared.head, prepared.count, None
            self._pages.update(prepared.pages)
        else:
            self._reload()
        self.endResetModel()

    def set_sorted(self, found: Sorted) -> bool:
        """Show the calls of ``found`` in its order; False (nothing changes) when the filter changed since."""
        if dataclasses.replace(found.where, max_id=None) != dataclasses.replace(self._filter, max_id=None):
            return False
        self.beginResetModel()
        self._sorted, self.unsorted_new = found, 0
        self._pages.clear()
        self._top, self._count = found.where.max_id or 0, len(found.ids)
        self.endResetModel()
        return True

    def row_of(self, call_id: int) -> int | None:
        """The table row of the call whose decision row is ``call_id``, or None when it is not shown."""
        if self._log is None or not 0 < call_id <= self._top:
            return None
        if self._sorted is not None:
            try:
                return self._sorted.ids.index(call_id)
            except ValueError:
                return None
        snapshot = self.snapshot
        try:
            if not self._log.count(dataclasses.replace(snapshot, min_id=call_id, max_id=call_id)):
                return None
            return self._log.count(dataclasses.replace(snapshot, min_id=call_id + 1))
        except (sqlite3.Error, AuditError):
            return None

    def refresh(self) -> int:
        """Insert calls committed since the last look at the top; returns how many.

        Also picks up outcomes of running calls, and opens the log once the file exists. A sorted
        table inserts nothing: :attr:`unsorted_new` counts the calls it leaves out.
        """
        if self._log is None:
            self.set_filter(self._filter)
            return self._count
        try:
            head = self._log.head_id()
            added = 0
            if head > self._top:
                newer = dataclasses.replace(self._filter, min_id=self._top + 1, max_id=head)
                added = self._log.count(newer)
        except (sqlite3.Error, AuditError) as exc:
            self.problem = f"the audit log could not be read: {exc}"
            return 0
        self.problem = None
        if added and self._sorted is not None:
            self.unsorted_new = added
        elif added:
            self.beginInsertRows(QModelIndex(), 0, added - 1)
            # The newest page was the only one that could be partly filled.
            self._pages.pop(self._count // self._page_size, None)
            self._top, self._count = head, self._count + added
            self.endInsertRows()
        else:
            self._top = max(self._top, head)
        self._forget_running()
        return added

    def call_id(self, row: int) -> int | None:
        """The decision row id of table row ``row`` (None when it cannot be read)."""
        found = self._row(row)
        return found.call.id if found else None

    def close(self) -> None:
        """Close the database connection; the model shows nothing afterwards."""
        self.beginResetModel()
        if self._log is not None:
            self._log.close()
        self._log, self._count, self._top, self._sorted = None, 0, 0, None
        self._pages.clear()
        self.endResetModel()

    # -- Qt model interface ----------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        """The number of matching calls (0 under a valid parent: this is a flat table)."""
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """The number of columns."""
        return 0 if parent.isValid() else len(COLUMN_TITLES)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles; rows have no header."""
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMN_TITLES[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text (always plain, revealed text), alignment, warning colour and the call's id."""
        if not index.isValid():
            return None
        found = self._row(index.row())
        if found is None:
            return "…" if role == Qt.ItemDataRole.DisplayRole else None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return found.cells[column]
        if role == CALL_ID_ROLE:
            return found.call.id
        if role == Qt.ItemDataRole.TextAlignmentRole and column == DURATION_COLUMN:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and (
            (column == _DECISION_COLUMN and found.call.decision == "deny")
            or (column == _OUTCOME_COLUMN and found.call.outcome in ("error", "cancelled"))
        ):
            return _WARNING
        return None

    # -- paging ----------------------------------------------------------------------------------

    def _reload(self) -> None:
        """Open the log if needed, pin the newest row and count the matching calls."""
        self._pages.clear()
        self._count = self._top = 0
        if self._log is None:
            if not self._path.exists():
                self.problem = None
                return
            try:
                self._log = AuditLog(self._path, read_only=True)
            except AuditError as exc:
                self.problem = str(exc)
                return
        try:
            self._top, self._count = self._log.head_and_count(self._filter)
            self.problem = None
        except (sqlite3.Error, AuditError) as exc:
            self._count = 0
            self.problem = f"the audit log could not be read: {exc}"

    def _row(self, row: int) -> _Row | None:
        if not 0 <= row < self._count:
            return None
        if self._sorted is not None:
            number, within = divmod(row, self._page_size)  # sorted pages are in table order
        else:
            rank = self._count - 1 - row  # 0 is the oldest call
            number, within = divmod(rank, self._page_size)
        page = self._page(number)
        return page[within] if within < len(page) else None

    def _page(self, number: int) -> list[_Row]:
        if (page := self._pages.get(number)) is not None:
            self._pages.move_to_end(number)
            return page
        try:
            page = [_row(call) for call in self._fetch(number)]
        except (sqlite3.Error, AuditError) as exc:
            self.problem = f"the audit log could not be read: {exc}"
            return []
        self._pages[number] = page
        while len(self._pages) > self._max_pages:
            self._pages.popitem(last=False)
        return page

    def _fetch(self, number: int) -> list[CallSummary]:
        """Page ``number`` (oldest first), seeking from a cached neighbour when there is one."""
        assert self._log is not None
        size, where = self._page_size, self.snapshot
        first = number * size
        if self._sorted is not None:
            return self._log.summaries_of(self._sorted.ids[first : first + size])
        wanted = min(size, self._count - first)
        if (older := self._pages.get(number - 1)) and len(older) == size:
            after = dataclasses.replace(where, min_id=older[-1].call.id + 1)
            return self._log.summaries(after, limit=wanted, oldest_first=True)
        if newer := self._pages.get(number + 1):
            before = dataclasses.replace(where, max_id=newer[0].call.id - 1)
            return self._log.summaries(before, limit=wanted)[::-1]
        # No neighbour: skip from whichever end is nearer (the index makes skipping cheap).
        from_newest = self._count - first - wanted
        if first <= from_newest:
            return self._log.summaries(where, limit=wanted, offset=first, oldest_first=True)
        return self._log.summaries(where, limit=wanted, offset=from_newest)[::-1]

    def _forget_running(self) -> None:
        """Drop cached pages holding running calls, so their outcomes show once recorded."""
        stale = [number for number, page in self._pages.items() if any(is_running(row.call) for row in page)]
        for number in stale:
            del self._pages[number]
            first = number * self._page_size
            last = min(first + self._page_size, self._count) - 1
            rows = (
                (first, last)
                if self._sorted is not None
                else (self._count - 1 - last, self._count - 1 - first)
            )
            self.dataChanged.emit(self.index(rows[0], 0), self.index(rows[1], len(COLUMN_TITLES) - 1))
