"""Tool calls that skip the SDK's client session: same answers, progress, cancellation and errors."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from approver.config.servers import ServerConfig
from approver.testing import http_test_server
from approver.testing.server_tools import SLOW_CANCELLED
from approver.upstream.connection import Upstream, UpstreamHooks
from approver.upstream.lane import ID_PREFIX, ToolLane, lane_suits
from approver.upstream.status import UpstreamState
from approver.upstream.stdio_link import LinkClosed

pytestmark = pytest.mark.anyio

TIMEOUT = 30
HOSTILE_MODULE = "approver.testing.hostile_server"


def stdio_config(module: str = "approver.testing.server") -> ServerConfig:
    return ServerConfig(name="test", transport="stdio", command=sys.executable, args=("-m", module))


@asynccontextmanager
async def connected(
    config: ServerConfig, tmp_path: Path, hooks: UpstreamHooks | None = None
) -> AsyncIterator[Upstream]:
    upstream = Upstream(config, tmp_path, hooks)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(upstream.run)
            await upstream.wait_for_state(UpstreamState.READY)
            yield upstream
            upstream.stop()


async def test_a_call_to_a_stdio_upstream_takes_the_lane_and_keeps_structured_content(tmp_path: Path) -> None:
    async with connected(stdio_config(), tmp_path) as upstream:
        result = await upstream.call_tool("echo", b'{"text":"hi"}')
        failed = await upstream.call_tool("fail", b"{}")
    assert upstream.lane_calls == 2
    assert result.structured_content == {"text": "hi"} and not result.is_error
    assert failed.is_error and isinstance(failed.content[0], types.TextContent)


async def test_progress_of_a_lane_call_reaches_the_callback_in_order(tmp_path: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async with connected(stdio_config(), tmp_path) as upstream:
        result = await upstream.call_tool("slow", b'{"seconds":0.2}', progress)
    assert upstream.lane_calls == 1 and not result.is_error
    assert [value for value, _, _ in seen] == [1.0, 2.0, 3.0, 4.0]
    assert seen[0][1:] == (4.0, "step 1 of 4")


async def test_cancelling_a_lane_call_tells_the_upstream_to_stop(tmp_path: Path) -> None:
    stopped = anyio.Event()
    started = anyio.Event()

    async def notification(upstream: Upstream, message: types.ServerNotification) -> None:
        if isinstance(message, types.LoggingMessageNotification) and message.params.data == SLOW_CANCELLED:
            stopped.set()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    marker = tmp_path / "marker"
    async with connected(stdio_config(), tmp_path, UpstreamHooks(notification=notification)) as upstream:
        async with anyio.create_task_group() as group:
            scope = anyio.CancelScope()

            async def call() -> None:
                with scope:
                    arguments = json.dumps({"seconds": 20, "marker_file": str(marker)}).encode()
                    await upstream.call_tool("slow", arguments, progress)

            group.start_soon(call)
            await started.wait()
            scope.cancel()
        await stopped.wait()  # the server logs this only when its handler was cancelled
    assert marker.read_text("utf-8") == "cancelled"


async def test_a_json_rpc_error_from_the_upstream_raises_its_code_and_message(tmp_path: Path) -> None:
    async with connected(stdio_config(HOSTILE_MODULE), tmp_path) as upstream:
        with pytest.raises(MCPError) as raised:
            await upstream.call_tool("raise_error", b'{"text":"no such file"}')
        after = await upstream.call_tool("echo", b'{"text":"still here"}')
    assert raised.value.error.message == "no such file"
    assert upstream.lane_calls == 2 and not after.is_error


async def test_an_upstream_that_dies_during_a_lane_call_fails_it_as_a_closed_connection(
    tmp_path: Path,
) -> None:
    async with connected(stdio_config(), tmp_path) as upstream:
        with pytest.raises(MCPError) as raised:
            await upstream.call_tool("crash", b"{}")
    assert raised.value.error.code == types.CONNECTION_CLOSED


async def test_an_http_upstream_keeps_the_sdk_session(tmp_path: Path) -> None:
    async with http_test_server() as server:
        config = ServerConfig(name="test", transport="http", url=server.url)
        async with connected(config, tmp_path) as upstream:
            result = await upstream.call_tool("echo", b'{"text":"over http"}')
    assert result.structured_content == {"text": "over http"}
    assert upstream.lane_calls == 0


def test_only_2025_era_stdio_upstreams_get_a_lane() -> None:
    modern = sorted(MODERN_PROTOCOL_VERSIONS)[0]
    assert lane_suits("stdio", "2025-11-25") and lane_suits("stdio", "2024-11-05")
    assert not lane_suits("stdio", modern)
    assert not lane_suits("http", "2025-11-25")


def test_the_lane_takes_only_its_own_answers_and_drops_late_ones() -> None:
    lane = ToolLane(Wire().send_line)

    def response(request_id: str | int) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request_id, "result": {"content": []}}

    assert not lane.take(response(7))  # the SDK's own request
    assert not lane.take(response("someone-else-1"))
    assert lane.take(response(f"{ID_PREFIX}99"))  # a call given up on: taken, and nobody hears of it
    assert not lane.take({"jsonrpc": "2.0", "id": f"{ID_PREFIX}1", "method": "roots/list"})
    foreign = {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": 7, "progress": 1},
    }
    assert not lane.take(foreign)


class Wire:
    """The upstream side of a lane: the lines it was sent, and whether it is still open."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.arrived = anyio.Event()
        self.open = True

    async def send_line(self, line: bytes) -> None:
        if not self.open:
            raise LinkClosed("closed")
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        self.raw.append(line)
        self.lines.append(json.loads(line))
        self.arrived.set()


async def test_a_lane_request_carries_the_decided_argument_bytes_unchanged() -> None:
    wire = Wire()
    lane = ToolLane(wire.send_line)
    arguments = b'{"b":[1,2.50],"a":"\xc3\xa9\\u0000"}'  # as decided: key order, number spelling
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            results: list[types.CallToolResult] = []

            async def call() -> None:
                results.append(await lane.call_tool('say "hi"', arguments))

            group.start_soon(call)
            await wire.arrived.wait()
            request = wire.lines[0]
            answer = {"content": [{"type": "text", "text": "ok"}], "structuredContent": {"x": 1}}
            assert lane.take({"jsonrpc": "2.0", "id": request["id"], "result": answer})
    assert request["method"] == "tools/call" and request["params"]["name"] == 'say "hi"'
    assert request["params"]["arguments"] == {"b": [1, 2.5], "a": "\u00e9\u0000"}
    assert b'"arguments":' + arguments + b"}" in wire.raw[0]  # the very bytes, not re-encoded
    assert results[0].structured_content == {"x": 1} and lane.pending == 0


async def test_a_malformed_answer_is_an_error_not_a_result() -> None:
    wire = Wire()
    lane = ToolLane(wire.send_line)
    errors: list[Exception] = []
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:

            async def call() -> None:
                try:
                    await lane.call_tool("echo", b"{}")
                except Exception as exc:
                    errors.append(exc)

            for reply in ({"result": {"content": "not a list"}}, {"error": {"code": "x"}}):
                wire.arrived = anyio.Event()
                group.start_soon(call)
                await wire.arrived.wait()
                assert lane.take({"jsonrpc": "2.0", "id": wire.lines[-1]["id"], **reply})
    assert isinstance(errors[0], ValueError)  # pydantic's ValidationError: the gateway reports it
    assert isinstance(errors[1], MCPError) and "malformed error" in errors[1].error.message


async def test_a_closed_lane_fails_waiting_and_new_calls() -> None:
    wire = Wire()
    lane = ToolLane(wire.send_line)
    errors: list[MCPError] = []
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:

            async def call() -> None:
                with pytest.raises(MCPError) as raised:
                    await lane.call_tool("echo", b"{}")
                errors.append(raised.value)

            group.start_soon(call)
            await wire.arrived.wait()  # the request is on the wire
            assert wire.lines[0]["id"] == f"{ID_PREFIX}1" and lane.pending == 1
            lane.close()
        with pytest.raises(MCPError):
            await lane.call_tool("echo", b"{}")
    assert errors[0].error.code == types.CONNECTION_CLOSED and lane.pending == 0


async def test_a_send_to_a_closed_pipe_fails_as_a_closed_connection() -> None:
    wire = Wire()
    wire.open = False
    with pytest.raises(MCPError) as raised:
        await ToolLane(wire.send_line).call_tool("echo", b"{}")
    assert raised.value.error.code == types.CONNECTION_CLOSED
