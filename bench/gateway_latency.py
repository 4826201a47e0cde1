"""Allowed-call latency through the gateway vs the same upstream directly (one run, as ratios).

Usage: python bench/gateway_latency.py [CALLS]

Starts the package's test server directly over stdio, then behind a real gateway (policy and
durable audit writes on) reached over Streamable HTTP, and prints p50/p99 of sequential calls.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp import ClientSession, StdioServerParameters, stdio_client

from approver.testing import server_command
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


async def _time_calls(session: ClientSession, name: str, calls: int) -> list[float]:
    for _ in range(20):  # warm-up
        await session.call_tool(name, {"text": "x"})
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await session.call_tool(name, {"text": "x"})
        samples.append(time.perf_counter() - start)
    return samples


async def main(calls: int) -> None:
    argv = server_command()
    params = StdioServerParameters(command=argv[0], args=argv[1:])
    with open(os.devnull, "w") as errlog:  # noqa: ASYNC230 - once, before any timing
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            direct = await _time_calls(session, "echo", calls)
    with tempfile.TemporaryDirectory() as root:
        allow_all = {"version": "1", "default": "allow"}
        paths = write_config(Path(root), {"test": upstream_entry("test")}, allow_all)
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("bench")
            async with legacy_client(service.url, token) as session:
                gateway = await _time_calls(session, "test__echo", calls)
    d50, d99 = _summary(direct)
    g50, g99 = _summary(gateway)
    print(f"{calls} sequential calls of a trivial tool")
    print(f"{'path':<44}{'p50 ms':>8}{'p99 ms':>8}")
    print(f"{'client -> test server (stdio, direct)':<44}{d50:>8.2f}{d99:>8.2f}")
    print(f"{'client -> approver (HTTP, policy+audit)':<44}{g50:>8.2f}{g99:>8.2f}")
    print(f"added by approver at p50: {g50 - d50:.2f} ms ({g50 / d50:.1f}x direct)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
