"""Keeps the audit window's activity chart in step with the table: a full count on a worker
thread when the filter changes, then only the newest calls as they are recorded."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from approver.audit.log import AuditError, AuditLog
from approver.ui.activity import ActivityData, ActivityView, load_activity
from approver.ui.audit_filters import active_filters
from approver.ui.audit_model import AuditTableModel
from approver.ui.jobs import Job, deliver_to
from approver.visible import reveal_text


class ActivityFeed(QObject):
    """Counts the calls the table shows for the chart ``view``."""

    loaded = Signal()
    """The chart shows the current filter."""

    def __init__(
        self, view: ActivityView, path: Path, jobs: list[Job], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._view, self._path, self._jobs = view, path, jobs
        self._activity: ActivityData | None = None
        self._generation = 0

    def load(self, model: AuditTableModel) -> None:
        """Count the calls ``model`` shows, over its filter's time range (on a worker thread)."""
        self._activity = None
        self._generation += 1
        if not model.available:
            self._view.set_message("No calls recorded yet")
            return
        filtered = [name for name in active_filters(model.where) if name != "time"]
        self._view.empty_text = "No calls match these filters" if filtered else "No calls in this time range"
        self._view.set_message("Counting calls…")
        where, generation, path, now = model.snapshot, self._generation, self._path, datetime.now(UTC)

        def count(_job: Job) -> tuple[int, ActivityData]:
            with AuditLog(path, read_only=True) as log:
                return generation, load_activity(log, where, now)

        job = Job()
        deliver_to(job, self, lambda result, error: self._done(model, result, error))
        job.start(count, self._jobs)

    def _done(self, model: AuditTableModel, result: object, error: object) -> None:
        if not isinstance(result, tuple):
            if isinstance(error, Exception):
                self._view.set_message(reveal_text(f"Activity could not be counted: {error}"))
            return
        generation, activity = result
        if generation != self._generation:
            return  # the filter changed meanwhile
        self._activity = activity
        self._view.set_counts(activity.counts, activity.start, activity.end)
        self.add(model)
        self.loaded.emit()

    def add(self, model: AuditTableModel) -> None:
        """Count calls the chart has not seen yet (cheap: only the newest rows)."""
        log, activity, top = model.log, self._activity, model.snapshot.max_id or 0
        if log is None or activity is None or top <= activity.top:
            return
        newer = dataclasses.replace(model.snapshot, min_id=activity.top + 1)
        try:
            counts = log.activity(newer, activity.source)
        except (sqlite3.Error, AuditError):
            return
        self._activity = dataclasses.replace(activity, top=top)
        end = activity.end if model.where.until else datetime.now(UTC)
        self._view.add_counts(counts, end)
