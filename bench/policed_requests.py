"""What the security round's checks cost: policed reads, rule matching by server, pins of new tools.

Usage: python bench/policed_requests.py [CALLS]

1. ``resources/read`` through a real gateway (policy decision, durable decision row, outcome
   row) against the same read of the same upstream directly, and a policed tool call through
   the gateway for comparison; p50/p99 of CALLS sequential requests each.
2. The policy engine deciding with 1,000 ``tools`` rules and with 1,000 ``resources`` rules
   (every pattern is matched, server-qualified ones at every ``__``), per decision.
3. The pins store observing 10,000 tools: the first listing, the same again, and a listing
   whose 10,000 names are all new (all quarantined as unaccepted), per listing.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client

from approver.calls import CallContext, RequestKind, RequestRef, Risk, RiskClass, RiskLevel, ToolRef
from approver.policy.engine import Policy
from approver.policy.limits import RateLimiter
from approver.policy.pins import PinStore
from approver.testing import server_command
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config

HELLO = "test://static/hello"


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000


async def _timed(request: Callable[[], Awaitable[Any]], calls: int) -> list[float]:
    for _ in range(20):  # warm-up
        await request()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await request()
        samples.append(time.perf_counter() - start)
    return samples


async def requests(calls: int) -> None:
    argv = server_command()
    params = StdioServerParameters(command=argv[0], args=argv[1:])
    with open(os.devnull, "w") as errlog:  # noqa: ASYNC230 - once, before any timing
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            direct = await _timed(lambda: session.read_resource(HELLO), calls)
    with tempfile.TemporaryDirectory() as root:
        policy = {
            "version": "1",
            "default": "deny",
            "tools": {"test__echo": {"action": "allow"}},
            "resources": {"test__test://static/*": {"action": "allow"}},
        }
        paths = write_config(Path(root), {"test": upstream_entry("test")}, policy)
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("bench")
            async with legacy_client(service.url, token) as session:
                reads = await _timed(lambda: session.read_resource(HELLO), calls)
                tools = await _timed(lambda: session.call_tool("test__echo", {"text": "x"}), calls)
            await service.recorder.flush()
            rows = sum(1 for row in service.audit.tail(0, 10 * calls) if row["tool"] == "resources/read")
    print(f"{calls} sequential requests")
    print(f"{'path':<52}{'p50 ms':>8}{'p99 ms':>8}")
    for label, samples in (
        ("resources/read, client -> test server (stdio, direct)", direct),
        ("resources/read, client -> approver (policed, audited)", reads),
        ("tools/call echo, client -> approver (policed, audited)", tools),
    ):
        p50, p99 = _summary(samples)
        print(f"{label:<52}{p50:>8.2f}{p99:>8.2f}")
    print(f"audit rows written for the {calls + 20} gateway reads: {rows} (a decision and an outcome each)")
    print(f"policed read / direct read at p50: {_summary(reads)[0] / _summary(direct)[0]:.1f}x")
    print(f"policed read / policed tool call at p50: {_summary(reads)[0] / _summary(tools)[0]:.2f}x")


def matching() -> None:
    rules = {f"server{i}__tool_{i}_*": {"action": "allow"} for i in range(500)}
    rules |= {f"*__delete_{i}": {"action": "deny"} for i in range(400)}
    rules |= {f"exposed_{i}": {"action": "require_approval"} for i in range(100)}
    resources = {f"server{i}__file:///home/u{i}/*": {"action": "allow"} for i in range(500)}
    resources |= {f"file:///srv/{i}/*": {"action": "deny"} for i in range(500)}
    policy = Policy.from_data({"version": "1", "tools": rules, "resources": resources})
    risk = Risk(RiskClass.OTHER, RiskLevel.MEDIUM)
    limiter = RateLimiter()
    tools = [
        CallContext(
            "c",
            ToolRef(
                f"server{i % 600}",
                f"tool_{i % 600}_x",
                f"server{i % 600}__tool_{i % 600}_x",
                f"server{i % 600}",
            ),
            risk,
        )
        for i in range(2000)
    ]
    reads = [
        RequestRef(RequestKind.RESOURCE, f"server{i % 600}", f"file:///home/u{i % 600}/a")
        for i in range(2000)
    ]
    start = time.perf_counter()
    for ctx in tools:
        policy.decide(ctx, limiter, 0.0)
    per_tool = (time.perf_counter() - start) / len(tools)
    start = time.perf_counter()
    for request in reads:
        policy.decide_request(request)
    per_read = (time.perf_counter() - start) / len(reads)
    print(f"one tool-call decision against 1,000 tools rules: {per_tool * 1e6:.0f} us")
    print(f"one resource-read decision against 1,000 resources rules: {per_read * 1e6:.0f} us")


def pins() -> None:
    def listing(prefix: str) -> dict[str, dict[str, Any]]:
        return {
            f"{prefix}{i}": {
                "name": f"{prefix}{i}",
                "description": f"Tool {prefix}{i}.",
                "inputSchema": {"type": "object"},
            }
            for i in range(10_000)
        }

    with tempfile.TemporaryDirectory() as root:
        store = PinStore(Path(root) / "pins.json")
        for label, tools in (
            ("first listing", listing("t")),
            ("same listing", listing("t")),
            ("10,000 new names", listing("n")),
        ):
            start = time.perf_counter()
            states = store.observe("s", tools)
            took = time.perf_counter() - start
            quarantined = sum(state.quarantined for state in states.values())
            print(f"pins, {label} of 10,000 tools: {took:.2f} s, {quarantined} quarantined")


def main(calls: int) -> None:
    asyncio.run(requests(calls))
    matching()
    pins()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
