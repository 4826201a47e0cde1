"""Where the time of one allowed call goes: a timeline of its stages, client to upstream and back.

Usage: ``python bench/call_timeline.py [--calls N]``

Runs ``approver serve`` in a child process with timing wrappers around the methods that mark
each stage (the front door, the fast path, the recorder, the audit commit, the upstream lane and
the reply), and drives ``N`` sequential allowed calls from one 2025-11-25 ``ClientSession`` over
Streamable HTTP, marking when each call was sent and when its answer arrived. Both processes
read ``time.monotonic_ns()``, which on Linux is ``CLOCK_MONOTONIC``, one clock for the whole
machine, so the marks of both sides fall on one timeline. The source is not changed: the
wrappers are installed in the child before approver starts, and cost a few microseconds a call.

Each stage's figure is its median over the calls; the medians need not add up to the median
total, the means (in the notes) do. For scale, the same run also times the upstream called
directly over stdio, by the same kind of client and by a bare JSON-lines client (a request line
written, its response line read: the upstream server's own time and the pipes, nothing else).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import functools
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from common import (
    APPROVER,
    BENCH_ENV,
    Figure,
    approver_dirs,
    http_sessions,
    p50,
    print_figures,
    sequential,
    stdio_session,
    stop,
    until_listed,
    upstream_argv,
    wait_http,
)

from approver.testing import free_port

NAME: Final = "call timeline"
TOOL: Final = "test__echo"

STAGES: Final = (
    ("sent", "arrived", "client sends; approver's front door has the request"),
    ("arrived", "parsed", "front door: Host, Origin, token, body, JSON-RPC"),
    ("parsed", "audit_start", "tool lookup, policy, pins"),
    ("audit_start", "audit_done", "decision row committed and on disk"),
    ("commit_start", "commit_done", "of which the writer thread's commit and fsync"),
    ("audit_done", "forward", "call handed to the upstream lane"),
    ("forward", "answer_read", "upstream round trip: pipes, the upstream server"),
    ("answer_read", "reply_start", "result checked, outcome row queued"),
    ("reply_start", "reply_sent", "reply written to the client"),
    ("reply_sent", "received", "client reads the reply"),
)
"""(from mark, to mark, what happens in between), in the order of a call."""


# -- the instrumented gateway (child process) ------------------------------------------------------


def _wrap(
    owner: type, name: str, before: str | None, after: str | None, marks: list[tuple[str, int]]
) -> None:
    original = getattr(owner, name)

    def mark(tag: str | None) -> None:
        if tag is not None:
            marks.append((tag, time.monotonic_ns()))

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            mark(before)
            try:
                return await original(*args, **kwargs)
            finally:
                mark(after)

        setattr(owner, name, timed_async)
    else:

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            mark(before)
            try:
                return original(*args, **kwargs)
            finally:
                mark(after)

        setattr(owner, name, timed)


def instrument(marks: list[tuple[str, int]]) -> None:
    """Install the timing wrappers; ``marks`` collects (stage mark, monotonic ns)."""
    from approver.audit.log import AuditLog
    from approver.audit.recorder import Recorder
    from approver.gateway.fastcall import FastCalls, _Reply
    from approver.gateway.front import FrontDoor
    from approver.upstream.lane import ToolLane

    door = FrontDoor.__call__

    async def arrived(self: FrontDoor, scope: Any, receive: Any, send: Any) -> None:
        # Explicit parameters: uvicorn tells an ASGI app from a factory by its signature.
        marks.append(("arrived", time.monotonic_ns()))
        await door(self, scope, receive, send)

    FrontDoor.__call__ = arrived  # type: ignore[method-assign]
    _wrap(FastCalls, "_call", "parsed", None, marks)
    _wrap(Recorder, "decision", "audit_start", "audit_done", marks)
    _wrap(ToolLane, "call_tool", "forward", None, marks)
    _wrap(_Reply, "answer", "reply_start", "reply_sent", marks)

    append = AuditLog.append

    def timed_append(self: AuditLog, records: Any, *, sync: bool = True) -> list[int]:
        if not sync:
            return append(self, records, sync=sync)
        marks.append(("commit_start", time.monotonic_ns()))
        try:
            return append(self, records, sync=sync)
        finally:
            marks.append(("commit_done", time.monotonic_ns()))

    AuditLog.append = timed_append  # type: ignore[method-assign]

    take = ToolLane.take

    def timed_take(self: ToolLane, item: object) -> bool:
        taken = take(self, item)
        if taken:
            marks.append(("answer_read", time.monotonic_ns()))
        return taken

    ToolLane.take = timed_take  # type: ignore[method-assign]


def serve_instrumented(out: Path, argv: list[str]) -> int:
    """Run ``approver <argv>`` with the wrappers; the marks go to ``out`` as JSON at exit."""
    marks: list[tuple[str, int]] = []
    instrument(marks)
    atexit.register(lambda: out.write_text(json.dumps(marks), "utf-8"))
    from approver.cli.main import main

    return main(argv)


# -- the client and the report (parent process) ----------------------------------------------------


def _calls(client: list[tuple[int, int]], marks: list[tuple[str, int]]) -> list[dict[str, int]]:
    """Each call's marks: the first of each kind between its send and its answer."""
    marks.sort(key=lambda mark: mark[1])
    calls = []
    index = 0
    for sent, received in client:
        while index < len(marks) and marks[index][1] < sent:
            index += 1
        call = {"sent": sent, "received": received}
        scan = index
        while scan < len(marks) and marks[scan][1] <= received:
            call.setdefault(marks[scan][0], marks[scan][1])
            scan += 1
        calls.append(call)
    return calls


def stage_figures(client: list[tuple[int, int]], marks: list[tuple[str, int]]) -> list[Figure]:
    """The per-stage figures of the calls whose every stage was marked."""
    tags = {tag for stage in STAGES for tag in stage[:2]}
    calls = [call for call in _calls(client, marks) if tags <= call.keys()]
    if len(calls) < len(client) // 2:
        raise RuntimeError(
            f"only {len(calls)} of {len(client)} calls were marked at every stage: "
            "did the calls take the fast path and the upstream lane?"
        )
    total = [(call["received"] - call["sent"]) / 1e9 for call in calls]
    figures = []
    for start, end, what in STAGES:
        spans = [(call[end] - call[start]) / 1e9 for call in calls]
        share = statistics.mean(spans) / statistics.mean(total)
        note = f"mean {statistics.mean(spans) * 1000:.2f} ms, {share:.0%} of the call"
        figures.append(Figure(NAME, what, p50(spans), "ms", note=note))
    figures.append(
        Figure(
            NAME,
            "whole call, as the client sees it",
            p50(total),
            "ms",
            note=f"mean {statistics.mean(total) * 1000:.2f} ms over {len(calls)} calls",
        )
    )
    return figures


async def _client_marks(url: str, token: str, calls: int) -> list[tuple[int, int]]:
    async with http_sessions(url, token)() as session:
        await until_listed(session, TOOL)
        for _ in range(50):
            await session.call_tool(TOOL, {"text": "x"})
        marks = []
        for _ in range(calls):
            sent = time.monotonic_ns()
            result = await session.call_tool(TOOL, {"text": "x"})
            marks.append((sent, time.monotonic_ns()))
            if result.is_error:
                raise RuntimeError(f"{TOOL} failed under benchmark: {result.content}")
        return marks


async def bare_stdio(calls: int) -> list[float]:
    """Latencies of ``calls`` echo calls to the upstream from a bare JSON-lines client."""
    server = await asyncio.create_subprocess_exec(
        *upstream_argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert server.stdin is not None and server.stdout is not None
    stdin, stdout = server.stdin, server.stdout

    async def call(request_id: int, method: str, params: dict[str, Any]) -> None:
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        stdin.write(json.dumps(message).encode() + b"\n")
        await stdin.drain()
        while json.loads(await stdout.readline()).get("id") != request_id:
            pass

    try:
        hello = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "b", "version": "1"},
        }
        await call(0, "initialize", hello)
        stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        samples = []
        for request_id in range(1, calls + 51):
            start = time.perf_counter()
            await call(request_id, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
            samples.append(time.perf_counter() - start)
        return samples[50:]
    finally:
        stdin.close()
        await server.wait()


async def measure(calls: int) -> list[Figure]:
    """Time ``calls`` calls through the instrumented gateway, and the upstream directly."""
    async with stdio_session(upstream_argv()) as session:
        direct = await sequential(session, "echo", calls)
    with approver_dirs() as dirs, tempfile.TemporaryDirectory() as scratch:
        token = dirs.token()
        out = Path(scratch) / "marks.json"
        port = free_port()
        serve = dirs.cli("serve", "--port", str(port))[len(APPROVER) :]
        argv = [sys.executable, __file__, "--serve-into", str(out), "--", *serve]
        process = subprocess.Popen(argv, env=BENCH_ENV, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/mcp"
            await wait_http(url, process)
            client = await _client_marks(url, token, calls)
        finally:
            stop(process)
        marks = [(tag, at) for tag, at in json.loads(out.read_text("utf-8"))]
    figures = stage_figures(client, marks)
    bare = await bare_stdio(calls)
    figures += [
        Figure(
            NAME, "for scale: the upstream called directly over stdio", p50(direct), "ms", note="same client"
        ),
        Figure(
            NAME,
            "for scale: the same by a bare JSON-lines client",
            p50(bare),
            "ms",
            note="the server's floor",
        ),
    ]
    return figures


def run(calls: int = 1000) -> list[Figure]:
    """Entry point for ``run_all.py``."""
    return asyncio.run(measure(calls))


def main() -> int:
    """Command line: run and print the figures (or, as the child, serve instrumented)."""
    if "--serve-into" in sys.argv:
        split = sys.argv.index("--")
        return serve_instrumented(Path(sys.argv[sys.argv.index("--serve-into") + 1]), sys.argv[split + 1 :])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print JSON lines (for run_all.py)")
    args = parser.parse_args()
    print_figures(run(args.calls), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
