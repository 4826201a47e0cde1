"""The fuzz loop for ``approver connect``: hostile stdin lines to a real bridge subprocess.

The bridge must answer every request line with a JSON-RPC error or a result, answer a line it
cannot read with an error whose id is null, stay silent on notifications, and keep relaying.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
from anyio.abc import ByteReceiveStream, Process

from approver.testing.fuzz_cases import LEGACY, MODERN, Case, bridge_cases, dumps, request
from approver.testing.fuzz_report import ERROR, RESULT, SILENT, FuzzReport, undecided_calls

CASE_ANSWER_WAIT: Final = 5.0
"""Seconds to keep waiting for a case's own answer once the liveness check after it was answered."""


def connect_command(data_dir: Path, config_dir: Path, client: str = "fuzz") -> list[str]:
    """The argv of ``approver connect`` for the gateway whose directories these are."""
    return [
        sys.executable, "-m", "approver", "--data-dir", str(data_dir), "--config-dir", str(config_dir),
        "connect", "--client", client,
    ]  # fmt: skip


def _key(request_id: Any) -> str:
    return json.dumps(request_id)


class _Stdout:
    """Collects the bridge's answers by id, and counts the errors whose id is null."""

    def __init__(self, stream: ByteReceiveStream) -> None:
        self.stream = stream
        self.answers: dict[str, dict[str, Any]] = {}
        self.null_errors = 0
        self.garbage: list[bytes] = []
        self.changed = anyio.Event()
        self.closed = False

    async def pump(self) -> None:
        buffer = b""
        try:
            async for chunk in self.stream:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._take(line)
        finally:
            self.closed = True
            self.changed.set()

    def _take(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            self.garbage.append(line[:200])
            return
        if isinstance(message, dict) and "id" in message and ("result" in message or "error" in message):
            if message["id"] is None:
                self.null_errors += 1
            else:
                self.answers[_key(message["id"])] = message
            self.changed.set()

    async def wait(self, request_id: Any, timeout: float) -> dict[str, Any] | None:  # noqa: ASYNC109
        """The answer to ``request_id``, or None if none came within ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            while _key(request_id) not in self.answers and not self.closed:
                self.changed = anyio.Event()
                await self.changed.wait()
        return self.answers.get(_key(request_id))


def _kind(message: dict[str, Any] | None) -> str:
    if message is None:
        return "no answer"
    result = message.get("result")
    if "error" in message or (isinstance(result, dict) and result.get("isError") is True):
        return ERROR
    return RESULT


async def _alive(
    process: Process,
    stdout: _Stdout,
    index: int,
    tool: str | None,
    timeout: float,  # noqa: ASYNC109 - a bound on each awaited answer
) -> str | None:
    era = LEGACY if index % 2 == 0 else MODERN
    request_id = f"alive-{index}"
    marker = f"{request_id}-{time.monotonic_ns()}"
    if tool is not None:
        message = request("tools/call", {"name": tool, "arguments": {"text": marker}}, request_id, era)
    else:
        message = request("ping", None, request_id, era)
    assert process.stdin is not None
    await process.stdin.send(dumps(message) + b"\n")
    answer = await stdout.wait(request_id, timeout)
    if _kind(answer) != RESULT or (tool is not None and marker not in json.dumps(answer)):
        return f"liveness check after line {index} ({era}): {json.dumps(answer)[:200]}"
    return None


async def run_bridge_fuzz(
    command: Sequence[str],
    *,
    seed: int,
    count: int,
    env: Mapping[str, str] | None = None,
    tool: str | None = "test__echo",
    call_log: Path | None = None,
    audit_db: Path | None = None,
    stderr: Path | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - a bound on each awaited answer
) -> FuzzReport:
    """Write ``count`` hostile lines (from ``seed``) to a bridge started as ``command``.

    ``command`` is usually :func:`connect_command` for a running gateway; ``env`` must let the
    bridge find its client token (e.g. ``PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring``
    when the gateway keeps tokens in its tokens file). ``tool``, ``call_log`` and ``audit_db``
    are as for :func:`approver.testing.fuzz.run_http_fuzz`; the bridge's stderr goes to ``stderr``.
    """
    report = FuzzReport("bridge", seed)
    started = time.monotonic()
    with open(stderr or os.devnull, "wb") as errors:  # noqa: ASYNC230 - opened once, before the loop
        process = await anyio.open_process(
            list(command), env=dict(env or os.environ), stderr=errors, stdout=subprocess.PIPE
        )
        assert process.stdin is not None and process.stdout is not None
        stdout = _Stdout(process.stdout)
        async with process, anyio.create_task_group() as group:
            group.start_soon(stdout.pump)
            params = {
                "protocolVersion": LEGACY,
                "capabilities": {},
                "clientInfo": {"name": "fuzz", "version": "0"},
            }
            await process.stdin.send(dumps(request("initialize", params, "init", LEGACY)) + b"\n")
            if _kind(await stdout.wait("init", timeout)) != RESULT:
                report.gateway_failures.append("the bridge did not answer initialize")
            else:
                await process.stdin.send(
                    dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + b"\n"
                )
                for index, case in enumerate(bridge_cases(seed, count, tool or "test__echo")):
                    await _one(process, stdout, report, index, case, tool, timeout)
            await process.stdin.aclose()
            with anyio.move_on_after(timeout) as waiting:
                await process.wait()
            if waiting.cancelled_caught:
                report.gateway_failures.append("the bridge did not exit when its stdin closed")
                process.kill()
            group.cancel_scope.cancel()
        report.liveness_checks = count
        report.unexpected += [f"unreadable output line: {line!r}" for line in stdout.garbage]
    if call_log is not None and audit_db is not None:
        report.upstream_calls, report.undecided_calls = undecided_calls(call_log, audit_db)
    report.seconds = time.monotonic() - started
    return report


async def _one(
    process: Process,
    stdout: _Stdout,
    report: FuzzReport,
    index: int,
    case: Case,
    tool: str | None,
    timeout: float,  # noqa: ASYNC109 - a bound on each awaited answer
) -> None:
    """Send one case and the liveness check after it; record what came back."""
    assert process.stdin is not None
    null_errors = stdout.null_errors
    await process.stdin.send(case.body + b"\n")
    problem = await _alive(process, stdout, index, tool, timeout)
    if problem is not None:
        report.gateway_failures.append(problem)
    answer = None
    if case.request_id is not None and stdout.null_errors == null_errors:
        answer = await stdout.wait(
            case.request_id, CASE_ANSWER_WAIT if case.expect.value == "silent" else timeout
        )
    if answer is not None:
        report.record(case, _kind(answer), json.dumps(answer)[:200])
    elif stdout.null_errors > null_errors:
        report.record(case, ERROR, "an error with a null id")
    else:
        report.record(case, SILENT, "no answer")
