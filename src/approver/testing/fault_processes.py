"""Fault scenarios with whole processes: kill the gateway mid-stream, SIGTERM the desktop app.

Each scenario starts ``approver`` (or a driver run by ``python -m approver.testing.faults
drive``) as a real subprocess on its own config and data directories and returns a
:class:`~approver.testing.fault_report.FaultReport`. The subprocess plumbing here (:func:`spawn`,
:func:`gateway_url`, ...) is shared with :mod:`~approver.testing.fault_startup`. Nothing here
imports Qt.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import anyio.abc
import mcp.types as types

from approver.config.paths import Paths
from approver.testing.fault_report import (
    ALLOW_ALL,
    APPROVE_ECHO,
    CLIENT,
    FaultReport,
    Notes,
    audit_rows,
    decision_rows,
    file_token_store,
    report,
    text_of,
    verify_log,
)
from approver.testing.harness import legacy_client, upstream_entry, write_config

EXIT_CODE: Final = 71
"""The status the ``exit-after-rows`` driver passes to ``os._exit``."""

READY_TIMEOUT: Final = 60.0
"""Seconds a subprocess gets to say it is listening (imports are slow on a busy machine)."""

LISTENING: Final = re.compile(r"listening on (http://\S+)")
"""The line a gateway prints on stderr once it serves; group 1 is its URL."""
_DISPLAY_VARIABLES: Final = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")

Kill = Literal["sigkill", "os-exit"]


def approver_argv(paths: Paths, *args: str) -> list[str]:
    """``python -m approver --config-dir .. --data-dir .. ARGS``."""
    dirs = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir)]
    return [sys.executable, "-m", "approver", *dirs, *args]


def driver_argv(paths: Paths, driver: str, *args: str) -> list[str]:
    """``python -m approver.testing.faults drive DRIVER ..``."""
    dirs = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir)]
    return [sys.executable, "-m", "approver.testing.faults", "drive", driver, *dirs, *args]


def headless_env(**extra: str) -> dict[str, str]:
    """This environment without a display, with no keyring (tokens in the file), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _DISPLAY_VARIABLES}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return env | extra


@dataclass
class Proc:
    """A running subprocess whose stdout and stderr lines are collected as they arrive."""

    process: anyio.abc.Process
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _changed: anyio.Event = field(default_factory=anyio.Event)
    _open: int = 2

    async def pump(self, stream: anyio.abc.ByteReceiveStream | None, into: list[str]) -> None:
        """Collect ``stream`` into ``into`` line by line until it ends."""
        buffer = b""
        if stream is not None:
            try:
                async for chunk in stream:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    into.extend(line.decode("utf-8", "replace") for line in lines)
                    self._tell()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
        if buffer:
            into.append(buffer.decode("utf-8", "replace"))
        self._open -= 1
        self._tell()

    def _tell(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_line(self, lines: list[str], pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The first line of ``lines`` matching ``pattern``, waiting for it; None once output ended."""
        while True:
            for line in lines:
                if match := pattern.search(line):
                    return match
            if self._open == 0:
                return None
            await self._changed.wait()

    async def ended(self) -> int:
        """Wait for the process to exit and its output to be read; its exit status."""
        code = await self.process.wait()
        while self._open:
            await self._changed.wait()
        return code

    @property
    def errors(self) -> str:
        """Everything written to stderr so far."""
        return "\n".join(self.stderr)


@asynccontextmanager
async def spawn(argv: Sequence[str], env: dict[str, str]) -> AsyncIterator[Proc]:
    """Run ``argv``; on exit kill it if it still runs. Enter and exit in the same task."""
    process = await anyio.open_process(list(argv), stdin=subprocess.DEVNULL, env=env)
    proc = Proc(process)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(proc.pump, process.stdout, proc.stdout)
            group.start_soon(proc.pump, process.stderr, proc.stderr)
            try:
                yield proc
            finally:
                with anyio.CancelScope(shield=True):
                    if process.returncode is None:
                        process.kill()
                    await proc.ended()
    finally:
        await process.aclose()


async def gateway_url(proc: Proc) -> str:
    """The gateway URL the process announced on stderr; ProcessLookupError if it exited first."""
    with anyio.fail_after(READY_TIMEOUT):
        match = await proc.wait_line(proc.stderr, LISTENING)
    if match is None:
        raise ProcessLookupError(f"the gateway exited before listening:\n{proc.errors}")
    return match.group(1)


async def wait_for_tool(url: str, token: str, name: str) -> None:
    """Return once the gateway at ``url`` lists tool ``name`` (its upstream is ready)."""
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        nonlocal changed
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with legacy_client(url, token, message_handler=on_message) as session:
        while name not in {tool.name for tool in (await session.list_tools()).tools}:
            await changed.wait()
            changed = anyio.Event()


async def audit_verify(paths: Paths) -> tuple[int, str]:
    """Run ``approver audit verify`` as a subprocess; its exit status and its output."""
    with anyio.fail_after(READY_TIMEOUT):
        done = await anyio.run_process(
            approver_argv(paths, "audit", "verify"), env=headless_env(), check=False
        )
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace").strip()


# -- the gateway is killed during a stream of calls ----------------------------------------------


@dataclass
class _Stream:
    """Several clients calling ``test__echo`` with unique texts until their gateway goes away."""

    url: str
    token: str
    sent: int = 0
    answered: list[str] = field(default_factory=list)
    """Texts whose call got a successful answer."""
    enough: anyio.Event = field(default_factory=anyio.Event)
    target: int = 0

    async def client(self, number: int) -> None:
        try:
            async with legacy_client(self.url, self.token) as session:
                for n in range(1_000_000):
                    text = f"c{number}-{n}"
                    self.sent += 1
                    result = await session.call_tool("test__echo", {"text": text})
                    if result.is_error:
                        continue
                    self.answered.append(text)
                    if len(self.answered) >= self.target:
                        self.enough.set()
        except Exception:  # noqa: S110 - the gateway was killed under this client: that is the test
            pass


async def killed_mid_stream(
    root: Path, how: Kill = "sigkill", *, clients: int = 4, kill_after: int = 40
) -> FaultReport:
    """Kill the gateway while ``clients`` clients stream calls, then restart it on the same files.

    ``sigkill``: a real ``approver serve`` gets SIGKILL once ``kill_after`` calls were answered.
    ``os-exit``: the ``exit-after-rows`` driver runs the Service and calls ``os._exit`` right after
    the first decision row from row ``kill_after`` on is committed. Expected: every call the
    upstream received has its committed decision row, every answered call has its decision row
    and, except perhaps each client's last one (its outcome row waits up to ``LATER_DELAY`` for
    the next commit), its outcome row; ``approver audit verify`` exits 0, and a restarted gateway
    serves again and verifies again.
    """
    notes = Notes()
    call_log = root / "test.calls.jsonl"
    paths = write_config(root, {"test": upstream_entry("test", "--call-log", str(call_log))}, ALLOW_ALL)
    token = file_token_store(paths).get_or_create(CLIENT)
    if how == "sigkill":
        argv = approver_argv(paths, "serve", "--port", "0")
    else:
        argv = driver_argv(paths, "exit-after-rows", "--rows", str(kill_after))
    async with spawn(argv, headless_env()) as proc:
        url = await gateway_url(proc)
        await wait_for_tool(url, token, "test__echo")
        stream = _Stream(url, token, target=kill_after)
        async with anyio.create_task_group() as group:
            for number in range(clients):
                group.start_soon(stream.client, number)
            if how == "sigkill":
                await stream.enough.wait()
                proc.process.kill()
            code = await proc.ended()
    expected = -signal.SIGKILL if how == "sigkill" else EXIT_CODE
    notes.expect(code == expected, f"the gateway exited with {code}, expected {expected}")
    notes.see(f"{how}: killed after {len(stream.answered)} answered of {stream.sent} calls sent")
    rows = audit_rows(paths.audit_db)
    call_ids = {
        json.loads(row["arguments"]).get("text"): row["call_id"]
        for row in rows
        if row["kind"] == "decision" and row["decision"] == "allow"
    }
    finished = {row["call_id"] for row in rows if row["kind"] == "outcome"}
    undecided = [text for text in stream.answered if text not in call_ids]
    notes.expect(not undecided, f"answered calls without a decision row: {undecided}")
    # An outcome row joins the next commit (at most LATER_DELAY later): a kill can lose the
    # outcome of each client's last answered call, and of no call before it.
    last = {text.split("-")[0]: text for text in stream.answered}
    unfinished = [text for text in stream.answered if call_ids.get(text) not in finished]
    early = [text for text in unfinished if text not in last.values()]
    notes.expect(not early, f"answered calls, not the last of their client, without an outcome row: {early}")
    if unfinished:
        notes.see(f"outcome rows still waiting to be committed at the kill: {len(unfinished)}")
    verify_code, verify_output = await audit_verify(paths)
    notes.see(f"approver audit verify after the kill: exit {verify_code}: {verify_output}")
    notes.expect(verify_code == 0, f"audit verify failed after the kill: {verify_output}")
    await _serve_again(paths, token, notes)
    verified_again = verify_log(paths.audit_db)
    notes.expect(verified_again, "the log does not verify after the restart")
    return report(
        f"killed-{how}",
        notes,
        faults=1,
        calls=stream.sent + 1,
        call_logs=[call_log],
        audit_db=paths.audit_db,
        verify_ok=verify_code == 0 and verified_again,
    )


async def _serve_again(paths: Paths, token: str, notes: Notes) -> None:
    """Start ``approver serve`` on the same files, make one call, stop it with SIGTERM."""
    async with spawn(approver_argv(paths, "serve", "--port", "0"), headless_env()) as proc:
        url = await gateway_url(proc)
        await wait_for_tool(url, token, "test__echo")
        async with legacy_client(url, token) as session:
            result = await session.call_tool("test__echo", {"text": "after-restart"})
        notes.expect(not result.is_error, f"the restarted gateway did not serve: {text_of(result)}")
        proc.process.send_signal(signal.SIGTERM)
        code = await proc.ended()
    notes.expect(code == 0, f"the restarted gateway exited with {code} on SIGTERM")
    notes.expect("Traceback" not in proc.errors, f"the restarted gateway printed a traceback:\n{proc.errors}")


# -- SIGTERM to the desktop app while calls wait for approval --------------------------------------


async def desktop_sigterm(root: Path, waiting: int = 3) -> FaultReport:
    """SIGTERM to a real desktop app (offscreen) while ``waiting`` calls wait for approval.

    Expected: the process exits 0, each caller gets a tool error saying approver is quitting,
    each call has a ``deny`` row by ``shutdown``, and none reached the upstream.
    """
    notes = Notes()
    call_log = root / "test.calls.jsonl"
    paths = write_config(root, {"test": upstream_entry("test", "--call-log", str(call_log))}, APPROVE_ECHO)
    token = file_token_store(paths).get_or_create(CLIENT)
    results: list[types.CallToolResult] = []
    env = headless_env(QT_QPA_PLATFORM="offscreen")
    async with spawn(driver_argv(paths, "desktop"), env) as proc:
        url = await gateway_url(proc)
        await wait_for_tool(url, token, "test__echo")

        async def call(number: int) -> None:
            async with legacy_client(url, token) as session:
                results.append(await session.call_tool("test__echo", {"text": f"waiting-{number}"}))

        async with anyio.create_task_group() as group:
            for number in range(waiting):
                group.start_soon(call, number)
            with anyio.fail_after(READY_TIMEOUT):
                await proc.wait_line(proc.stdout, re.compile(rf"^PENDING {waiting}$"))
            proc.process.send_signal(signal.SIGTERM)
        code = await proc.ended()
    answers = [text_of(result) for result in results]
    notes.see(f"the callers got: {answers[0] if answers else None}")
    notes.expect(code == 0, f"the desktop app exited with {code} on SIGTERM:\n{proc.errors}")
    notes.expect(
        len(results) == waiting and all(r.is_error and "quitting" in text_of(r) for r in results),
        f"unclear answers: {answers}",
    )
    notes.expect("Traceback" not in proc.errors, f"a traceback on stderr:\n{proc.errors}")
    rows = [
        r for r in decision_rows(paths.audit_db) if r["decided_by"] == "shutdown" and r["decision"] == "deny"
    ]
    notes.expect(len(rows) == waiting, f"{len(rows)} shutdown rows for {waiting} waiting calls")
    return report(
        "desktop-sigterm",
        notes,
        faults=1,
        calls=waiting,
        call_logs=[call_log],
        audit_db=paths.audit_db,
        denied=len(results),
    )
