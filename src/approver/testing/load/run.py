"""Load test: many concurrent clients through a real gateway, with every answer and audit row accounted for.

:func:`run_load` drives ``clients`` concurrent MCP clients, each making ``calls_per_client``
sequential tool calls under a mixed policy (:data:`LOAD_POLICY`: an allowed tool, a denied tool
and a rate-limited tool), over Streamable HTTP (both protocol eras) or through real
``approver connect`` stdio bridges. Every call carries a unique argument, so afterwards it can
prove that each call got exactly one answer of the expected kind, that each has exactly one
decision row in the audit log (and each forwarded call one outcome row), that every call the
upstream received (its ``--call-log``) was allowed by a decision row, and that the hash chain
verifies. It samples the gateway's resident memory while it runs.

The gateway is either given (:class:`LoadGateway`, e.g. one running on the desktop app's Qt loop)
or started by :func:`gateway_process` as a separate ``approver serve`` process, so its memory is
measured apart from the clients'. ``python -m approver.testing.load`` runs it from a shell (see
:mod:`approver.testing.load.__main__`). Qt-free, usable outside pytest.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import httpx2
import keyring.backends.fail

from approver.config.paths import Paths
from approver.config.tokens import TokenStore
from approver.service import read_runtime
from approver.testing.harness import legacy_client, upstream_entry, write_config
from approver.testing.load.calls import (
    DENY_REASON,
    RATE_COUNTER,
    LoadCall,
    LoadReport,
    check_audit,
    plan_calls,
    rss_kb,
    summarize,
)
from approver.testing.load.clients import (
    CONNECT_TIMEOUT,
    DuplicateAnswers,
    run_bridge_client,
    run_http_client,
)

__all__ = [
    "LOAD_POLICY",
    "LoadGateway",
    "LoadReport",
    "Transport",
    "gateway_process",
    "load_config",
    "run_load",
]

Transport = Literal["http", "bridge"]
"""How the clients reach the gateway: Streamable HTTP, or ``approver connect`` subprocesses."""

RATE_MAX: Final = 10
"""Calls of the rate-limited tool each client may make per hour; the rest are denied."""

LOAD_POLICY: Final[dict[str, Any]] = {
    "version": "1",
    "default": "deny",
    "tools": {
        "test__echo": {"action": "allow"},
        "test__delete_note": {"action": "deny", "reason": DENY_REASON},
        "test__write_note": {
            "action": "allow",
            "limits": [{"counter": RATE_COUNTER, "max": RATE_MAX, "window": "hour", "scope": "client"}],
        },
    },
}
"""The mixed policy: ``echo`` allowed, ``delete_note`` denied, ``write_note`` rate-limited per client."""

READY_TIMEOUT: Final = 60.0
"""Seconds to wait for a started gateway to serve with its upstream connected."""

RSS_INTERVAL: Final = 0.05
"""Seconds between two samples of the gateway's resident memory."""


@dataclass(frozen=True)
class LoadGateway:
    """A running gateway to load: where its files are, its URL, its pid and its upstream's call log."""

    paths: Paths
    url: str
    """The plain MCP endpoint, ``http://127.0.0.1:PORT/mcp``."""
    pid: int
    """The process whose memory is sampled (the gateway's own when it runs in-process)."""
    call_log: Path
    """The upstream test server's ``--call-log``: one JSON line per call it received."""

    @classmethod
    def attach(cls, paths: Paths, call_log: Path) -> LoadGateway:
        """The gateway running on ``paths`` (from its ``gateway.json``); ValueError if none runs."""
        info = read_runtime(paths)
        if info is None:
            raise ValueError(f"no gateway is running on {paths.data_dir} (no live gateway.json)")
        return cls(paths, info.url, info.pid, call_log)


def load_config(root: Path) -> tuple[Paths, Path]:
    """Write servers.json (the test server, logging every call it gets) and :data:`LOAD_POLICY`.

    Returns the paths and the upstream's call-log file.
    """
    call_log = root / "upstream-calls.jsonl"
    servers = {"test": upstream_entry("test", "--call-log", str(call_log))}
    return write_config(root, servers, LOAD_POLICY), call_log


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # Gateway, bridges and this process must share client tokens: all use the 0600 tokens file.
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return env


def _approver_argv(paths: Paths, *command: str) -> list[str]:
    dirs = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir)]
    return [sys.executable, "-m", "approver", *dirs, *command]


@asynccontextmanager
async def gateway_process(root: Path) -> AsyncIterator[LoadGateway]:
    """Run ``approver serve`` on a free port as a separate process, configured by :func:`load_config`.

    Yields once the gateway serves and its upstream's tools are listed; stops it (SIGTERM,
    then SIGKILL after 15 s) on exit. Its stderr goes to ``root/gateway.log``.
    """
    paths, call_log = load_config(root)
    with (root / "gateway.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - waited for off the loop below
            _approver_argv(paths, "serve", "--port", "0"),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=_environment(),
        )
    try:
        gateway = await _wait_ready(paths, call_log, process)
        yield gateway
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


async def _wait_ready(paths: Paths, call_log: Path, process: subprocess.Popen[bytes]) -> LoadGateway:
    token = _tokens(paths).get_or_create("load-probe")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"approver serve exited with {process.returncode}; see its gateway.log")
        info = read_runtime(paths)
        if info is not None and info.pid == process.pid:
            try:
                async with legacy_client(info.url, token) as session:
                    names = {tool.name for tool in (await session.list_tools()).tools}
            except (OSError, httpx2.HTTPError):
                names = set()
            if "test__echo" in names:
                return LoadGateway(paths, info.url, process.pid, call_log)
        await asyncio.sleep(0.1)  # polling a condition another process will make true, with a bound
    raise TimeoutError(f"the gateway did not serve its upstream's tools within {READY_TIMEOUT:.0f} s")


def _tokens(paths: Paths) -> TokenStore:
    return TokenStore(paths.tokens_file, backend=keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]


async def run_load(
    root: Path | None = None,
    *,
    gateway: LoadGateway | None = None,
    transport: Transport = "http",
    clients: int = 50,
    calls_per_client: int = 100,
    label: str = "load",
    call_timeout: float = 60.0,
) -> LoadReport:
    """Run one round of load and check it; see the module docstring for what is proved.

    Pass a running ``gateway``, or a ``root`` directory in which :func:`gateway_process` starts
    one for this round only. Client names are ``<label>-c<NN>``: use a new ``label`` for each
    round against the same gateway, since rate-limit buckets are per client. Over HTTP, even
    clients speak the 2025-11-25 era (sessions) and odd ones the 2026-07-28 era (sessionless).
    A call that gets no answer within ``call_timeout`` seconds counts as lost.
    """
    if gateway is None:
        if root is None:
            raise ValueError("run_load needs a running gateway or a root directory to start one in")
        async with gateway_process(root) as own:
            return await run_load(
                gateway=own,
                transport=transport,
                clients=clients,
                calls_per_client=calls_per_client,
                label=label,
                call_timeout=call_timeout,
            )
    names = [f"{label}-c{index:02d}" for index in range(clients)]
    # Bridges create their own tokens as they start, all at once, as a user's first `connect` does.
    store = _tokens(gateway.paths)
    tokens = {name: "" if transport == "bridge" else store.get_or_create(name) for name in names}
    plans = {name: plan_calls(name, calls_per_client, RATE_MAX) for name in names}
    head_before = _audit_head(gateway.paths)
    log_offset = gateway.call_log.stat().st_size if gateway.call_log.exists() else 0

    sampler = _RssSampler(gateway.pid)
    sampler_task = asyncio.create_task(sampler.run())
    run = _Round(gateway, transport, _Barrier(clients), call_timeout, DuplicateAnswers())
    setup_started = time.monotonic()
    with run.duplicates.watching():
        tasks = [
            asyncio.create_task(run.client(index, name, tokens[name], plans[name]))
            for index, name in enumerate(names)
        ]
        await run.connected.wait_or_fail(tasks)
        rss_before = sampler.current
        started = time.monotonic()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        wall = time.monotonic() - started
    rss_after = sampler.sample()
    sampler_task.cancel()
    client_errors = [
        f"{name}: {result!r}"
        for name, result in zip(names, results, strict=True)
        if isinstance(result, BaseException)
    ]
    calls = [call for plan in plans.values() for call in plan]
    audit = await asyncio.to_thread(
        check_audit, gateway.paths, gateway.call_log, calls, head_before, log_offset
    )
    return summarize(
        transport=transport,
        clients=clients,
        calls_per_client=calls_per_client,
        calls=calls,
        duplicates=run.duplicates.count + sum(call.extra_answers for call in calls),
        audit=audit,
        setup_s=started - setup_started,
        wall_s=wall,
        rss=(rss_before, rss_after, sampler.peak),
        client_errors=client_errors,
    )


@dataclass(frozen=True)
class _Round:
    """What every client of one round shares."""

    gateway: LoadGateway
    transport: Transport
    connected: _Barrier
    call_timeout: float
    duplicates: DuplicateAnswers

    async def client(self, index: int, name: str, token: str, plan: list[LoadCall]) -> None:
        """Connect one client, wait for the others, make its calls; bounded as a whole."""
        async with asyncio.timeout(CONNECT_TIMEOUT + len(plan) * self.call_timeout):
            if self.transport == "bridge":
                argv = _approver_argv(self.gateway.paths, "connect", "--client", name)
                log = self.gateway.paths.logs_dir / f"bridge-{name}.log"
                await run_bridge_client(
                    argv, _environment(), log, plan, self.connected, self.call_timeout, self.duplicates
                )
            else:
                modern = index % 2 == 1
                await run_http_client(
                    self.gateway.url, token, plan, self.connected, self.call_timeout, modern=modern
                )


def _audit_head(paths: Paths) -> int:
    from approver.audit.log import AuditLog

    if not paths.audit_db.exists():
        return 0
    with AuditLog(paths.audit_db, read_only=True) as log:
        return log.head_id()


class _Barrier:
    """Set once every client has connected, so timing covers the calls, not process start-up."""

    def __init__(self, parties: int) -> None:
        self._left = parties
        self._event = asyncio.Event()
        if parties <= 0:
            self._event.set()

    def arrive(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._event.set()

    async def wait(self) -> None:
        await self._event.wait()

    async def wait_or_fail(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait for every client to connect; a client that fails first ends the wait early."""
        waiter = asyncio.create_task(self._event.wait())
        pending: set[asyncio.Future[Any]] = {waiter, *tasks}
        while not waiter.done():
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(task is not waiter and task.exception() is not None for task in done):
                waiter.cancel()
                self._event.set()  # let the others go on: the report counts what was lost
                return


class _RssSampler:
    """Samples a process's VmRSS every :data:`RSS_INTERVAL` seconds, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.current = rss_kb(pid)
        self.peak = self.current

    def sample(self) -> int:
        self.current = rss_kb(self.pid)
        self.peak = max(self.peak, self.current)
        return self.current

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(RSS_INTERVAL)  # a sampling period, not a wait for a condition
