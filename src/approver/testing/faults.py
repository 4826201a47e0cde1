"""Fault injection against a real gateway: each scenario breaks one thing and reports what held.

Every scenario runs real parts (a :class:`~approver.service.Service` or an ``approver``
subprocess, the package's test MCP server started with ``--call-log``, a real SQLite audit log)
and returns a :class:`FaultReport`. The central figure is :attr:`FaultReport.lost`: calls that
reached an upstream without a committed decision row in the audit log. It must be 0.

The in-process scenarios live here; :mod:`~approver.testing.fault_processes` kills and stops
whole processes, :mod:`~approver.testing.fault_startup` starts ``approver`` into broken setups,
and :mod:`~approver.testing.fault_report` holds the report and its checks. :data:`SCENARIOS`
names them all. ``python -m approver.testing.faults run [NAME...]`` runs scenarios and prints
their reports as JSON lines; ``python -m approver.testing.faults drive ...`` runs the small
drivers that the process scenarios start (see :func:`main`). Nothing here imports Qt.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import mcp.types as types

from approver.approval.broker import ApprovalRequest, Resolution
from approver.audit.log import AuditLog, DecisionRecord
from approver.config.paths import Paths
from approver.events import Event, Recorded, UpstreamChanged
from approver.service import Service
from approver.testing.fault_processes import EXIT_CODE, desktop_sigterm, killed_mid_stream
from approver.testing.fault_report import (
    ALLOW_ALL,
    APPROVE_ECHO,
    CLIENT,
    FaultReport,
    Notes,
    decision_rows,
    file_token_store,
    report,
    text_of,
)
from approver.testing.fault_startup import STARTUP_PROBLEMS, startup_problem
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.upstream.connection import BACKOFF_START
from approver.upstream.status import UpstreamState

__all__ = ["SCENARIOS", "FaultReport", "run_scenarios"]

STREAM_PACE: Final = 0.02
"""Seconds between one client's calls in the crash scenario's steady stream."""

AuditFault = Literal["read-only", "disk-full"]


# -- an upstream crashes mid-call ----------------------------------------------------------------


async def _until_state(service: Service, name: str, ready: bool) -> None:
    """Return once upstream ``name`` is (``ready=True``) or is no longer (``False``) ready."""
    upstream = service.upstreams[name]
    changed = anyio.Event()

    def listen(event: Event) -> None:
        if isinstance(event, UpstreamChanged) and event.server == name:
            changed.set()

    unsubscribe = service.events.subscribe(listen)
    try:
        while (upstream.state is UpstreamState.READY) is not ready:
            await changed.wait()
            changed = anyio.Event()
    finally:
        unsubscribe()


async def upstream_crash(root: Path, crashes: int = 2) -> FaultReport:
    """Upstream ``a`` crashes mid-call ``crashes`` times while a client streams calls to ``b``.

    Expected: the crashed call gets a tool error saying approver restarts the server and its
    outcome is recorded; a call during the backoff gets a tool error naming the state; ``a``
    comes back after a backoff that doubles (0.5 s, 1 s, ...); every ``b`` call succeeds,
    including those answered while ``a`` was down.
    """
    notes = Notes()
    logs = [root / "a.calls.jsonl", root / "b.calls.jsonl"]
    servers = {
        name: upstream_entry(name, "--call-log", str(log)) for name, log in zip("ab", logs, strict=True)
    }
    paths = write_config(root, servers, ALLOW_ALL)
    calls = 0
    b_ok, b_while_down, b_failed = 0, 0, 0
    async with running_service(paths) as service:
        a = service.upstreams["a"]
        token = service.tokens.get_or_create(CLIENT)
        stop = anyio.Event()
        numbers = itertools.count()

        async def stream_b() -> None:
            nonlocal calls, b_ok, b_while_down, b_failed
            async with legacy_client(service.url, token) as session:
                while not stop.is_set():
                    text = f"b-{next(numbers)}"
                    calls += 1
                    result = await session.call_tool("b__echo", {"text": text})
                    down = a.state is not UpstreamState.READY
                    if not result.is_error and result.structured_content == {"text": text}:
                        b_ok += 1
                        b_while_down += down
                    else:
                        b_failed += 1
                    # A steady stream, not a flood: a's restart needs the CPU too (2 cores here).
                    await anyio.sleep(STREAM_PACE)

        async with legacy_client(service.url, token) as session, anyio.create_task_group() as group:
            group.start_soon(stream_b)
            for attempt in range(crashes):
                calls += 1
                crashed = await session.call_tool("a__crash", {})
                started = time.monotonic()
                notes.see(f"crash {attempt + 1}: the caller got: {text_of(crashed)}")
                notes.expect(
                    crashed.is_error and "stopped during the call" in text_of(crashed),
                    f"crash {attempt + 1}: no clear tool error: {text_of(crashed)!r}",
                )
                await _until_state(service, "a", ready=False)
                calls += 1
                during = await session.call_tool("a__echo", {"text": f"a-during-{attempt}"})
                notes.see(f"crash {attempt + 1}: a call during the backoff got: {text_of(during)}")
                notes.expect(
                    during.is_error and "upstream server 'a' is" in text_of(during),
                    f"crash {attempt + 1}: a call during the backoff got no clear error: {text_of(during)!r}",
                )
                await _until_state(service, "a", ready=True)
                back_after = time.monotonic() - started
                backoff = BACKOFF_START * 2**attempt
                notes.see(
                    f"crash {attempt + 1}: ready again after {back_after:.2f} s (backoff {backoff:.1f} s)"
                )
                notes.expect(back_after >= backoff, f"crash {attempt + 1}: back after {back_after:.2f} s")
                calls += 1
                back = await session.call_tool("a__echo", {"text": f"a-back-{attempt}"})
                notes.expect(not back.is_error, f"crash {attempt + 1}: a did not answer after the restart")
            stop.set()
        notes.expect(a.restarts == crashes, f"a restarted {a.restarts} times, expected {crashes}")
        await service.recorder.flush()
        outcomes = [row for row in service.audit.tail(0, 100_000) if row["kind"] == "outcome"]
    crash_outcomes = [row for row in outcomes if row["tool"] == "a__crash"]
    notes.expect(
        len(crash_outcomes) == crashes
        and all(row["outcome"] == "error" and "stopped" in (row["error"] or "") for row in crash_outcomes),
        f"crashed calls' outcomes not recorded as errors: {crash_outcomes}",
    )
    notes.see(f"b: {b_ok} calls answered, {b_while_down} of them while a was down, {b_failed} failed")
    notes.expect(b_failed == 0, f"{b_failed} calls to b failed while a crashed")
    notes.expect(b_while_down > 0, "no call to b was answered while a was down")
    return report(
        "upstream-crash",
        notes,
        faults=crashes,
        calls=calls,
        call_logs=logs,
        audit_db=paths.audit_db,
        denied=crashes * 2,
    )


# -- the audit log cannot be written ------------------------------------------------------------


def break_audit_log(service: Service, how: AuditFault) -> Callable[[], None]:
    """Make the gateway's audit writes fail for real; returns the function that repairs it.

    ``read-only``: the writer is swapped for the same file opened read-only, so SQLite refuses
    every write ("attempt to write a readonly database"), as on a read-only file or folder.
    ``disk-full``: the writer's own connection is capped at the pages the file has now
    (``PRAGMA max_page_count``), so the first write that needs a new page fails with SQLite's
    real "database or disk is full", as on a full disk. Both work as root, which file modes do not.
    """
    recorder = service.recorder
    writable = recorder.log
    if how == "read-only":
        recorder.log = AuditLog(writable.path, read_only=True)

        def repair() -> None:
            recorder.log.close()
            recorder.log = writable

        return repair
    # SQLite's page cap belongs to one connection, so it has to be the writer's own.
    conn = writable._db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {int(pages)}")

    def lift_cap() -> None:
        conn.execute("PRAGMA max_page_count = 1073741823")

    return lift_cap


async def audit_fault_on(
    service: Service,
    how: AuditFault,
    call_log: Path,
    *,
    calls: int = 30,
    while_broken: Callable[[], Awaitable[None]] | None = None,
) -> FaultReport:
    """Break ``service``'s audit log (see :func:`break_audit_log`) and stream ``calls`` calls.

    ``service`` must serve the test server as ``test`` with ``--call-log call_log`` under an
    allow-all policy. Expected: once a write fails, every call is denied with a reason naming
    the audit log, and no call reaches the upstream without its decision row. ``while_broken``
    runs after the calls, before the repair (a UI test inspects its state there). After the
    repair a call goes through again.
    """
    notes = Notes()
    token = service.tokens.get_or_create(CLIENT)
    denied = allowed = made = 0
    async with legacy_client(service.url, token) as session:
        made += 1
        before = await session.call_tool("test__echo", {"text": f"{how}-before"})
        notes.expect(not before.is_error, f"the call before the fault failed: {text_of(before)}")
        repair = break_audit_log(service, how)
        try:
            first_denial: str | None = None
            for number in range(calls):
                made += 1
                result = await session.call_tool("test__echo", {"text": f"{how}-{number}"})
                if result.is_error:
                    denied += 1
                    first_denial = first_denial or text_of(result)
                    notes.expect(
                        "audit log cannot be written" in text_of(result),
                        f"call {number} denied without naming the audit log: {text_of(result)!r}",
                    )
                else:
                    allowed += 1
                    notes.expect(denied == 0, f"call {number} went through after an earlier denial")
            notes.see(f"{how}: {allowed} calls fit before the first refused write, {denied} denied")
            notes.see(f"{how}: the caller got: {first_denial}")
            notes.expect(denied > 0, f"{how}: no call was denied")
            notes.expect(
                service.recorder.last_error is not None, f"{how}: the recorder does not report the failure"
            )
            if while_broken is not None:
                await while_broken()
        finally:
            repair()
        made += 1
        after = await session.call_tool("test__echo", {"text": f"{how}-after"})
        notes.expect(not after.is_error, f"no recovery after the repair: {text_of(after)}")
    await service.recorder.flush()
    return report(
        f"audit-{how}",
        notes,
        faults=1,
        calls=made,
        call_logs=[call_log],
        audit_db=service.paths.audit_db,
        denied=denied,
    )


async def audit_unwritable(root: Path, how: AuditFault = "read-only", calls: int = 30) -> FaultReport:
    """:func:`audit_fault_on` on a fresh gateway with the test server."""
    call_log = root / "test.calls.jsonl"
    paths = write_config(root, {"test": upstream_entry("test", "--call-log", str(call_log))}, ALLOW_ALL)
    async with running_service(paths) as service:
        result = await audit_fault_on(service, how, call_log, calls=calls)
    return result


# -- shutdown with calls waiting for approval ------------------------------------------------------


async def start_service(paths: Paths) -> Service:
    """A started Service with client tokens in ``tokens.json`` (no keyring); the caller stops it."""
    service = Service(paths, port=0, token_store=file_token_store(paths))
    await service.start()
    await service.wait_upstreams()
    return service


async def wait_pending(service: Service, count: int) -> None:
    """Return once ``count`` calls wait in the broker."""
    arrived = anyio.Event()

    def observe(request: ApprovalRequest, resolution: Resolution | None) -> None:
        if len(service.broker.pending()) >= count:
            arrived.set()

    unsubscribe = service.broker.subscribe(observe)
    try:
        if len(service.broker.pending()) < count:
            await arrived.wait()
    finally:
        unsubscribe()


async def shutdown_with_waiting(root: Path, waiting: int = 3) -> FaultReport:
    """``Service.stop()`` while ``waiting`` calls from separate clients wait for approval.

    Expected: each caller gets a tool error saying approver is shutting down, each call has a
    ``deny`` decision row by ``shutdown``, and none reached the upstream.
    """
    notes = Notes()
    call_log = root / "test.calls.jsonl"
    paths = write_config(root, {"test": upstream_entry("test", "--call-log", str(call_log))}, APPROVE_ECHO)
    results: list[types.CallToolResult] = []
    service = await start_service(paths)
    stopped = False
    try:
        service.broker.attach_approver()  # a UI is "attached" that never answers
        token = service.tokens.get_or_create(CLIENT)

        async def call(number: int) -> None:
            async with legacy_client(service.url, token) as session:
                results.append(await session.call_tool("test__echo", {"text": f"waiting-{number}"}))

        async with anyio.create_task_group() as group:
            for number in range(waiting):
                group.start_soon(call, number)
            await wait_pending(service, waiting)
            await service.stop()
            stopped = True
    finally:
        if not stopped:
            await service.stop()
    answers = [text_of(result) for result in results]
    notes.see(f"the callers got: {answers[0] if answers else None}")
    notes.expect(len(results) == waiting, f"{len(results)} of {waiting} callers got an answer")
    notes.expect(
        all(r.is_error and "shutting down" in text_of(r) for r in results), f"unclear answers: {answers}"
    )
    rows = decision_rows(paths.audit_db)
    shutdown_rows = [r for r in rows if r["decision"] == "deny" and r["decided_by"] == "shutdown"]
    notes.expect(len(shutdown_rows) == waiting, f"{len(shutdown_rows)} shutdown rows for {waiting} calls")
    return report(
        "shutdown-waiting",
        notes,
        faults=1,
        calls=waiting,
        call_logs=[call_log],
        audit_db=paths.audit_db,
        denied=sum(r.is_error for r in results),
    )


# -- drivers that fault scenarios start as processes ---------------------------------------------


def _say(text: str) -> None:
    print(f"approver: {text}", file=sys.stderr, flush=True)


async def _exit_after_rows(paths: Paths, rows: int) -> None:
    service = Service(paths, port=0, token_store=file_token_store(paths))

    def die(event: Event) -> None:
        # Right after a decision's commit, before its call is forwarded, from inside the
        # process: no cleanup, no flush, no goodbye. That call is sent and never reaches the
        # upstream, so the kill is mid-stream however fast the calls go.
        if isinstance(event, Recorded) and event.row_id >= rows and isinstance(event.record, DecisionRecord):
            os._exit(EXIT_CODE)

    service.events.subscribe(die)
    await service.start()
    _say(f"gateway listening on {service.url}")
    await asyncio.Event().wait()


def _watch_desktop(paths: Paths) -> int:
    """The real desktop app, plus a line ``PENDING n`` on stdout whenever the waiting count changes."""
    from approver.ui.launch import DesktopOptions, run_desktop  # Qt only when this driver runs

    async def watch(desktop: Any) -> None:
        broker = desktop.service.broker

        def observe(request: ApprovalRequest, resolution: Resolution | None) -> None:
            print(f"PENDING {len(broker.pending())}", flush=True)

        broker.subscribe(observe)
        await asyncio.Event().wait()

    options = DesktopOptions(port=0, token_store=file_token_store(paths), companion=watch)
    return run_desktop(paths, options)


# -- the registry ------------------------------------------------------------------------------------

Scenario = Callable[[Path], Awaitable[FaultReport]]

SCENARIOS: Final[dict[str, Scenario]] = {
    "upstream-crash": upstream_crash,
    "audit-read-only": partial(audit_unwritable, how="read-only"),
    "audit-disk-full": partial(audit_unwritable, how="disk-full"),
    "killed-sigkill": partial(killed_mid_stream, how="sigkill"),
    "killed-os-exit": partial(killed_mid_stream, how="os-exit"),
    "shutdown-waiting": shutdown_with_waiting,
    "desktop-sigterm": desktop_sigterm,
    **{
        f"startup-{name}-{command}": partial(startup_problem, name=name, command=command)
        for name in STARTUP_PROBLEMS
        for command in ("serve", "app")
    },
}
"""Every scenario, by name: each takes an empty directory and returns its report."""


def run_scenarios(names: Sequence[str], root: Path) -> list[FaultReport]:
    """Run the named scenarios one after another, each in its own folder under ``root``."""
    reports = []
    for name in names:
        folder = root / name
        folder.mkdir(parents=True)
        started = time.monotonic()
        result = anyio.run(SCENARIOS[name], folder)
        reports.append(result)
        print(
            f"{name}: {'ok' if result.ok else 'FAILED'} in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    """``run [NAME...]``: run scenarios, print JSON reports; ``drive ...``: run one driver."""
    parser = argparse.ArgumentParser(prog="python -m approver.testing.faults", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run fault scenarios and print one JSON report per line")
    run.add_argument("names", nargs="*", help="scenario names (default: all)")
    drive = commands.add_parser("drive", help="run a driver that a process scenario starts")
    drive.add_argument("driver", choices=["exit-after-rows", "desktop"])
    drive.add_argument("--config-dir", required=True)
    drive.add_argument("--data-dir", required=True)
    drive.add_argument("--rows", type=int, default=40, help="exit-after-rows: exit after this audit row")
    args = parser.parse_args(argv)
    if args.command == "run":
        unknown = [name for name in args.names if name not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
        with tempfile.TemporaryDirectory(prefix="approver-faults-") as root:
            reports = run_scenarios(args.names or list(SCENARIOS), Path(root))
        for result in reports:
            print(result.to_json())
        return 0 if all(result.ok for result in reports) else 1
    paths = Paths.resolve(args.config_dir, args.data_dir)
    if args.driver == "desktop":
        return _watch_desktop(paths)
    asyncio.run(_exit_after_rows(paths, args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
