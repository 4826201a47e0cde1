"""The clients of a load run: SDK clients over Streamable HTTP, and raw JSON-RPC through a bridge.

Each client connects, tells the start barrier, waits for everyone, then makes its calls one after
another. A call that raises anything but a JSON-RPC error ends its client: its remaining calls
count as lost. Second answers are counted: the SDK logs (at debug level) every response it drops
for an unknown or already answered request id, and the bridge client reads every line itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final, Protocol

import mcp.types as types
from mcp import Client
from mcp.shared.exceptions import MCPError

from approver.testing.harness import legacy_client
from approver.testing.load.calls import Answer, LoadCall

CONNECT_TIMEOUT: Final = 120.0
"""Seconds a client may take to connect (fifty bridge processes starting at once on two cores)."""

LEGACY_VERSION: Final = "2025-11-25"

_DISPATCHER_LOGGER: Final = "mcp.shared.jsonrpc_dispatcher"
_DROPPED: Final = ("dropping response for unknown/late request id", "waiter for request id")


class StartBarrier(Protocol):
    """What a client needs from the run's start barrier."""

    def arrive(self) -> None: ...

    async def wait(self) -> None: ...


class DuplicateAnswers(logging.Handler):
    """Counts answers that arrived for a request that was already answered (or never made)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith(_DROPPED):
            self.count += 1

    @contextlib.contextmanager
    def watching(self) -> Iterator[DuplicateAnswers]:
        """Listen to the SDK's dispatcher log while the block runs."""
        logger = logging.getLogger(_DISPATCHER_LOGGER)
        level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)


def _text(content: list[Any]) -> str:
    return "".join(block.text for block in content if isinstance(block, types.TextContent))


CallTool = Callable[[str, dict[str, Any]], Awaitable[types.CallToolResult]]


async def _calls(call_tool: CallTool, plan: list[LoadCall], call_timeout: float) -> None:
    for call in plan:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(call_timeout):
                result = await call_tool(call.exposed, call.arguments)
        except MCPError as exc:
            call.failed(f"JSON-RPC error {exc.error.code}: {exc.error.message}")
            continue
        answer = Answer(result.is_error, _text(result.content), result.structured_content)
        call.answered(answer, time.perf_counter() - started)


async def run_http_client(
    url: str, token: str, plan: list[LoadCall], barrier: StartBarrier, call_timeout: float, *, modern: bool
) -> None:
    """One client over Streamable HTTP: ``modern`` is a 2026-07-28 ``mcp.Client`` with the token in
    its URL, otherwise a 2025-11-25 ``ClientSession`` sending it as a bearer header."""
    if modern:
        async with Client(url.removesuffix("/mcp") + f"/t/{token}/mcp") as client:
            barrier.arrive()
            await barrier.wait()
            await _calls(client.call_tool, plan, call_timeout)
        return
    async with legacy_client(url, token) as session:
        barrier.arrive()
        await barrier.wait()
        await _calls(session.call_tool, plan, call_timeout)


async def run_bridge_client(
    argv: list[str],
    env: dict[str, str],
    log_path: Path,
    plan: list[LoadCall],
    barrier: StartBarrier,
    call_timeout: float,
    duplicates: DuplicateAnswers,
) -> None:
    """One stdio client: runs ``argv`` (``approver connect``) and speaks JSON lines to it directly,
    so every line it prints is seen, including any second answer to a request."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, limit=1 << 22
        )
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout
    waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
    calls = {index + 1: call for index, call in enumerate(plan)}

    async def read() -> None:
        while line := await stdout.readline():
            message = json.loads(line)
            request_id = message.get("id")
            if "method" in message or not isinstance(request_id, int):
                continue  # notifications and requests from the gateway: none are expected here
            future = waiting.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(message)
            elif request_id in calls:
                calls[request_id].answers += 1
            else:
                duplicates.count += 1

    async def request(request_id: int, method: str, params: dict[str, Any], bound: float) -> dict[str, Any]:
        future = waiting[request_id] = asyncio.get_running_loop().create_future()
        line = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        stdin.write(json.dumps(line).encode() + b"\n")
        await stdin.drain()
        async with asyncio.timeout(bound):
            reply: dict[str, Any] = await future
        return reply

    reader = asyncio.create_task(read())
    try:
        hello = {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "load", "version": "1"},
        }
        reply = await request(0, "initialize", hello, CONNECT_TIMEOUT)
        if "result" not in reply:
            raise RuntimeError(f"initialize failed: {reply.get('error')}")
        stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        barrier.arrive()
        await barrier.wait()
        for request_id, call in calls.items():
            started = time.perf_counter()
            params = {"name": call.exposed, "arguments": call.arguments}
            message = await request(request_id, "tools/call", params, call_timeout)
            if "error" in message:
                error = message["error"]
                call.failed(f"JSON-RPC error {error.get('code')}: {error.get('message')}")
                continue
            result = message["result"]
            content = result.get("content", [])
            blocks = [block.get("text", "") for block in content if block.get("type") == "text"]
            answer = Answer(bool(result.get("isError")), "".join(blocks), result.get("structuredContent"))
            call.answered(answer, time.perf_counter() - started)
        stdin.close()
        # Read to the end: a late second answer still counts.
        async with asyncio.timeout(30):
            await reader
            await process.wait()
    finally:
        reader.cancel()
        if process.returncode is None:
            process.kill()
            await process.wait()
