"""An upstream's lists: an endless cursor ends, a long list is cut, a flood of changes is folded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from approver.events import Event, UpstreamChanged
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.upstream.limits import MAX_LIST_PAGES
from approver.upstream.listing import list_all

ALLOW_ALL = {"version": "1", "default": "allow"}
WAIT = 60.0


def hostile(*flags: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "approver.testing.hostile_server", *flags]}


def test_an_endless_cursor_stops_at_the_page_limit_and_the_server_still_serves(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"h": hostile("--endless-cursor"), "test": upstream_entry()}, ALLOW_ALL)

    async def body() -> None:
        with anyio.fail_after(WAIT * 2):
            async with running_service(paths) as service:
                status = service.upstreams["h"].status()
                assert status.state.value == "ready"
                assert status.tools == 4 + MAX_LIST_PAGES - 1  # its four tools, then one a page
                assert status.error is not None and f"went on past {MAX_LIST_PAGES:,} pages" in status.error
                token = service.tokens.get_or_create("agent")
                async with legacy_client(service.url, token) as session:
                    echoed = await session.call_tool("h__echo", {"text": "still here"})
                    other = await session.call_tool("test__echo", {"text": "and here"})
                assert not echoed.is_error and not other.is_error

    anyio.run(body)


@pytest.mark.anyio
async def test_a_list_over_the_item_limit_keeps_the_first_items_and_says_so() -> None:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "approver.testing.hostile_server", "--many", "50", "--page-size", "7"],
    )
    with anyio.fail_after(WAIT):
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            everything, unbounded = await list_all(session.list_tools, "tools")
            first, note = await list_all(session.list_tools, "tools", max_items=20)
            paged, stopped = await list_all(session.list_tools, "tools", max_pages=3)

    assert (len(everything), unbounded) == (54, None)
    assert [tool.name for tool in first] == [tool.name for tool in everything[:20]]
    assert note == "it listed more than 20 tools; approver uses the first 20"
    assert len(paged) == 21 and stopped is not None and "went on past 3 pages" in stopped


def test_twenty_thousand_list_changes_are_refreshed_a_few_times_not_once_each(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"h": hostile("--wire"), "test": upstream_entry()}, ALLOW_ALL)
    flood = 20_000

    async def body() -> None:
        with anyio.fail_after(WAIT * 2):
            async with running_service(paths) as service:
                changes: list[Event] = []
                service.events.subscribe(changes.append)
                token = service.tokens.get_or_create("agent")
                async with legacy_client(service.url, token) as session:
                    await session.list_tools()
                    result = await session.call_tool("h__flood", {"count": flood})
                    refresher = service.upstreams["h"].refresher
                    assert refresher is not None
                    await refresher.wait_quiet(flood)
                    assert not result.is_error
                    assert not (await session.call_tool("test__echo", {"text": "x"})).is_error
                refreshed = [e for e in changes if e == UpstreamChanged("h", "tools")]
                assert refresher.notified == flood
                assert 1 <= refresher.refreshes <= 100
                assert len(refreshed) == refresher.refreshes

    anyio.run(body)
