"""Limits scenarios where a client, or any local program, attacks the gateway's HTTP side.

Half-sent requests, endless header lines, thousands of sessions, thousands of calls waiting for
approval, and hostile arguments that once made redaction stall everyone. Each runs real processes
and returns a :class:`LimitReport`.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Final

import anyio
import httpx2

from approver.approval.broker import MAX_WAITING_PER_CLIENT
from approver.gateway.http_limits import HttpLimits
from approver.gateway.session_quota import MAX_SESSIONS_PER_CLIENT
from approver.testing.fault_processes import wait_for_tool
from approver.testing.fault_report import ALLOW_ALL, CLIENT, decision_rows, file_token_store
from approver.testing.fuzz_cases import LEGACY, MODERN, dumps, request, routing
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.testing.limit_report import MIB, Findings, LimitReport, milliseconds, watching
from approver.testing.limits_upstream import WAIT, gateway_process

ACCEPT: Final = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
DESKTOP_OPEN_FILES: Final = 1024
"""The usual soft limit on open files of a desktop session, which the half-sent attack exhausted."""


def _half_sent(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sockets.append(sock)
    return sockets


def _closed_after(sockets: list[socket.socket], started: float) -> float:
    """Seconds from ``started`` until the gateway closed every one of ``sockets``."""
    for sock in sockets:
        sock.settimeout(WAIT)
        try:
            while sock.recv(65536):
                pass
        except (ConnectionResetError, TimeoutError):
            pass
    return time.perf_counter() - started


async def half_sent_requests(root: Path, count: int = 1_100) -> LimitReport:
    """``count`` requests that never finish their headers, against a gateway limited to 1,024 files."""
    findings = Findings()
    limits = HttpLimits()
    paths = write_config(root, {"test": upstream_entry()}, ALLOW_ALL)
    token = file_token_store(paths).get_or_create(CLIENT)
    with anyio.fail_after(WAIT):
        async with gateway_process(paths, open_files=DESKTOP_OPEN_FILES) as (proc, url):
            await wait_for_tool(url, token, "test__echo")
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            async with watching(proc.process.pid) as watch:
                started = time.perf_counter()
                attackers = await anyio.to_thread.run_sync(_half_sent, port, count)
                call_started = time.perf_counter()
                async with legacy_client(url, token) as session:
                    result = await session.call_tool("test__echo", {"text": "a real call"})
                call_took = time.perf_counter() - call_started
                closed = await anyio.to_thread.run_sync(_closed_after, attackers, started)
            for sock in attackers:
                sock.close()
    cap = min(limits.max_connections, DESKTOP_OPEN_FILES // 2)
    findings.figure(
        f"{count:,} half-sent requests: the gateway held at most {watch.files_peak} open files"
        f" (limit {DESKTOP_OPEN_FILES:,}); a real client's session and call took {call_took * 1000:.0f} ms"
    )
    findings.figure(f"every half-sent request was closed {closed:.1f} s after the first was sent")
    findings.expect(not result.is_error, "the real client's call failed")
    findings.expect(watch.files_peak < DESKTOP_OPEN_FILES, "the gateway ran out of file descriptors")
    findings.expect(
        closed < limits.header_timeout + 10, "half-sent requests were held past the header timeout"
    )
    return findings.report(
        "half-sent-requests",
        f"header_timeout = {limits.header_timeout:g} s, max_connections = {limits.max_connections}"
        f" (here {cap}: half of {DESKTOP_OPEN_FILES:,} open files), body_timeout = {limits.body_timeout:g} s",
        f"{count:,} connections each send the start of a request's headers, then nothing",
    )


def _slow_body(port: int, token: str) -> float:
    """Send a request's headers and a byte of its body, then nothing; seconds until the gateway closed it."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        started = time.perf_counter()
        sock.settimeout(WAIT)
        try:
            while sock.recv(65536):
                pass
        except (ConnectionResetError, TimeoutError):
            pass
        return time.perf_counter() - started


async def slow_body(root: Path) -> LimitReport:
    """A client sends a request's headers and the first byte of its body, then nothing."""
    findings = Findings()
    limits = HttpLimits()
    paths = write_config(root, {"test": upstream_entry()}, ALLOW_ALL)
    token = file_token_store(paths).get_or_create(CLIENT)
    with anyio.fail_after(WAIT):
        async with gateway_process(paths) as (_, url):
            await wait_for_tool(url, token, "test__echo")
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            async with anyio.create_task_group() as group:
                closed: list[float] = []

                async def stall() -> None:
                    closed.append(await anyio.to_thread.run_sync(_slow_body, port, token))

                group.start_soon(stall)
                async with legacy_client(url, token) as session:
                    result = await session.call_tool("test__echo", {"text": "meanwhile"})
    findings.figure(f"the gateway closed the stalled request {closed[0]:.1f} s after its last byte")
    findings.figure("a call on another connection meanwhile was answered")
    findings.expect(
        limits.body_timeout <= closed[0] < limits.body_timeout + 5, "not closed at the body timeout"
    )
    findings.expect(not result.is_error, "the other call failed")
    return findings.report(
        "slow-body",
        f"body_timeout = {limits.body_timeout:g} s without a byte of a request body",
        "a client sends a request's headers and one byte of its 1,000-byte body, then nothing",
    )


def _header_flood(port: int, total: int) -> tuple[int, bytes]:
    line = b"X-Padding: " + b"p" * 1000 + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            while sent < total:
                sock.sendall(line * 64)
                sent += len(line) * 64
        except OSError:
            pass
        sock.settimeout(WAIT)
        try:
            answer = sock.recv(65536)
        except OSError:
            answer = b""
    return sent, answer


async def header_flood(root: Path, total: int = 300 * MIB) -> LimitReport:
    """One connection sends header lines without end (up to ``total`` bytes)."""
    findings = Findings()
    limits = HttpLimits()
    paths = write_config(root, {"test": upstream_entry()}, ALLOW_ALL)
    with anyio.fail_after(WAIT):
        async with gateway_process(paths) as (proc, url):
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            async with watching(proc.process.pid) as watch:
                sent, answer = await anyio.to_thread.run_sync(_header_flood, port, total)
    findings.figure(
        f"the gateway answered {answer[:12].decode(errors='replace')!r} and closed the connection; the client"
        f" had pushed {sent / 1024:,.0f} KiB of its {total // MIB} MiB into socket buffers by then;"
        f" its memory rose by at most {watch.rss_growth_mib:.1f} MiB"
    )
    findings.expect(answer.startswith(b"HTTP/1.1 431 "), "no 431 answer")
    findings.expect(sent < 16 * MIB, "the gateway read far past the limit")
    return findings.report(
        "header-flood",
        f"max_header_bytes = {limits.max_header_bytes // 1024} KiB of request line and headers",
        f"one connection sends {total // MIB} MiB of header lines",
    )


async def _initialize(http: httpx2.AsyncClient, url: str, token: str) -> int:
    params = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "limits", "version": "0"}}
    answer = await http.post(
        url,
        headers=ACCEPT | {"authorization": f"Bearer {token}"},
        content=dumps(request("initialize", params, 0, LEGACY)),
    )
    return answer.status_code


async def many_sessions(root: Path, attempts: int = 10_000) -> LimitReport:
    """One client tries to open ``attempts`` sessions; another client then opens one."""
    findings = Findings()
    paths = write_config(root, {"test": upstream_entry()}, ALLOW_ALL)
    tokens = file_token_store(paths)
    greedy, other = tokens.get_or_create("greedy"), tokens.get_or_create("other")
    statuses: list[int] = []
    with anyio.fail_after(WAIT * 3):
        async with gateway_process(paths) as (_, url), httpx2.AsyncClient(timeout=WAIT) as http:
            started = time.perf_counter()

            async def worker(share: int) -> None:
                for _ in range(share):
                    statuses.append(await _initialize(http, url, greedy))

            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(worker, attempts // 8)
            took = time.perf_counter() - started
            welcome = await _initialize(http, url, other)
    opened, refused = statuses.count(200), statuses.count(429)
    findings.figure(
        f"of {len(statuses):,} initialize requests from one client, {opened} opened a session and"
        f" {refused:,} got 429, in {took:.1f} s; another client's initialize then got {welcome}"
    )
    findings.expect(
        opened == MAX_SESSIONS_PER_CLIENT, f"{opened} sessions opened, not {MAX_SESSIONS_PER_CLIENT}"
    )
    findings.expect(refused == len(statuses) - opened, "some attempts got neither a session nor 429")
    findings.expect(welcome == 200, "another client could not initialize")
    return findings.report(
        "sessions-per-client",
        f"MAX_SESSIONS_PER_CLIENT = {MAX_SESSIONS_PER_CLIENT} open 2025-era sessions per client",
        f"one client sends {attempts:,} initialize requests",
    )


class _Counter:
    """A count that a task can wait on reaching a value."""

    def __init__(self) -> None:
        self.value = 0
        self._changed = anyio.Event()

    def add(self, *_: object) -> None:
        self.value += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def reach(self, value: int) -> None:
        while self.value < value:
            await self._changed.wait()


async def many_waiting_calls(root: Path, calls: int = 1_500) -> LimitReport:
    """One client sends ``calls`` calls that need approval; another client's call must still wait."""
    findings = Findings()
    policy = {"version": "1", "default": "allow", "tools": {"test__echo": {"action": "require_approval"}}}
    paths = write_config(root, {"test": upstream_entry()}, policy)
    answered, arrived = _Counter(), _Counter()
    with anyio.fail_after(WAIT * 2):
        async with running_service(paths, approval_timeout=WAIT * 3) as service:
            service.broker.attach_approver()
            service.broker.subscribe(lambda request, ending: arrived.add() if ending is None else None)
            tokens = {name: service.tokens.get_or_create(name) for name in ("greedy", "polite")}
            async with httpx2.AsyncClient(timeout=WAIT * 3) as http, anyio.create_task_group() as group:

                async def call(client: str, number: int) -> None:
                    arguments = {"name": "test__echo", "arguments": {"text": f"{client} {number}"}}
                    await http.post(
                        service.url,
                        headers=ACCEPT
                        | routing("tools/call", "test__echo")
                        | {"authorization": f"Bearer {tokens[client]}"},
                        content=dumps(request("tools/call", arguments, number, MODERN)),
                    )
                    answered.add()

                numbers = iter(range(calls))

                async def worker() -> None:
                    # The calls that wait hold their worker; the others take the rest.
                    for number in numbers:
                        await call("greedy", number)

                started = time.perf_counter()
                for _ in range(2 * MAX_WAITING_PER_CLIENT):
                    group.start_soon(worker)
                await answered.reach(calls - MAX_WAITING_PER_CLIENT)
                took = time.perf_counter() - started
                held = [r.client for r in service.broker.pending()]
                group.start_soon(call, "polite", 0)
                await arrived.reach(len(held) + 1)
                polite_waits = [r.client for r in service.broker.pending()].count("polite") == 1
                service.broker.deny_all("shutdown", "the scenario is over")
            await service.recorder.flush()
            rows = [row for row in decision_rows(service.paths.audit_db) if row["client"] == "greedy"]
    limited = sum(1 for row in rows if row["decided_by"] == "limit")
    findings.figure(
        f"of {calls:,} calls needing approval from one client, {len(held)} waited and {limited:,} were"
        f" denied at once (decided_by 'limit', one audit row each) in {took:.1f} s;"
        " another client's call still waited"
    )
    findings.expect(held == ["greedy"] * MAX_WAITING_PER_CLIENT, f"{len(held)} calls waited")
    findings.expect(limited == calls - MAX_WAITING_PER_CLIENT, f"{limited} calls were denied by the limit")
    findings.expect(polite_waits, "another client's call did not wait for approval")
    return findings.report(
        "calls-waiting-per-client",
        f"MAX_WAITING_PER_CLIENT = {MAX_WAITING_PER_CLIENT} calls waiting for approval per client",
        f"one client sends {calls:,} calls that need a person's approval",
    )


async def hostile_redaction(root: Path, hostile_calls: int = 10, victim_calls: int = 200) -> LimitReport:
    """A client sends 4 MiB of arguments built to make redaction slow to a tool the policy denies,
    while another client calls an allowed tool; the victim's latency is measured both ways."""
    findings = Findings()
    policy = {"version": "1", "default": "allow", "tools": {"test__delete_note": {"action": "deny"}}}
    paths = write_config(root, {"test": upstream_entry()}, policy)
    tokens = file_token_store(paths)
    victim, attacker = tokens.get_or_create("victim"), tokens.get_or_create("attacker")
    unit = "-----BEGIN PRIVATE KEY-----"
    payload = {"note": unit * ((4 * MIB - 1000) // len(unit))}
    hostile_took: list[float] = []
    with anyio.fail_after(WAIT * 2):
        async with gateway_process(paths) as (_, url):
            await wait_for_tool(url, victim, "test__echo")

            async def victim_run() -> list[float]:
                durations = []
                async with legacy_client(url, victim) as session:
                    for number in range(victim_calls):
                        started = time.perf_counter()
                        await session.call_tool("test__echo", {"text": f"victim {number}"})
                        durations.append(time.perf_counter() - started)
                return durations

            alone = await victim_run()
            during: list[float] = []
            async with legacy_client(url, attacker) as bad, anyio.create_task_group() as group:

                async def attack() -> None:
                    for _ in range(hostile_calls):
                        started = time.perf_counter()
                        result = await bad.call_tool("test__delete_note", payload)
                        hostile_took.append(time.perf_counter() - started)
                        findings.expect(result.is_error, "the denied call was not denied")

                async def measure() -> None:
                    during.extend(await victim_run())

                group.start_soon(attack)
                group.start_soon(measure)
    rows = [row for row in decision_rows(paths.audit_db) if row["client"] == "attacker"]
    findings.figure(f"the victim's {victim_calls} calls alone: {milliseconds(alone)}")
    findings.figure(f"the same while {hostile_calls} hostile 4 MiB calls were denied: {milliseconds(during)}")
    stored = len(rows[0]["arguments"]) if rows else 0
    findings.figure(f"each hostile call took {milliseconds(hostile_took)}; each stored {stored} characters")
    findings.expect(len(during) == victim_calls, "the victim's calls did not all complete")
    findings.expect(len(rows) == hostile_calls, f"{len(rows)} hostile calls recorded, not {hostile_calls}")
    findings.expect(
        all("BEGIN PRIVATE KEY" not in row["arguments"] for row in rows), "a key block was stored"
    )
    return findings.report(
        "hostile-redaction",
        "redaction takes time linear in its input; a stored argument preview costs what it keeps (64 KiB)",
        f"{hostile_calls} calls with 4 MiB of repeated '-----BEGIN PRIVATE KEY-----' to a denied tool",
    )
