"""An upstream's lists: fetched page by page within limits, and refreshed once per burst of changes.

A server lists its tools (resources, templates, prompts) in pages, and says when a list changed.
Two ways to make approver work without end: a ``nextCursor`` that never runs out, and a flood of
``list_changed`` notifications (the SDK runs each in a task of its own: 20,000 of them cost 8 s
of CPU in relisting). :func:`list_all` stops a listing past :data:`MAX_LIST_PAGES` pages or
:data:`MAX_LIST_ITEMS` items and says so; a :class:`Refresher` folds every change notified while
a refresh runs, or within :data:`REFRESH_INTERVAL` of the last one, into one more refresh.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
import anyio.abc
import mcp.types as types

from approver.upstream.limits import MAX_LIST_ITEMS, MAX_LIST_PAGES

logger = logging.getLogger(__name__)

REFRESH_INTERVAL: Final = 0.25
"""The least time in seconds between two refreshes of one upstream's lists."""

LISTS: Final = ("tools", "resources", "prompts")
"""What a list change can be about, in the order a refresh takes them."""

ListPage = Callable[..., Awaitable[Any]]


async def list_all(
    list_page: ListPage, field: str, *, max_pages: int = MAX_LIST_PAGES, max_items: int = MAX_LIST_ITEMS
) -> tuple[list[Any], str | None]:
    """Every item of a paginated list request, following ``next_cursor``, within the limits.

    Returns the items and, when a limit stopped the listing, a note that says so (the items
    are then the first ``max_items``, or those of the first ``max_pages`` pages).
    """
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(max_pages):
        page = await list_page(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        items.extend(getattr(page, field))
        if len(items) > max_items:
            note = f"it listed more than {max_items:,} {_plain(field)}; approver uses the first {max_items:,}"
            return items[:max_items], note
        cursor = page.next_cursor
        if not cursor:
            return items, None
    stopped = f"its {_plain(field)} list went on past {max_pages:,} pages"
    return items, f"{stopped}; approver stopped asking and uses the {len(items):,} listed"


def _plain(field: str) -> str:
    return field.replace("_", " ")


class Refresher:
    """Refreshes one connection's lists one at a time, at most once per ``interval`` seconds.

    :meth:`changed` marks a list as changed and returns at once; a task in ``group`` refreshes
    every marked list, then again if more were marked meanwhile, until none is left.
    """

    def __init__(
        self,
        refresh: Callable[[str], Awaitable[None]],
        group: anyio.abc.TaskGroup,
        interval: float = REFRESH_INTERVAL,
    ) -> None:
        self._refresh = refresh
        self._group = group
        self._interval = interval
        self._marked: set[str] = set()
        self._running = False
        self._last = -math.inf
        self.notified = 0
        """Changes notified so far (for tests and benchmarks)."""
        self.refreshes = 0
        """Lists refreshed so far."""
        self._progress = anyio.Event()

    def changed(self, kind: str) -> None:
        """``kind`` (one of :data:`LISTS`) changed: refresh it soon."""
        self.notified += 1
        self._marked.add(kind)
        if not self._running:
            self._running = True
            self._group.start_soon(self._run)
        self._tell()

    async def wait_quiet(self, notified: int) -> None:
        """Return once ``notified`` changes were notified and refreshed (bound it with a timeout)."""
        while self.notified < notified or self._running:
            await self._progress.wait()

    def _tell(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    async def _run(self) -> None:
        try:
            while self._marked:
                wait = self._last + self._interval - anyio.current_time()
                if wait > 0:
                    await anyio.sleep(wait)
                marked, self._marked = self._marked, set()
                self._last = anyio.current_time()
                for kind in LISTS:
                    if kind in marked:
                        self.refreshes += 1
                        await self._refresh(kind)
        finally:
            self._running = False
            self._tell()
