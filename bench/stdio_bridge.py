"""Allowed calls through the stdio bridge (``approver connect``) vs the upstream directly over stdio.

Usage: ``python bench/stdio_bridge.py [--calls N] [--rounds R]``

A stdio client (the same ``ClientSession``) talks to the test server directly, and to
``approver connect`` relaying to a running ``approver serve`` in front of the same test server.
The HTTP path to that gateway is measured in the same rounds, so the bridge's own share is the
difference between the bridge and HTTP figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from common import (
    BENCH_ENV,
    Figure,
    approver_dirs,
    approver_serve,
    http_sessions,
    p50,
    p99,
    print_figures,
    sequential,
    stdio_session,
    upstream_argv,
)

NAME = "stdio bridge"


async def measure(calls: int, rounds: int) -> list[Figure]:
    """Run the comparison and return its figures."""
    with approver_dirs() as dirs:
        token = dirs.token("bench")
        async with approver_serve(dirs) as served, contextlib.AsyncExitStack() as stack:
            direct = await stack.enter_async_context(stdio_session(upstream_argv()))
            bridge = await stack.enter_async_context(
                stdio_session(dirs.cli("connect", "--client", "bench"), env=dict(BENCH_ENV))
            )
            http = await stack.enter_async_context(http_sessions(served.url, token)())
            paths = {
                "direct stdio": (direct, "echo"),
                "bridge": (bridge, "test__echo"),
                "HTTP": (http, "test__echo"),
            }
            samples: dict[str, list[float]] = {label: [] for label in paths}
            for session, tool in paths.values():
                await sequential(session, tool, 0, warmup=20)
            for _ in range(rounds):
                for label, (session, tool) in paths.items():
                    samples[label] += await sequential(session, tool, calls // rounds, warmup=0)
    d50, b50, h50 = (p50(samples[label]) for label in ("direct stdio", "bridge", "HTTP"))
    return [
        Figure(NAME, "p50 latency, test server directly over stdio", d50, "ms"),
        Figure(NAME, "p50 latency, through approver connect", b50, "ms", note=f"{b50 / d50:.2f}x direct"),
        Figure(
            NAME,
            "p50 added over the direct stdio call",
            b50 - d50,
            "ms",
            "<= 1 ms",
            b50 - d50 <= 1.0,
            f"of which the gateway over HTTP: {h50 - d50:.2f} ms",
        ),
        Figure(
            NAME, "p50 added by the bridge process alone", b50 - h50, "ms", note="bridge minus HTTP, same run"
        ),
        Figure(NAME, "p99 latency, through approver connect", p99(samples["bridge"]), "ms"),
    ]


def run(calls: int = 500, rounds: int = 5) -> list[Figure]:
    """Entry point for ``run_all.py``."""
    return asyncio.run(measure(calls, rounds))


def main() -> None:
    """Command line: run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print JSON lines (for run_all.py)")
    args = parser.parse_args()
    print_figures(run(args.calls, args.rounds), args.json)


if __name__ == "__main__":
    main()
