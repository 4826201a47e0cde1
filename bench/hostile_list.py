"""A huge tool list through the gateway: start-up, listing every page, and calls among the tools.

Usage: ``python bench/hostile_list.py [TOOLS] [--calls N]`` (default 10,000 tools, 50 calls). The
upstream is ``approver.testing.hostile_server --many TOOLS --page-size 1000`` over stdio; the
client is a 2025-11-25 session over Streamable HTTP that follows the gateway's cursors.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import mcp.types as types

from approver.testing.harness import legacy_client, running_service, write_config


async def measure(tools: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        server = ["-m", "approver.testing.hostile_server", "--many", str(tools), "--page-size", "1000"]
        paths = write_config(
            Path(root),
            {"big": {"command": sys.executable, "args": server}},
            {"version": "1", "default": "allow"},
        )
        started = time.perf_counter()
        async with running_service(paths) as service:
            ready = time.perf_counter() - started
            async with legacy_client(service.url, service.tokens.get_or_create("bench")) as session:
                listed: list[types.Tool] = []
                pages, cursor = 0, None
                begin = time.perf_counter()
                while True:
                    params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                    page = await session.list_tools(params=params)
                    listed += page.tools
                    pages += 1
                    cursor = page.next_cursor
                    if not cursor:
                        break
                listing = time.perf_counter() - begin
                durations = []
                for index in range(calls):
                    begin = time.perf_counter()
                    await session.call_tool(
                        f"big__bulk_{index * (tools // max(calls, 1)):05d}", {"text": "x"}
                    )
                    durations.append((time.perf_counter() - begin) * 1000)
        print(f"{len(listed):,} tools: gateway ready with them in {ready:.2f} s")
        print(f"listing every tool: {listing:.2f} s in {pages} pages")
        print(f"{calls} calls: p50 {statistics.median(durations):.1f} ms, max {max(durations):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tools", nargs="?", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=50)
    options = parser.parse_args()
    anyio.run(measure, options.tools, options.calls)


if __name__ == "__main__":
    main()
