"""Keep a client from timing out while one of its calls waits for a person.

A call held for approval can wait for minutes, longer than many clients wait for a tool
result. MCP gives a server one way to show a request is still alive: progress notifications
against the ``progressToken`` the client sent with the call. Clients that reset their timeout on
progress (the TypeScript SDK's ``resetTimeoutOnProgress``) then keep waiting as long as a person
takes, within approver's own approval timeout. Without a token there is nothing the protocol
lets approver send, so the client's own timeout applies.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final, TypeVar

logger = logging.getLogger(__name__)

KEEPALIVE_INTERVAL: Final = 10.0
"""Seconds between progress notifications for a held call.

Well inside the 60 s request timeout of the MCP TypeScript SDK, the shortest common default.
"""

FIRST_NOTICE: Final = 1.0
"""Seconds before the first notification, so a call settled at once (denied because nobody can
approve it, paused) sends none."""

T = TypeVar("T")

Report = Callable[[float, float | None, str | None], Awaitable[None]]
"""Sends one progress notification: (progress, total, message)."""


def waiting_message(waited: float, timeout: float) -> str:
    """What the client's progress display says while a call waits for approval."""
    left = max(0, math.ceil(timeout - waited))
    return f"waiting for your approval in approver ({left} s left)"


@asynccontextmanager
async def keepalive(
    report: Report | None,
    approval_timeout: float,
    interval: float = KEEPALIVE_INTERVAL,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[None]:
    """Send a progress notification after ``FIRST_NOTICE`` s, then every ``interval`` s, until exit.

    ``report`` is ``None`` when the client sent no progress token; then nothing is sent.
    Progress is the number of seconds waited (it must increase with every notification) out
    of ``timeout``, approver's approval timeout. A failed send is logged and the next one is
    tried anyway: progress is a courtesy, and the wait it accompanies must never fail.
    """
    if report is None:
        yield
        return
    loop = asyncio.get_running_loop()
    now = clock or loop.time
    start = now()

    async def beat() -> None:
        sent = -1.0
        await asyncio.sleep(min(FIRST_NOTICE, interval))
        while True:
            waited = max(now() - start, sent + 0.001)  # strictly increasing, even on a coarse clock
            try:
                await report(round(waited, 3), approval_timeout, waiting_message(waited, approval_timeout))
            except Exception as exc:
                logger.debug("keepalive progress not sent: %s", exc)
            sent = waited
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat(), name="approval-keepalive")
    try:
        yield
    finally:
        task.cancel()
        # wait(), not `await task`: the beat's CancelledError must not be mistaken for (and
        # swallow) a cancellation of the caller.
        await asyncio.wait({task})


async def unless_gone(waiting: Awaitable[T], gone: asyncio.Event | None) -> T | None:
    """Await ``waiting``; if ``gone`` is set first, cancel it and return ``None``.

    Cancelling the caller cancels ``waiting`` too, and waits for it to finish, so a broker
    request is withdrawn before the caller records why.
    """
    if gone is None:
        return await waiting
    task = asyncio.ensure_future(waiting)
    watcher = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.wait({task})
    return None
