"""Calls held for approval: progress keepalives, withdrawal when the client goes away, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import keyring.backends.fail
import mcp.types as types
import pytest
from mcp import Client

from approver.approval.broker import ApprovalRequest, Resolution, Verdict
from approver.approval.keepalive import keepalive, waiting_message
from approver.audit.log import DecisionRecord, OutcomeRecord
from approver.events import Recorded
from approver.service import Service, client_url
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 30

POLICY: dict[str, Any] = {
    "version": "1",
    "default": "deny",
    "tools": {"test__echo": {"action": "allow"}, "test__delete_note": {"action": "require_approval"}},
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    root = tmp_path_factory.mktemp("held")
    paths = write_config(root, {"test": upstream_entry("test")}, POLICY)
    async with running_service(paths) as running:
        running.gateway.keepalive_interval = 0.05
        yield running


class Watcher:
    """Observes the broker: every arrival and every ending, with events to wait on."""

    def __init__(self, service: Service) -> None:
        self.arrived: list[ApprovalRequest] = []
        self.ended: list[tuple[ApprovalRequest, Resolution]] = []
        self.recorded: list[DecisionRecord | OutcomeRecord] = []
        self.changed = asyncio.Event()
        self._unsubscribe = service.broker.subscribe(self._observe)
        self._unsubscribe_events = service.events.subscribe(self._event)
        self._detach = service.broker.attach_approver()

    def _event(self, event: object) -> None:
        if isinstance(event, Recorded):
            self.recorded.append(event.record)
            self.changed.set()

    def _observe(self, request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None:
            self.arrived.append(request)
        else:
            self.ended.append((request, resolution))
        self.changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self.changed.clear()
            await self.changed.wait()

    def close(self) -> None:
        self._unsubscribe()
        self._unsubscribe_events()
        self._detach()


@pytest.fixture
def watcher(service: Service) -> Iterator[Watcher]:
    watching = Watcher(service)
    yield watching
    watching.close()


# -- the keepalive on its own ----------------------------------------------------------------


async def test_without_a_progress_token_the_keepalive_sends_nothing() -> None:
    async with keepalive(None, 120.0, interval=0.01):
        await asyncio.sleep(0)  # lets a (wrongly) started beat run once
    # Nothing to assert beyond "no error": there is no reporter to call.


async def test_the_keepalive_reports_increasing_progress_out_of_the_approval_timeout() -> None:
    sent: list[tuple[float, float | None, str | None]] = []
    enough = asyncio.Event()

    async def report(progress: float, total: float | None, message: str | None) -> None:
        sent.append((progress, total, message))
        if len(sent) == 3:
            enough.set()

    with anyio.fail_after(TIMEOUT):
        async with keepalive(report, 120.0, interval=0.01):
            await enough.wait()
    progress = [value for value, _, _ in sent]
    assert progress == sorted(progress) and len(set(progress)) == len(progress)
    assert all(total == 120.0 for _, total, _ in sent)
    assert all(
        message and message.startswith("waiting for your approval in approver") for *_, message in sent
    )


async def test_a_failing_progress_send_does_not_stop_the_keepalive_or_the_wait() -> None:
    attempts = 0
    enough = asyncio.Event()

    async def report(progress: float, total: float | None, message: str | None) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            enough.set()
        raise ConnectionError("stream closed")

    with anyio.fail_after(TIMEOUT):
        async with keepalive(report, 60.0, interval=0.01):
            await enough.wait()
    assert attempts >= 3


async def test_cancelling_the_waiter_still_cancels_it_while_the_keepalive_stops() -> None:
    beats = 0
    started = asyncio.Event()

    async def report(progress: float, total: float | None, message: str | None) -> None:
        nonlocal beats
        beats += 1
        started.set()

    async def wait_forever() -> None:
        async with keepalive(report, 60.0, interval=0.01):
            await asyncio.Event().wait()

    task = asyncio.create_task(wait_forever())
    with anyio.fail_after(TIMEOUT):
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert beats >= 1
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "approval-keepalive" and not t.done()]


def test_the_waiting_message_counts_down_the_seconds_left() -> None:
    assert waiting_message(0.0, 120.0) == "waiting for your approval in approver (120 s left)"
    assert waiting_message(119.5, 120.0) == "waiting for your approval in approver (1 s left)"
    assert waiting_message(130.0, 120.0) == "waiting for your approval in approver (0 s left)"


# -- through the gateway ----------------------------------------------------------------------


async def test_a_legacy_client_waiting_for_approval_gets_progress_until_the_user_approves(
    service: Service, watcher: Watcher
) -> None:
    token = service.tokens.get_or_create("patient")
    progress: list[float] = []
    messages: list[str | None] = []
    three = asyncio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)
        messages.append(message)
        if len(progress) >= 3:
            three.set()

    async def approve_after_three() -> None:
        await watcher.until(lambda: bool(watcher.arrived))
        await three.wait()
        service.broker.approve(watcher.arrived[-1].id)

    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session, anyio.create_task_group() as group:
            group.start_soon(approve_after_three)
            result = await session.call_tool(
                "test__delete_note", {"path": "/tmp/held"}, progress_callback=on_progress
            )
    assert not result.is_error
    assert len(progress) >= 3 and progress == sorted(progress)
    assert all(m and "waiting for your approval" in m for m in messages)


async def test_a_2026_client_waiting_for_approval_gets_progress_too(
    service: Service, watcher: Watcher
) -> None:
    token = service.tokens.get_or_create("patient-2026")
    progress: list[float] = []
    two = asyncio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)
        if len(progress) >= 2:
            two.set()

    async def deny_after_two() -> None:
        await watcher.until(lambda: bool(watcher.arrived))
        await two.wait()
        service.broker.deny(watcher.arrived[-1].id, "not now")

    with anyio.fail_after(TIMEOUT):
        async with Client(client_url(service.port, token)) as client, anyio.create_task_group() as group:
            group.start_soon(deny_after_two)
            result = await client.call_tool(
                "test__delete_note", {"path": "/tmp/held-2026"}, progress_callback=on_progress
            )
    assert result.is_error and "not now" in str(result.content)
    assert len(progress) >= 2


async def test_a_call_without_a_progress_token_gets_no_progress_and_still_waits(
    service: Service, watcher: Watcher
) -> None:
    token = service.tokens.get_or_create("no-token")
    tokens_seen: set[str | int] = set()
    three = asyncio.Event()
    beats = 0

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ProgressNotification):
            tokens_seen.add(message.params.progress_token)

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        nonlocal beats
        beats += 1
        if beats >= 3:
            three.set()

    async def approve_both() -> None:
        # A second held call with a token on the same session marks time: once it has had three
        # keepalives, the call without a token has waited through three intervals too.
        await watcher.until(lambda: len(watcher.arrived) >= 2)
        await three.wait()
        for request in list(watcher.arrived):
            service.broker.approve(request.id)

    results: list[types.CallToolResult] = []

    async def call(path: str, **kwargs: Any) -> None:
        results.append(await session.call_tool("test__delete_note", {"path": path}, **kwargs))

    with anyio.fail_after(TIMEOUT):
        async with (
            legacy_client(service.url, token, message_handler=on_message) as session,
            anyio.create_task_group() as group,
        ):
            group.start_soon(approve_both)
            group.start_soon(call, "/tmp/quiet")
            group.start_soon(partial(call, "/tmp/ticking", progress_callback=on_progress))
    assert len(results) == 2 and not any(result.is_error for result in results)
    assert beats >= 3
    # Every progress notification on the session carried the one token the ticking call sent.
    assert len(tokens_seen) == 1, f"progress was sent for the call without a token: {tokens_seen}"


# -- the client goes away -----------------------------------------------------------------------

_CLIENT_SCRIPT = textwrap.dedent(
    """
    import sys, anyio
    from mcp import Client
    from approver.testing.harness import legacy_client

    async def main(era, url, token):
        if era == "legacy":
            async with legacy_client(url, token) as session:
                await session.call_tool("test__delete_note", {"path": sys.argv[4]})
        else:
            async with Client(url) as client:
                await client.call_tool("test__delete_note", {"path": sys.argv[4]})

    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
    """
)


@pytest.mark.parametrize("era", ["legacy", "2026"])
async def test_a_client_killed_while_its_call_waits_withdraws_the_request_at_once(
    service: Service, watcher: Watcher, era: str, tmp_path: Path
) -> None:
    token = service.tokens.get_or_create(f"doomed-{era}")
    url = service.url if era == "legacy" else client_url(service.port, token)
    marker = f"/tmp/doomed-{era}-{tmp_path.name}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CLIENT_SCRIPT,
        era,
        url,
        token,
        marker,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with anyio.fail_after(TIMEOUT):
            await watcher.until(
                lambda: any(json.loads(r.arguments) == {"path": marker} for r in watcher.arrived)
            )
            request = next(r for r in watcher.arrived if json.loads(r.arguments) == {"path": marker})
            process.send_signal(signal.SIGKILL)
            await watcher.until(lambda: any(ended.id == request.id for ended, _ in watcher.ended))
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
    resolution = next(res for ended, res in watcher.ended if ended.id == request.id)
    assert resolution.verdict is Verdict.CANCELLED
    assert request.id not in [pending.id for pending in service.broker.pending()]
    with anyio.fail_after(TIMEOUT):
        await watcher.until(lambda: any(r.call_id == request.id for r in watcher.recorded))
    rows = [r for r in service.audit.tail(0, 100000) if r["call_id"] == request.id]
    assert [(r["kind"], r["decision"], r["decided_by"]) for r in rows] == [("decision", "deny", "cancelled")]


@pytest.mark.parametrize("how", ["stdin-closed", "bridge-killed"])
async def test_a_stdio_client_that_leaves_the_bridge_withdraws_its_waiting_call(
    tmp_path: Path, how: str
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    command = [
        sys.executable, "-m", "approver", "--data-dir", str(paths.data_dir),
        "--config-dir", str(paths.config_dir), "connect", "--client", "leaver",
    ]  # fmt: skip
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "leaver", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "test__delete_note", "arguments": {"path": "/tmp/left"}},
        },
    ]
    async with running_service(paths, keyring_backend=keyring.backends.fail.Keyring()) as service:
        watcher = Watcher(service)
        process = await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            with anyio.fail_after(TIMEOUT):
                process.stdin.write(json.dumps(messages[0]).encode() + b"\n")
                await process.stdout.readline()  # the initialize result
                for message in messages[1:]:
                    process.stdin.write(json.dumps(message).encode() + b"\n")
                await process.stdin.drain()
                await watcher.until(lambda: bool(watcher.arrived))
                request = watcher.arrived[0]
                if how == "stdin-closed":
                    process.stdin.close()
                else:
                    process.send_signal(signal.SIGKILL)
                await watcher.until(lambda: bool(watcher.ended))
                await watcher.until(lambda: any(r.call_id == request.id for r in watcher.recorded))
        finally:
            watcher.close()
            if process.returncode is None:
                process.kill()
            await process.wait()
    assert watcher.ended[0][1].verdict is Verdict.CANCELLED
    decision = next(r for r in watcher.recorded if r.call_id == request.id)
    assert isinstance(decision, DecisionRecord) and decision.decided_by == "cancelled"
