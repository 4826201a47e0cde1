"""Audit writes off the event loop: one writer thread owns every SQLite commit.

``synchronous=FULL`` means each commit waits for the disk; doing that on the event loop would
stall every other call. The :class:`Recorder` runs :class:`~approver.audit.AuditLog` writes on a
single dedicated thread (so rows keep their order) and lets the caller await them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import TypeVar

from approver.audit import AuditLog, DecisionRecord, OutcomeRecord
from approver.events import AuditFailed, EventHub, Recorded

T = TypeVar("T")


class Recorder:
    """Awaitable, ordered writes to an :class:`AuditLog`; each commit (or failure) is published."""

    def __init__(self, log: AuditLog, events: EventHub | None = None) -> None:
        self.log = log
        self._events = events if events is not None else EventHub()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="approver-audit"
        )
        self.last_error: str | None = None
        """The last write failure, shown to the user until a write succeeds again."""

    async def _run(self, fn: Callable[[T], int], record: T) -> int:
        loop = asyncio.get_running_loop()
        try:
            row_id = await loop.run_in_executor(self._executor, functools.partial(fn, record))
        except Exception as exc:
            self.last_error = str(exc)
            self._events.publish(AuditFailed(self.last_error))
            raise
        self.last_error = None
        assert isinstance(record, DecisionRecord | OutcomeRecord)
        self._events.publish(Recorded(row_id, record))
        return row_id

    async def decision(self, record: DecisionRecord) -> int:
        """Commit a decision row; raises AuditWriteError when it cannot be written."""
        return await self._run(self.log.record_decision, record)

    async def outcome(self, record: OutcomeRecord) -> int:
        """Commit an outcome row; raises AuditWriteError when it cannot be written."""
        return await self._run(self.log.record_outcome, record)

    async def flush(self) -> None:
        """Return once every write submitted before this call has finished."""
        await asyncio.get_running_loop().run_in_executor(self._executor, lambda: None)

    def close(self) -> None:
        """Finish queued writes, then close the log."""
        self._executor.shutdown(wait=True)
        self.log.close()
