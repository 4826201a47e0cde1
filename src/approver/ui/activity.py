"""A compact chart of calls over time: stacked bars per time bucket, one colour per decision.

:func:`bucket_counts` turns the log's per-minute or per-hour counts into at most
:data:`MAX_BARS` bars aligned to local time; :class:`ActivityView` paints them with QPainter
(QtCharts is not part of PySide6-Essentials) and says the exact counts in a tooltip.
"""

from __future__ import annotations

import calendar
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QHelpEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from approver.audit.log import AuditLog
from approver.audit.query import ActivityCount, CallFilter
from approver.ui.audit_model import shown

MAX_BARS: Final = 180
"""The most bars the chart draws; longer ranges get wider buckets."""

BUCKET_SIZES: Final = (
    timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
    timedelta(hours=3), timedelta(hours=6), timedelta(days=1), timedelta(days=7), timedelta(days=28),
)  # fmt: skip
"""Bucket widths to choose from, narrowest first."""

_COLOURS: Final = {"allow": QColor("#43a047"), "deny": QColor("#e53935")}
_OTHER_COLOUR: Final = QColor("#8e8e8e")
_ORDER: Final = ("allow", "deny")
# Weeks start on Monday; 1970-01-01, the origin of local epoch seconds, was a Thursday.
_WEEK_SHIFT: Final = 3 * 86_400


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bar: calls per decision from ``start`` (inclusive) to ``end`` (exclusive), local time."""

    start: datetime
    end: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All calls in the bucket."""
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class ActivityData:
    """What the chart shows for one filter, read from the log (on a worker thread, as it can be slow)."""

    counts: list[ActivityCount]
    start: datetime
    end: datetime
    source: Literal["minute", "hour", "day"]
    """The granularity the counts were read at; counts added later must use the same."""
    top: int
    """The newest row id counted."""


def load_activity(log: AuditLog, where: CallFilter, now: datetime) -> ActivityData:
    """Counts for calls matching ``where`` (pinned by ``where.max_id``) over its time range.

    Without ``since`` the chart starts at the oldest matching call; without ``until`` it ends
    at ``now``.
    """
    end = where.until or now
    start = where.since
    if start is None:
        oldest = log.summaries(where, limit=1, oldest_first=True)
        start = datetime.fromisoformat(oldest[0].ts) if oldest else end - timedelta(hours=1)
    span = max(end - start, timedelta(minutes=1))
    source = source_bucket(bucket_size(span), span)
    return ActivityData(log.activity(where, source), start, end, source, where.max_id or 0)


def bucket_size(span: timedelta) -> timedelta:
    """The narrowest of :data:`BUCKET_SIZES` that covers ``span`` in at most :data:`MAX_BARS` bars."""
    for size in BUCKET_SIZES:
        if span <= size * MAX_BARS:
            return size
    return BUCKET_SIZES[-1]


def source_bucket(size: timedelta, span: timedelta) -> Literal["minute", "hour", "day"]:
    """The granularity to ask :meth:`~approver.audit.log.AuditLog.activity` for, for bars of ``size``."""
    if size < timedelta(hours=1):
        return "minute"
    # Hours keep local days aligned in every whole-hour time zone; past a year, UTC days will do.
    return "hour" if span <= timedelta(days=400) else "day"


def _local_seconds(moment: datetime) -> int:
    """Seconds since 1970-01-01 00:00 on the local wall clock (so days start at local midnight)."""
    return calendar.timegm(moment.astimezone().timetuple())


def _slot(moment: datetime, seconds: int) -> int:
    shift = _WEEK_SHIFT if seconds % (7 * 86_400) == 0 else 0
    return (_local_seconds(moment) + shift) // seconds


def _slot_start(slot: int, seconds: int) -> datetime:
    shift = _WEEK_SHIFT if seconds % (7 * 86_400) == 0 else 0
    wall = datetime.fromtimestamp(slot * seconds - shift, UTC).replace(tzinfo=None)
    return wall.astimezone()  # a naive time counts as local: back to an aware local time


def bucket_counts(
    counts: Iterable[ActivityCount], start: datetime, end: datetime, size: timedelta
) -> list[Bucket]:
    """Bars of width ``size`` from ``start`` to ``end`` (aware datetimes), empty ones included.

    Buckets are aligned to the local clock (hours on the hour, days at midnight, weeks on
    Monday). ``counts`` are already filtered by time, but their starts are truncated to the
    minute or hour, so one may fall just before ``start``: it lands in the first bar.
    """
    seconds = int(size.total_seconds())
    first, last = _slot(start, seconds), _slot(end - timedelta(microseconds=1), seconds)
    if last < first:
        return []
    tallies: list[dict[str, int]] = [{} for _ in range(last - first + 1)]
    for count in counts:
        tally = tallies[min(max(_slot(count.start, seconds) - first, 0), last - first)]
        tally[count.decision] = tally.get(count.decision, 0) + count.count
    return [
        Bucket(_slot_start(first + i, seconds), _slot_start(first + i + 1, seconds), tally)
        for i, tally in enumerate(tallies)
    ]


def describe(bucket: Bucket) -> str:
    """Tooltip text for one bar (plain text)."""
    last_moment = bucket.end - timedelta(seconds=1)
    if bucket.end - bucket.start < timedelta(days=1):
        span = f"{bucket.start:%a %Y-%m-%d %H:%M} – {bucket.end:%H:%M}"
    elif bucket.start.date() == last_moment.date():
        span = f"{bucket.start:%a %Y-%m-%d}"
    else:
        span = f"{bucket.start:%a %Y-%m-%d} – {last_moment:%a %Y-%m-%d}"
    calls = "call" if bucket.total == 1 else "calls"
    parts = [f"{count:,} {shown(decision) or '(none)'}" for decision, count in _ordered(bucket.counts)]
    return f"{span}\n{bucket.total:,} {calls}" + (": " + ", ".join(parts) if parts else "")


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(
        counts.items(), key=lambda item: (_ORDER.index(item[0]) if item[0] in _ORDER else 9, item[0])
    )


class ActivityView(QWidget):
    """Stacked bars of calls per time bucket and decision, with counts in a tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._counts: list[ActivityCount] = []
        self._start = self._end = datetime.now(UTC)
        self._buckets: list[Bucket] = []
        self._message = "Loading activity…"
        self.empty_text = "No calls in this time range"
        """What the chart says when no bar has a call."""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(84)
        self.setAccessibleName("Calls over time")

    @property
    def buckets(self) -> Sequence[Bucket]:
        """The bars currently drawn, oldest first."""
        return self._buckets

    @property
    def message(self) -> str:
        """What the chart says instead of bars ("" while it draws bars)."""
        return self._message

    def sizeHint(self) -> QSize:
        """Wide and short: a strip above the table."""
        return QSize(600, 96)

    def set_message(self, message: str) -> None:
        """Show ``message`` instead of bars (while loading, or when the log cannot be read)."""
        self._message = message
        self._buckets = []
        self.update()

    def set_counts(self, counts: Sequence[ActivityCount], start: datetime, end: datetime) -> None:
        """Draw ``counts`` (from the log) over ``start``..``end``."""
        self._counts = list(counts)
        self._start, self._end = start, end
        self._rebucket()

    def add_counts(self, counts: Sequence[ActivityCount], end: datetime) -> None:
        """Add counts of newly recorded calls and extend the chart to ``end``."""
        self._counts.extend(counts)
        self._end = max(self._end, end)
        self._rebucket()

    def _rebucket(self) -> None:
        span = self._end - self._start
        self._buckets = bucket_counts(self._counts, self._start, self._end, bucket_size(span))
        total = sum(bucket.total for bucket in self._buckets)
        self._message = "" if total else self.empty_text
        self.setToolTip("")
        self.update()

    def _bar_at(self, x: float) -> Bucket | None:
        if not self._buckets or self.width() <= 0:
            return None
        index = int(x / self.width() * len(self._buckets))
        return self._buckets[index] if 0 <= index < len(self._buckets) else None

    def event(self, event: QEvent) -> bool:
        """Tooltips with the exact counts of the bar under the pointer."""
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            bucket = self._bar_at(event.pos().x())
            if bucket is None:
                QToolTip.hideText()
            else:
                # QToolTip guesses rich text; escaped text in a <p> is unambiguous and stays plain.
                text = html.escape(describe(bucket)).replace("\n", "<br>")
                QToolTip.showText(event.globalPos(), f"<p style='white-space:pre'>{text}</p>", self)
            return True
        return super().event(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        """Bars scaled to the busiest bucket, the busiest count at top left, the range below."""
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        text_colour = palette.color(QPalette.ColorRole.PlaceholderText)
        metrics = painter.fontMetrics()
        label_height = metrics.height()
        if self._message:
            painter.setPen(text_colour)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._message)
            return
        # The legend and the peak get a strip of their own above the bars, so they never cover
        # a bar (the newest is at the right, under the legend) nor sit on a bar of their colour.
        top = label_height + 4
        chart = QRectF(0, top, self.width(), self.height() - top - label_height - 4)
        peak = max(bucket.total for bucket in self._buckets)
        width = chart.width() / len(self._buckets)
        gap = 1.0 if width >= 4 else 0.0
        for index, bucket in enumerate(self._buckets):
            bottom = chart.bottom()
            for decision, count in _ordered(bucket.counts):
                height = chart.height() * count / peak
                bar = QRectF(chart.left() + index * width, bottom - height, max(width - gap, 1.0), height)
                painter.fillRect(bar, _COLOURS.get(decision, _OTHER_COLOUR))
                bottom -= height
        painter.setPen(text_colour)
        painter.drawText(QPointF(4, label_height), f"{peak:,} max")
        baseline = self.height() - 3
        painter.drawText(QPointF(4, baseline), f"{self._buckets[0].start:%Y-%m-%d %H:%M}")
        right = f"{self._buckets[-1].end:%Y-%m-%d %H:%M}"
        painter.drawText(QPointF(self.width() - metrics.horizontalAdvance(right) - 4, baseline), right)
        x = float(self.width() - 4)
        side = label_height * 0.6
        for name in reversed(_ORDER):
            x -= metrics.horizontalAdvance(name) + 6
            painter.drawText(QPointF(x, label_height), name)
            x -= side + 4
            square = QRectF(x, label_height * 0.35, side, side)
            painter.fillRect(square, _COLOURS[name])
            painter.drawRect(square)  # an outline keeps the swatch visible on any background
            x -= 8
