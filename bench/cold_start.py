"""Cold start of the desktop app until its gateway answers, and its idle memory once it settles.

Usage: ``python bench/cold_start.py [--starts N]``

Launches ``approver app`` (offscreen Qt) as a subprocess with three upstream test servers
configured in a fresh config directory, and times from the launch to the first HTTP answer of
``/mcp`` (a 401 without a token is an answer). Then, with the app left idle, reads its resident
memory from /proc until two readings a second apart agree within 1 MB (its upstreams are
separate processes and not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time

from common import BENCH_ENV, Figure, approver_dirs, print_figures, rss_mb, stop, wait_http

from approver.testing import free_port
from approver.testing.harness import upstream_entry

NAME = "desktop app"
SETTLE_LIMIT = 30.0
"""Seconds to wait for memory to settle before taking the last reading."""


async def _one_start() -> tuple[float, float]:
    servers = {name: upstream_entry(name) for name in ("alpha", "beta", "gamma")}
    with approver_dirs(servers) as dirs:
        port = free_port()
        started = time.perf_counter()
        process = subprocess.Popen(
            dirs.cli("app", "--port", str(port)), env=BENCH_ENV, stderr=subprocess.DEVNULL
        )
        try:
            await wait_http(f"http://127.0.0.1:{port}/mcp", process)
            answered = time.perf_counter() - started
            rss = await _settled_rss(process.pid)
        finally:
            stop(process)
    return answered, rss


async def _settled_rss(pid: int) -> float:
    previous = rss_mb(pid)
    deadline = time.monotonic() + SETTLE_LIMIT
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)  # idle memory is a reading over time, not an event
        current = rss_mb(pid)
        if abs(current - previous) < 1.0:
            return current
        previous = current
    return previous


async def measure(starts: int) -> list[Figure]:
    """Start the app ``starts`` times; the median of each figure counts."""
    results = [await _one_start() for _ in range(starts)]
    answer = statistics.median(r[0] for r in results)
    rss = statistics.median(r[1] for r in results)
    return [
        Figure(
            NAME,
            "cold start until /mcp answers (3 upstreams)",
            answer,
            "s",
            "< 2 s",
            answer < 2.0,
            f"{starts} starts",
        ),
        Figure(NAME, "idle memory (RSS) of the app process", rss, "MB", "< 150 MB", rss < 150),
    ]


def run(starts: int = 3) -> list[Figure]:
    """Entry point for ``run_all.py``."""
    return asyncio.run(measure(starts))


def main() -> None:
    """Command line: run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON lines (for run_all.py)")
    args = parser.parse_args()
    print_figures(run(args.starts), args.json)


if __name__ == "__main__":
    main()
