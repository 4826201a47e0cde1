"""The audit log window: every recorded call, filterable, with details, export and verification.

It reads the log through its own read-only connections (WAL lets it read while the gateway
writes), so it never blocks a call. Anything slow (the activity chart over a long range, an
export, the hash-chain check) runs on a worker thread with its own connection; the window
keeps responding and reports when the work is done.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QFontDatabase, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from approver.audit.log import AuditError, AuditLog, VerifyReport
from approver.audit.query import CallFilter
from approver.config.paths import private_output
from approver.ui.activity import ActivityData, ActivityView, load_activity
from approver.ui.audit_filters import FILTER_COLUMNS, FilterBar
from approver.ui.audit_model import AuditTableModel, Prepared, call_details, prepare, verify_message
from approver.ui.jobs import Cancelled, Job
from approver.visible import reveal_text

WINDOW_TITLE: Final = "approver — Audit log"
REFRESH_DELAY_MS: Final = 250
"""New rows are looked for at most this often, however many are recorded."""
_COLUMN_WIDTHS: Final = (150, 120, 100, 220, 130, 70, 90, 80)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """How an export ended."""

    path: Path
    rows: int
    """Rows written (decision and outcome rows)."""
    error: str | None = None


def _export(source: Path, target: Path, fmt: Literal["csv", "jsonl"], where: CallFilter) -> ExportResult:
    """Write the calls matching ``where`` to ``target`` (only the owner may read it, like the log)."""
    try:
        with private_output(target) as out, AuditLog(source, read_only=True) as log:
            rows = log.export(out, fmt, where=where)
    except OSError as exc:
        return ExportResult(target, 0, exc.strerror or str(exc))
    except (sqlite3.Error, AuditError) as exc:
        return ExportResult(target, 0, str(exc))
    return ExportResult(target, rows)


class AuditWindow(QWidget):
    """The audit log: a filterable table of every call, its details, activity, export and verify.

    Call :meth:`notify_recorded` whenever a row is committed; the window looks for new rows at
    most every :data:`REFRESH_DELAY_MS` and inserts them at the top without moving what the
    reader is looking at.
    """

    export_finished = Signal(object)
    """An :class:`ExportResult`."""
    verify_finished = Signal(object)
    """The :class:`VerifyReport` (``ok=False`` with a problem when the log could not be read)."""
    activity_loaded = Signal()
    """The activity chart shows the current filter."""

    def __init__(self, audit_db: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle(WINDOW_TITLE)
        self.resize(1180, 760)
        self._path = audit_db
        self._model = AuditTableModel(audit_db, self)
        self._stale = False
        self._detail_running = False
        self._activity: ActivityData | None = None
        self._activity_generation = 0
        self._filter_generation = 0
        self._search_job = Job()
        self._activity_job = Job()
        self._export_job = Job()
        self._verify_job = Job()
        self._export_job.finished.connect(self._export_done)
        self._verify_job.finished.connect(self._verify_done)
        self._verify_job.progress.connect(self._verify_progress)
        self._jobs: list[Job] = []

        self.filters = FilterBar(self)
        self.chart = ActivityView(self)
        self.table = self._make_table()
        self.detail = QPlainTextEdit(self)
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Select a call to see its arguments, result and hashes.")
        self.detail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.detail.setAccessibleName("Call details")
        self.status = self._plain_label()
        self.message = self._plain_label()
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = QPushButton("Export…", self)
        self.export_button.setToolTip("Save the calls shown (with their outcome rows) as CSV or JSON Lines")
        self.verify_button = QPushButton("Verify log", self)
        self.verify_button.setToolTip("Recompute the hash chain to detect rows edited, removed or inserted")
        self.export_button.clicked.connect(self.choose_export)
        self.verify_button.clicked.connect(self.verify)
        self._lay_out()

        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self.filters.changed.connect(self.apply_filters)
        self.table.selectionModel().currentRowChanged.connect(self._show_detail)
        QShortcut(QKeySequence.StandardKey.Find, self, self.filters.search.setFocus)
        QShortcut(QKeySequence.StandardKey.Refresh, self, self.refresh)
        self._fill_choices()
        self.apply_filters()

    @property
    def model(self) -> AuditTableModel:
        """The table's model."""
        return self._model

    @property
    def busy(self) -> bool:
        """Whether background work (activity chart, export, verification) is still running."""
        self._jobs = [job for job in self._jobs if job.running]
        return bool(self._jobs)

    # -- layout ----------------------------------------------------------------------------------

    def _plain_label(self) -> QLabel:
        label = QLabel(self)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setWordWrap(True)
        return label

    def _make_table(self) -> QTableView:
        table = QTableView(self)
        table.setModel(self._model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        table.setWordWrap(False)
        table.setAlternatingRowColors(True)
        table.setAccessibleName("Calls")
        rows = table.verticalHeader()
        rows.hide()
        # Fixed heights: Qt never measures a million rows to lay them out.
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(table.fontMetrics().height() + 8)
        columns = table.horizontalHeader()
        columns.setStretchLastSection(True)
        columns.setHighlightSections(False)
        for column, width in enumerate(_COLUMN_WIDTHS):
            table.setColumnWidth(column, width)
        return table

    def _lay_out(self) -> None:
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.verify_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filters)
        layout.addWidget(self.chart)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.message)

    # -- live updates ----------------------------------------------------------------------------

    def notify_recorded(self, _recorded: object = None) -> None:
        """A row was committed: look for new rows soon (bursts coalesce into one look)."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def refresh(self) -> None:
        """Look for new calls and outcomes now (F5; the coalescing timer calls this too)."""
        if not self.isVisible():
            self._stale = True  # nobody is looking: catch up when shown
            return
        self._stale = False
        was_available = self._model.available
        scroll = self.table.verticalScrollBar()
        offset = scroll.value()
        added = self._model.refresh()
        if not was_available:
            if self._model.available:
                self._fill_choices()
                self._load_activity()
        elif added:
            if offset > 0:
                # The reader has scrolled away from the top: keep the same calls in view.
                self.table.doItemsLayout()
                scroll.setValue(offset + added * self.table.verticalHeader().defaultSectionSize())
            self._fill_choices()
            self._add_activity()
        if self._detail_running:
            self._show_detail(self.table.currentIndex())
        self._update_status()

    def showEvent(self, event: QShowEvent) -> None:
        """Catch up with calls recorded while the window was hidden."""
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop a running verification: nobody would see its result."""
        if self._verify_job.running:
            self._verify_job.cancel.set()
        super().closeEvent(event)

    # -- filters ---------------------------------------------------------------------------------

    def apply_filters(self) -> None:
        """Show the calls matching the filter bar (relative time ranges end now).

        A text search reads every call, which takes a moment in a large log, so it runs on a
        worker thread and the table switches over when it is done; the other filters use
        indexes and apply at once.
        """
        where = self.filters.current(datetime.now(UTC))
        self._filter_generation += 1
        if not (where.text and self._model.available):
            self._show_filter(where)
            return
        generation, path = self._filter_generation, self._path

        def search(_job: Job) -> tuple[int, Prepared]:
            with AuditLog(path, read_only=True) as log:
                return generation, prepare(log, where)

        self._search_job = Job()
        self._search_job.finished.connect(self._search_done)
        self._search_job.start(search, self._jobs)
        self.status.setText("Searching…")

    def _search_done(self, result: object, error: object) -> None:
        if not isinstance(result, tuple):
            self.status.setText(reveal_text(f"The search failed: {error}"))
            return
        generation, prepared = result
        if generation == self._filter_generation:
            self._show_filter(prepared.where, prepared)

    def _show_filter(self, where: CallFilter, prepared: Prepared | None = None) -> None:
        self._model.set_filter(where, prepared)
        self._show_detail(QModelIndex())
        self._update_status()
        self._load_activity()

    def _fill_choices(self) -> None:
        log = self._model.log
        if log is None:
            return
        try:
            for column in FILTER_COLUMNS:
                self.filters.set_choices(column, log.distinct(column))
        except (sqlite3.Error, AuditError):
            pass  # the combos keep what they had; the status line reports read errors

    def _update_status(self) -> None:
        model = self._model
        if model.problem:
            text = f"The audit log cannot be read: {model.problem}"
        elif not model.available:
            text = "No calls recorded yet. They appear here as soon as approver records them."
        elif model.rowCount() == 0:
            filtered = model.where != CallFilter()
            text = "No calls match these filters." if filtered else "No calls recorded yet."
        else:
            count = model.rowCount()
            text = f"{count:,} call{'s' if count != 1 else ''}"
            if model.where != CallFilter():
                text += " match these filters"
        self.status.setText(reveal_text(text))

    # -- details ---------------------------------------------------------------------------------

    def _show_detail(self, current: QModelIndex, _previous: QModelIndex | None = None) -> None:
        log = self._model.log
        call_id = self._model.call_id(current.row()) if current.isValid() else None
        self._detail_running = False
        if call_id is None or log is None:
            self.detail.clear()
            return
        try:
            call = log.call(call_id)
        except (sqlite3.Error, AuditError) as exc:
            self.detail.setPlainText(reveal_text(f"This call could not be read: {exc}"))
            return
        if call is None:
            self.detail.setPlainText("This call is no longer in the log.")
            return
        self._detail_running = call["decision"] == "allow" and call.get("outcome_id") is None
        scroll = self.detail.verticalScrollBar().value()
        self.detail.setPlainText(call_details(call))
        self.detail.verticalScrollBar().setValue(scroll)

    # -- activity --------------------------------------------------------------------------------

    def _load_activity(self) -> None:
        self._activity = None
        self._activity_generation += 1
        if not self._model.available:
            self.chart.set_message("No calls recorded yet")
            return
        self.chart.set_message("Counting calls…")
        job = self._activity_job = Job()
        job.finished.connect(self._activity_done)
        where, generation, path, now = (
            self._model.snapshot,
            self._activity_generation,
            self._path,
            datetime.now(UTC),
        )

        def load(_job: Job) -> tuple[int, ActivityData]:
            with AuditLog(path, read_only=True) as log:
                return generation, load_activity(log, where, now)

        job.start(load, self._jobs)

    def _activity_done(self, result: object, error: object) -> None:
        if not isinstance(result, tuple):
            if isinstance(error, Exception):
                self.chart.set_message(reveal_text(f"Activity could not be counted: {error}"))
            return
        generation, activity = result
        if generation != self._activity_generation:
            return  # the filter changed meanwhile
        self._activity = activity
        self.chart.set_counts(activity.counts, activity.start, activity.end)
        self._add_activity()
        self.activity_loaded.emit()

    def _add_activity(self) -> None:
        """Count calls the chart has not seen yet (cheap: only the newest rows)."""
        log, activity, top = self._model.log, self._activity, self._model.snapshot.max_id or 0
        if log is None or activity is None or top <= activity.top:
            return
        newer = dataclasses.replace(self._model.snapshot, min_id=activity.top + 1)
        try:
            counts = log.activity(newer, activity.source)
        except (sqlite3.Error, AuditError):
            return
        self._activity = dataclasses.replace(activity, top=top)
        end = activity.end if self._model.where.until else datetime.now(UTC)
        self.chart.add_counts(counts, end)

    def _say(self, text: str, *, alarming: bool = False) -> None:
        """Put ``text`` on the message line (red when something is wrong)."""
        self.message.setText(reveal_text(text))
        self.message.setStyleSheet("color: #c62828; font-weight: bold;" if alarming else "")

    # -- export ----------------------------------------------------------------------------------

    def choose_export(self) -> None:
        """Ask where to save the calls shown (a non-blocking dialog), then :meth:`export_to`."""
        dialog = QFileDialog(self, "Export the calls shown")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(["CSV (*.csv)", "JSON Lines (*.jsonl)"])
        dialog.setDefaultSuffix("csv")
        dialog.selectFile(f"approver-audit-{datetime.now():%Y%m%d-%H%M}.csv")
        dialog.filterSelected.connect(
            lambda name: dialog.setDefaultSuffix("jsonl" if "jsonl" in name else "csv")
        )
        dialog.fileSelected.connect(self._export_chosen)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def _export_chosen(self, name: str) -> None:
        path = Path(name)
        self.export_to(path, "jsonl" if path.suffix.lower() == ".jsonl" else "csv")

    def export_to(self, path: Path, fmt: Literal["csv", "jsonl"]) -> None:
        """Write the calls in the table (decision and outcome rows) to ``path`` on a worker thread.

        :attr:`export_finished` reports the result, and the message line tells the user.
        """
        if self._export_job.running:
            self._say("An export is already running; wait for it to finish.")
            return
        source, where = self._path, self._model.snapshot
        self.export_button.setEnabled(False)
        self._say(f"Exporting to {path}…")
        self._export_job.start(lambda _job: _export(source, path, fmt, where), self._jobs)

    def _export_done(self, result: object, error: object) -> None:
        self._export_job.running = False
        self.export_button.setEnabled(True)
        if not isinstance(result, ExportResult):
            result = ExportResult(Path(), 0, f"unexpected {type(error).__name__}: {error}")
        if result.error is None:
            text = f"Exported {result.rows:,} rows to {result.path}."
        else:
            text = f"Could not export to {result.path}: {result.error}. Choose a folder you can write to."
        self._say(text, alarming=result.error is not None)
        self.export_finished.emit(result)

    # -- verify ----------------------------------------------------------------------------------

    def verify(self) -> None:
        """Recompute the hash chain on a worker thread; :attr:`verify_finished` reports."""
        if self._verify_job.running:
            return
        if not self._path.exists():
            report = VerifyReport(True, 0)
            self._say(verify_message(report))
            self.verify_finished.emit(report)
            return
        source = self._path

        def check(job: Job) -> VerifyReport:
            def progress(rows: int) -> None:
                job.check()
                job.progress.emit(rows)

            with AuditLog(source, read_only=True) as log:
                return log.verify(progress)

        self.verify_button.setEnabled(False)
        self._say("Verifying the hash chain…")
        self._verify_job.start(check, self._jobs)

    def _verify_progress(self, rows: int) -> None:
        if self._verify_job.running:
            self._say(f"Verifying the hash chain… {rows:,} rows checked")

    def _verify_done(self, result: object, error: object) -> None:
        self._verify_job.running = False
        self.verify_button.setEnabled(True)
        if isinstance(error, Cancelled):
            self._say("Verification stopped when the window closed.")
            return
        if not isinstance(result, VerifyReport):
            result = VerifyReport(False, 0, None, f"the log could not be read ({error})")
        self._say(verify_message(result), alarming=not result.ok)
        self.verify_finished.emit(result)
