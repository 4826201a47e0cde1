"""Checking the audit log's hash chain from the window: on a worker thread, with progress."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from approver.audit.log import AuditLog, VerifyReport
from approver.ui.audit_details import verify_message
from approver.ui.jobs import Cancelled, Job


class ChainCheck(QObject):
    """Recomputes the hash chain of the log at ``path`` and says how it went."""

    said = Signal(str, bool)
    """A message for the window, and whether it is alarming."""
    finished = Signal(object)
    """The :class:`VerifyReport` (``ok=False`` with a problem when the log could not be read)."""
    ended = Signal()
    """The check is over, with a report or stopped."""

    def __init__(self, path: Path, jobs: list[Job], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._path, self._jobs = path, jobs
        self._job = Job()

    @property
    def running(self) -> bool:
        """Whether a check is under way."""
        return self._job.running

    def start(self) -> None:
        """Start a check (nothing happens while one runs); :attr:`finished` reports."""
        if self._job.running:
            return
        if not self._path.exists():
            report = VerifyReport(True, 0)
            self.said.emit(verify_message(report), False)
            self.ended.emit()
            self.finished.emit(report)
            return
        source = self._path

        def check(job: Job) -> VerifyReport:
            def progress(rows: int) -> None:
                job.check()
                job.progress.emit(rows)

            with AuditLog(source, read_only=True) as log:
                return log.verify(progress)

        self._job = Job()
        self._job.finished.connect(self._done)
        self._job.progress.connect(self._progress)
        self.said.emit("Verifying the hash chain…", False)
        self._job.start(check, self._jobs)

    def stop(self) -> None:
        """Give up on a running check (its window closes)."""
        if self._job.running:
            self._job.cancel.set()

    def _progress(self, rows: int) -> None:
        if self._job.running:
            self.said.emit(f"Verifying the hash chain… {rows:,} log rows checked", False)

    def _done(self, result: object, error: object) -> None:
        self.ended.emit()
        if isinstance(error, Cancelled):
            self.said.emit("Verification stopped when the window closed.", False)
            return
        if not isinstance(result, VerifyReport):
            result = VerifyReport(False, 0, None, f"the log could not be read ({error})")
        self.said.emit(verify_message(result), not result.ok)
        self.finished.emit(result)
