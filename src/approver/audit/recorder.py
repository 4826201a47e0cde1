"""Audit writes off the event loop: one writer thread owns every SQLite commit, and groups them.

A commit that waits for the disk (an fsync, milliseconds) must not stall the event loop, so the
:class:`Recorder` hands rows to a single writer thread (rows keep their order) and lets callers
await them. The writer takes every row queued while it was busy and commits them together
(group commit), so concurrent calls share one fsync instead of queueing behind one each.

What is on disk when an await returns:

* a **decision** row is committed *and on disk* (with every row before it): the gateway forwards
  a call only after this, so every forwarded call has its decision row even after a power loss;
* an **outcome** row is committed (it survives a crash of approver, and readers see it) but
  reaches the disk with the next decision's commit, or by a checkpoint once writes have paused
  for :data:`SYNC_DELAY` seconds. A power loss or operating-system crash in that window can lose
  the newest outcome rows, never a decision row and never a row in the middle of the chain.

The gateway does not wait for an outcome row: :meth:`Recorder.outcome_soon` queues it before
the client is answered, without waking the writer. Waking a thread costs more CPU on the event
loop than anything else approver does per call, and a decision usually follows within
milliseconds: the writer takes waiting outcome rows along with the next commit, or commits them
on their own after :data:`LATER_DELAY` seconds. A crash of approver within that time can lose
those outcome rows, never a decision row.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from approver.audit.log import AuditError, AuditLog, DecisionRecord, OutcomeRecord, ReviewRecord
from approver.events import AuditFailed, EventHub, Recorded

logger = logging.getLogger(__name__)

SYNC_DELAY: Final = 1.0
"""Seconds without writes after which committed outcome rows are checkpointed to disk."""

LATER_DELAY: Final = 0.05
"""Seconds an outcome row from :meth:`Recorder.outcome_soon` waits for another commit to join."""

MAX_BATCH: Final = 256
"""The most rows one group commit takes."""

Record = DecisionRecord | OutcomeRecord | ReviewRecord
_DURABLE: Final = (DecisionRecord, ReviewRecord)
"""Rows committed to disk before their await returns: something is done only once they are."""


@dataclass
class _Job:
    """Rows to write (none for a flush marker) and where to report back."""

    record: Record | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int] = field(init=False)

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()


_STOP: Final = object()
_WAKE: Final = object()


class Recorder:
    """Awaitable, ordered writes to an :class:`AuditLog`; each commit (or failure) is published."""

    def __init__(
        self, log: AuditLog, events: EventHub | None = None, later_delay: float = LATER_DELAY
    ) -> None:
        self.log = log
        self._events = events if events is not None else EventHub()
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._later: collections.deque[_Job] = collections.deque()
        """Outcome rows waiting to join the next commit."""
        self._later_delay = later_delay
        self._asleep = False
        """The writer is not gathering outcome rows: one put in :attr:`_later` must wake it."""
        self._asleep_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="approver-audit", daemon=True)
        self._thread.start()
        self.last_error: str | None = None
        """The last write failure, shown to the user until a write succeeds again."""

    async def decision(self, record: DecisionRecord) -> int:
        """Commit a decision row to disk; raises AuditWriteError when it cannot be written."""
        return await self._submit(record)

    async def review(self, record: ReviewRecord) -> int:
        """Commit a review row to disk (the agent gets its answer only after); raises AuditWriteError."""
        return await self._submit(record)

    async def outcome(self, record: OutcomeRecord) -> int:
        """Commit an outcome row (on disk soon after: see the module docstring); raises AuditWriteError."""
        return await self._submit(record)

    def outcome_soon(self, record: OutcomeRecord) -> None:
        """Queue an outcome row and return at once; it is committed within :data:`LATER_DELAY`.

        A later :meth:`flush` or :meth:`close` covers it. A failure is reported as any other:
        :attr:`last_error` and an ``AuditFailed`` event.
        """
        job = _Job(record, asyncio.get_running_loop())
        job.future.add_done_callback(partial(self._settled, record))
        self._later.append(job)
        with self._asleep_lock:
            wake, self._asleep = self._asleep, False
        if wake:
            self._queue.put(_WAKE)

    async def flush(self) -> None:
        """Return once every write submitted before this call has finished."""
        job = _Job(None, asyncio.get_running_loop())
        self._queue.put(job)
        await job.future

    def close(self) -> None:
        """Finish queued writes, put every row on disk, then close the log."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        with contextlib.suppress(AuditError):
            self.log.sync()
        self.log.close()

    async def _submit(self, record: Record) -> int:
        job = _Job(record, asyncio.get_running_loop())
        self._queue.put(job)
        try:
            row_id = await asyncio.shield(job.future)
        except Exception as exc:
            self._failed(exc)
            raise
        self._written(row_id, record)
        return row_id

    def _settled(self, record: Record, future: asyncio.Future[int]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            self._written(future.result(), record)
        else:
            logger.error("could not record the outcome of %s: %s", record.call_id, error)
            self._failed(error)

    def _written(self, row_id: int, record: Record) -> None:
        self.last_error = None
        self._events.publish(Recorded(row_id, record))

    def _failed(self, error: BaseException) -> None:
        self.last_error = str(error)
        self._events.publish(AuditFailed(self.last_error))

    # -- the writer thread --------------------------------------------------------------------

    def _work(self) -> None:
        unsynced = False
        expecting = False  # a decision was just committed: its outcome usually follows in ms
        while True:
            gathering = expecting or bool(self._later)
            timeout = self._later_delay if gathering else SYNC_DELAY if unsynced else None
            if not gathering:
                with self._asleep_lock:
                    if self._later:
                        continue  # came in just now: wait for company instead
                    self._asleep = True  # an outcome row must wake the writer now
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                expecting = False
                if gathering:
                    later = self._take_later()
                    if later:
                        unsynced = self._write(later) or unsynced
                else:
                    unsynced = not self._sync()
                continue
            with self._asleep_lock:
                self._asleep = False
            batch, stop = self._drain(first)
            batch = self._take_later() + batch  # queued before the rows that woke the writer
            if batch:
                unsynced = self._write(batch) or unsynced
            expecting = any(isinstance(job.record, DecisionRecord) for job in batch)
            if stop:
                return

    def _take_later(self) -> list[_Job]:
        jobs: list[_Job] = []
        with contextlib.suppress(IndexError):
            while True:
                jobs.append(self._later.popleft())
        return jobs

    def _drain(self, first: _Job | object) -> tuple[list[_Job], bool]:
        """``first`` and whatever else is queued now, up to :data:`MAX_BATCH` rows."""
        batch: list[_Job] = []
        item = first
        while True:
            if item is _STOP:
                return batch, True
            if isinstance(item, _Job):
                batch.append(item)
            if len(batch) >= MAX_BATCH:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _write(self, batch: list[_Job]) -> bool:
        """Commit the batch's rows; returns True when some are committed but not yet on disk."""
        jobs = [job for job in batch if job.record is not None]
        records = [job.record for job in jobs if job.record is not None]
        durable = any(isinstance(record, _DURABLE) for record in records)
        results: list[int | BaseException] = []
        if records:
            try:
                results = list(self.log.append(records, sync=durable))
            except Exception:
                # One bad row must not fail the others: write them one at a time.
                results = [self._write_one(record) for record in records]
                durable = False  # outcome rows after the last decision may be waiting for the disk
        settled = dict(zip(map(id, jobs), results, strict=True))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, int | BaseException]]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append((job, settled.get(id(job), 0)))
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting
                loop.call_soon_threadsafe(_settle, outcomes)
        return bool(records) and not durable

    def _write_one(self, record: Record) -> int | BaseException:
        try:
            return self.log.append([record], sync=isinstance(record, _DURABLE))[0]
        except Exception as exc:
            return exc

    def _sync(self) -> bool:
        try:
            return self.log.sync()
        except AuditError:
            return True  # nothing to retry on a log that cannot checkpoint; the next write reports it


def _settle(outcomes: Sequence[tuple[_Job, int | BaseException]]) -> None:
    for job, result in outcomes:
        if job.future.done():
            continue
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)
