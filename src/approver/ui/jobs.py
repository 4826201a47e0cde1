"""Jobs: one function run on a worker thread, its result handed back on the GUI thread.

A window starts a :class:`Job` for anything slow (a search over a large log, an export, a
hash-chain check) and stays responsive; ``finished`` arrives through Qt's queued connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

_delivered: list[Job] = []
"""Jobs whose result has been delivered, kept until their worker thread has ended.

A Job is a QObject that lives on the GUI thread. If its worker thread held the last reference,
the object would be destroyed on that thread, while the GUI thread may still touch it: Qt warns
"Timers cannot be stopped from another thread" and can crash. Holding delivered jobs here until
their thread is gone means the last reference is always dropped on the GUI thread.
"""


class Cancelled(Exception):
    """Raised inside a job when its window no longer wants the result."""


class Job(QObject):
    """Runs one function on a worker thread and hands its result back on the GUI thread.

    Deliberately without a Qt parent: the running thread keeps it alive, so a window closed
    meanwhile cannot delete it under the thread's feet.
    """

    finished = Signal(object, object)
    """(result, exception): exactly one of them is None."""
    progress = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.cancel = threading.Event()
        self.running = False
        self._thread: threading.Thread | None = None
        # Connected first, so it runs (on the GUI thread) before the window's own handler: the
        # job counts as running until its result has been delivered, never in between.
        self.finished.connect(self._ended)

    def start(self, work: Callable[[Job], object], jobs: list[Job]) -> None:
        """Run ``work(self)`` on a new daemon thread; ``jobs`` lists it until it ends."""
        jobs.append(self)
        self.running = True
        self.cancel.clear()
        self._thread = threading.Thread(
            target=self._run, args=(work,), name="approver-audit-window", daemon=True
        )
        self._thread.start()

    def _run(self, work: Callable[[Job], object]) -> None:
        try:
            result, error = work(self), None
        except Exception as exc:  # reported to the window, which words it for the user
            result, error = None, exc
        self.finished.emit(result, error)

    def _ended(self) -> None:
        self.running = False
        # On the GUI thread: release jobs whose threads have ended (a thread drops its reference
        # to the job before it stops counting as alive), and keep this one until its thread has.
        _delivered[:] = [job for job in _delivered if job.worker_alive()]
        if self not in _delivered:
            _delivered.append(self)

    def worker_alive(self) -> bool:
        """Whether the thread of the latest :meth:`start` is still running."""
        return self._thread is not None and self._thread.is_alive()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the window gave up on this job."""
        if self.cancel.is_set():
            raise Cancelled


class _Delivery(QObject):
    """Hands one job's result to a handler while its owner lives (a child of the owner)."""

    def __init__(self, owner: QObject, handler: Callable[[Any, Any], None]) -> None:
        super().__init__(owner)
        self._handler = handler

    def deliver(self, result: object, error: object) -> None:
        self._handler(result, error)
        self.deleteLater()


def deliver_to(job: Job, owner: QObject, handler: Callable[[Any, Any], None]) -> None:
    """Call ``handler(result, error)`` when ``job`` ends, unless ``owner`` was destroyed by then.

    A plain function connected to ``finished`` would still run after its window was closed and
    deleted, and touch deleted widgets; this connection ends with ``owner``.
    """
    job.finished.connect(_Delivery(owner, handler).deliver)
