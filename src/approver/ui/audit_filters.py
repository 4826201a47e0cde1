"""The audit window's filter bar, and what to say when a filter leaves no call.

The bar turns its controls into a :class:`~approver.audit.query.CallFilter`; the window decides
when and how to apply it. :func:`explain_empty` says which filter excludes everything, by
counting what each one alone would leave.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from PySide6.QtCore import QDateTime, QSignalBlocker, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDateTimeEdit,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from approver.audit.log import AuditLog
from approver.audit.query import CallFilter
from approver.ui.audit_details import DECIDED_BY, OUTCOMES, RISK_LEVELS
from approver.ui.audit_model import shown

SEARCH_DELAY_MS: Final = 300
"""The search applies this long after the last keystroke."""

TIME_RANGES: Final[tuple[tuple[str, timedelta | None], ...]] = (
    ("All time", None),
    ("Last hour", timedelta(hours=1)),
    ("Last 24 hours", timedelta(days=1)),
    ("Last 7 days", timedelta(days=7)),
    ("Last 30 days", timedelta(days=30)),
)
"""The time range choices: a label and how far back from now (None: no limit)."""
CUSTOM_RANGE: Final = "Custom range…"
"""The time range choice that shows the From and To fields."""
FILTER_COLUMNS: Final = {
    "decision": "All decisions",
    "risk_class": "All risks",
    "server": "All servers",
    "client": "All clients",
}
"""The columns whose choices come from the log, each with the label of its no-filter choice."""
FIXED_CHOICES: Final[dict[str, tuple[str, Mapping[str, str]]]] = {
    "decided_by": ("Decided by anyone", DECIDED_BY),
    "outcome": ("Any outcome", OUTCOMES),
    "risk_level": ("Any level", {level: level for level in RISK_LEVELS}),
}
"""The filters with a fixed set of choices: the no-filter label and value -> label."""
FILTER_NAMES: Final = {
    "decision": "decision",
    "decided_by": "decided by",
    "outcome": "outcome",
    "risk_class": "risk",
    "risk_level": "risk level",
    "server": "server",
    "client": "client",
    "text": "search",
    "time": "time range",
}
"""How the empty-table message names each filter."""


class FilterBar(QWidget):
    """Decision, who decided, outcome, risk, level, server, client, time range and search."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self._combos: dict[str, QComboBox] = {}
        order = ("decision", "decided_by", "outcome", "risk_class", "risk_level", "server", "client")
        choices: dict[str, tuple[str, Mapping[str, str]]] = {
            column: (label, {}) for column, label in FILTER_COLUMNS.items()
        }
        choices |= FIXED_CHOICES
        combos = QHBoxLayout()
        for column in order:
            everything, fixed = choices[column]
            combo = QComboBox(self)
            combo.addItem(everything, None)
            for value, label in fixed.items():
                combo.addItem(label, value)
            combo.setAccessibleName(everything)
            combo.setToolTip(f"Filter by {FILTER_NAMES[column]}")
            # Shrinkable (the text is elided), so the bar fits a small or 200 % scaled screen.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(3)
            combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            combo.currentIndexChanged.connect(self.changed)
            combos.addWidget(combo)
            self._combos[column] = combo
        grid.addLayout(combos, 0, 0)
        second = QHBoxLayout()
        self.time_range = QComboBox(self)
        for label, span in TIME_RANGES:
            self.time_range.addItem(label, span)
        self.time_range.addItem(CUSTOM_RANGE, None)
        self.time_range.setAccessibleName("Time range")
        second.addWidget(self.time_range)
        now = QDateTime.currentDateTime()
        self.since_edit = self._date_edit(now.addDays(-1), "From")
        self.until_edit = self._date_edit(now.addSecs(3600), "To")
        second.addWidget(self.since_edit)
        second.addWidget(self.until_edit)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search tools and arguments")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search tools and arguments")
        second.addWidget(self.search, 1)
        self.clear_button = QPushButton("Clear filters", self)
        self.clear_button.setToolTip("Show every call again")
        self.clear_button.clicked.connect(self.clear)
        second.addWidget(self.clear_button)
        grid.addLayout(second, 1, 0)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.changed)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self._search_now)
        self.time_range.currentIndexChanged.connect(self._time_range_changed)
        self.changed.connect(self._update_clear)
        self._time_range_changed()

    def _date_edit(self, moment: QDateTime, name: str) -> QDateTimeEdit:
        edit = QDateTimeEdit(moment, self)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        edit.setAccessibleName(name)
        edit.setToolTip(f"{name} (local time)")
        edit.dateTimeChanged.connect(self.changed)
        return edit

    def _time_range_changed(self) -> None:
        custom = self.time_range.currentText() == CUSTOM_RANGE
        self.since_edit.setVisible(custom)
        self.until_edit.setVisible(custom)
        self.changed.emit()

    def _search_now(self) -> None:
        self._search_timer.stop()
        self.changed.emit()

    def _update_clear(self) -> None:
        self.clear_button.setEnabled(not self.is_clear())

    def combo(self, column: str) -> QComboBox:
        """The combo box filtering on ``column`` (``decision``, ``decided_by``, ``outcome``, ``risk_class``,
        ``risk_level``, ``server``, ``client``)."""
        return self._combos[column]

    def set_choices(self, column: str, values: list[str]) -> None:
        """Offer ``values`` for ``column``, keeping the current choice."""
        combo = self._combos[column]
        known = {combo.itemData(i) for i in range(1, combo.count())}
        for value in values:
            if value not in known:
                combo.addItem(shown(value), value)

    def is_clear(self) -> bool:
        """Whether no filter is set (every call shows)."""
        return (
            all(combo.currentIndex() == 0 for combo in self._combos.values())
            and self.time_range.currentIndex() == 0
            and not self.search.text().strip()
        )

    def clear(self) -> None:
        """Set every filter back to "all", then apply once."""
        blockers = [
            QSignalBlocker(widget) for widget in (*self._combos.values(), self.time_range, self.search)
        ]
        for combo in self._combos.values():
            combo.setCurrentIndex(0)
        self.time_range.setCurrentIndex(0)
        self.search.clear()
        del blockers
        self._search_timer.stop()
        self.since_edit.setVisible(False)
        self.until_edit.setVisible(False)
        self.changed.emit()

    def current(self, now: datetime) -> CallFilter:
        """The filter the controls describe; relative time ranges end at ``now``."""
        choices = {column: combo.currentData() for column, combo in self._combos.items()}
        since = until = None
        if self.time_range.currentText() == CUSTOM_RANGE:
            since = datetime.fromtimestamp(self.since_edit.dateTime().toSecsSinceEpoch(), UTC)
            until = datetime.fromtimestamp(self.until_edit.dateTime().toSecsSinceEpoch(), UTC)
        elif (span := self.time_range.currentData()) is not None:
            since = now - span
        return CallFilter(since=since, until=until, text=self.search.text().strip() or None, **choices)

    def describe(self, name: str, where: CallFilter) -> str:
        """How the empty-table message names filter ``name`` with its value in ``where``."""
        if name == "time":
            return f"the time range ({self.time_range.currentText().lower()})"
        if name == "text":
            return f"the search “{where.text}”"
        combo = self._combos[name]
        label = combo.itemText(combo.findData(getattr(where, name)))
        return f"the {FILTER_NAMES[name]} filter ({label})"


def active_filters(where: CallFilter) -> list[str]:
    """The names of the filters ``where`` sets (``time`` for since/until), in the bar's order."""
    names = [
        name
        for name in (
            "decision",
            "decided_by",
            "outcome",
            "risk_class",
            "risk_level",
            "server",
            "client",
            "text",
        )
        if getattr(where, name) is not None
    ]
    if where.since is not None or where.until is not None:
        names.append("time")
    return names


def without(where: CallFilter, name: str) -> CallFilter:
    """``where`` with filter ``name`` removed."""
    if name == "time":
        return dataclasses.replace(where, since=None, until=None)
    return dataclasses.replace(where, **{name: None})


def counts_without_each(log: AuditLog, where: CallFilter) -> dict[str, int]:
    """How many calls each filter of ``where`` alone leaves out: calls matching with it removed.

    Also ``""``: every call (``where``'s pin on the newest call kept). Reads the log; run it on a
    worker thread.
    """
    counts = {name: log.count(without(where, name)) for name in active_filters(where)}
    counts[""] = log.count(CallFilter(max_id=where.max_id))
    return counts


def empty_message(bar: FilterBar, where: CallFilter, counts: Mapping[str, int]) -> str:
    """What the status line says when ``where`` leaves no call, from :func:`counts_without_each`."""
    total = counts.get("", 0)
    if not total:
        return "No calls recorded yet. They appear here as soon as approver records them."
    helping = [(name, count) for name, count in counts.items() if name and count]
    if len(helping) == 1:
        name, count = helping[0]
        others = " the other filters leave" if len(counts) > 2 else ""
        return (
            f"No calls match: {bar.describe(name, where)} excludes every call{others};"
            f" without it {count:,} call{'s' if count != 1 else ''} would show."
        )
    if helping:
        parts = "; ".join(f"without {bar.describe(name, where)}, {count:,}" for name, count in helping[:3])
        return f"No calls match all these filters together ({parts} would show)."
    return f"No calls match these filters together. Clear filters shows all {total:,} calls."
