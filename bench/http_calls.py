"""Allowed calls over Streamable HTTP: approver vs mcp-proxy 0.13.0 vs the upstream directly.

Usage: ``python bench/http_calls.py [--calls N] [--rounds R] [--throughput-calls N]``

Four targets, one upstream (the package's test server), one client (a 2025-11-25
``ClientSession``): the test server over stdio and over HTTP directly, mcp-proxy in front of it,
and ``approver serve`` in front of it with its real policy and durable audit log. The latency
samples are taken in interleaved rounds, so a burst of load from elsewhere on the machine hits
every target alike; the ratios of one run are the figures that count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
from dataclasses import dataclass

from common import (
    Figure,
    SessionFactory,
    approver_dirs,
    approver_serve,
    cpu_seconds,
    http_sessions,
    mcp_proxy,
    p50,
    p99,
    print_figures,
    sequential,
    source_tree,
    stdio_session,
    throughput,
    upstream_argv,
)

from approver.testing import http_test_server

NAME = "HTTP allowed call"


@dataclass
class Target:
    """One path to the upstream, and its samples."""

    label: str
    open_session: SessionFactory
    tool: str
    latencies: list[float]
    rates: dict[int, list[float]]
    pid: int = 0
    """The proxy process, whose CPU time per call is measured (0: not measured)."""
    cpu_ms: float = 0.0


async def measure(
    calls: int, rounds: int, throughput_calls: int, clients: tuple[int, ...], baseline: str | None = None
) -> list[Figure]:
    """Run the comparison and return its figures; ``baseline`` adds approver at that git revision."""
    with approver_dirs() as dirs, approver_dirs() as old_dirs:
        async with contextlib.AsyncExitStack() as processes:
            token = dirs.token()
            direct_http = await processes.enter_async_context(http_test_server("test"))
            proxy = await processes.enter_async_context(mcp_proxy())
            approver = await processes.enter_async_context(approver_serve(dirs))
            targets = [
                Target("direct stdio", lambda: stdio_session(upstream_argv()), "echo", [], {}),
                # Its CPU per call is the SDK's own server stack alone: a floor for any proxy on it.
                Target(
                    "direct HTTP",
                    http_sessions(direct_http.url, None),
                    "echo",
                    [],
                    {},
                    direct_http.process.pid,
                ),
                Target("mcp-proxy", http_sessions(proxy.url, None), "echo", [], {}, proxy.pid),
                Target("approver", http_sessions(approver.url, token), "test__echo", [], {}, approver.pid),
            ]
            if baseline:
                old = await processes.enter_async_context(approver_serve(old_dirs, source_tree(baseline)))
                opener = http_sessions(old.url, old_dirs.token())
                targets.append(Target(f"approver @ {baseline}", opener, "test__echo", [], {}, old.pid))
            async with contextlib.AsyncExitStack() as stack:
                sessions = [await stack.enter_async_context(t.open_session()) for t in targets]
                for target, session in zip(targets, sessions, strict=True):
                    await sequential(session, target.tool, 0, warmup=20)
                cpu_before = {t.label: cpu_seconds(t.pid) for t in targets if t.pid}
                for _ in range(rounds):
                    for target, session in zip(targets, sessions, strict=True):
                        target.latencies += await sequential(session, target.tool, calls // rounds, 0)
                for target in targets:
                    if target.pid:
                        target.cpu_ms = (cpu_seconds(target.pid) - cpu_before[target.label]) * 1000 / calls
            for _ in range(rounds):
                for target in targets:
                    for n in clients:
                        each = max(10, throughput_calls // n // rounds)
                        rate = await throughput(target.open_session, target.tool, n, each)
                        target.rates.setdefault(n, []).append(rate)
    return _figures(targets, clients)


def _figures(targets: list[Target], clients: tuple[int, ...]) -> list[Figure]:
    by = {t.label: t for t in targets}
    proxy, approver = by["mcp-proxy"], by["approver"]
    figures: list[Figure] = []
    proxy_p50 = p50(proxy.latencies)
    for target in targets:
        t50 = p50(target.latencies)
        is_approver = target is approver
        ratio = t50 / proxy_p50
        figures.append(
            Figure(
                NAME,
                f"p50 latency, {target.label}",
                t50,
                "ms",
                "<= 0.8x mcp-proxy" if is_approver else "",
                ratio <= 0.8 if is_approver else None,
                f"{ratio:.2f}x mcp-proxy",
            )
        )
    for target in targets:
        ratio = p99(target.latencies) / p99(proxy.latencies)
        figures.append(
            Figure(
                NAME,
                f"p99 latency, {target.label}",
                p99(target.latencies),
                "ms",
                note=f"{ratio:.2f}x mcp-proxy",
            )
        )
    for target in targets:
        if target.pid:
            ratio = target.cpu_ms / proxy.cpu_ms
            figures.append(
                Figure(
                    NAME,
                    f"CPU per call, {target.label} process",
                    target.cpu_ms,
                    "ms",
                    note=f"{ratio:.2f}x mcp-proxy",
                )
            )
    for n in clients:
        proxy_rate = statistics.median(proxy.rates[n])
        for target in targets:
            rate = statistics.median(target.rates[n])
            ratio = rate / proxy_rate
            is_approver = target is approver
            figures.append(
                Figure(
                    NAME,
                    f"throughput, {n} client{'s' if n > 1 else ''}, {target.label}",
                    rate,
                    "calls/s",
                    ">= 1.2x mcp-proxy" if is_approver else "",
                    ratio >= 1.2 if is_approver else None,
                    f"{ratio:.2f}x mcp-proxy",
                )
            )
    return figures


def run(
    calls: int = 500,
    rounds: int = 5,
    throughput_calls: int = 400,
    clients: tuple[int, ...] = (1, 8),
    baseline: str | None = None,
) -> list[Figure]:
    """Entry point for ``run_all.py``."""
    return asyncio.run(measure(calls, rounds, throughput_calls, clients, baseline))


def main() -> None:
    """Command line: run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="sequential calls per target (latency)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the calls are split into")
    parser.add_argument("--throughput-calls", type=int, default=400, help="calls per throughput figure")
    parser.add_argument("--baseline", metavar="REV", help="also run approver as of this git revision")
    parser.add_argument("--json", action="store_true", help="print JSON lines (for run_all.py)")
    args = parser.parse_args()
    print_figures(run(args.calls, args.rounds, args.throughput_calls, baseline=args.baseline), args.json)


if __name__ == "__main__":
    main()
