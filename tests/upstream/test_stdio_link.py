"""The pipes to a stdio upstream: lines to messages, claimed lines, environment and shutdown."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import anyio
import mcp.types as types
import pytest
from mcp import StdioServerParameters
from mcp.shared.message import SessionMessage

from approver.upstream.stdio_link import LinkClosed, open_stdio_link

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="approver uses the SDK's stdio_client on Windows"),
]

TIMEOUT = 30

# Answers each request line with a garbage line, a blank line and then a response with its id.
ANSWERING = """
import json, sys
for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.write("not json\\n\\n")
    answer = {"jsonrpc": "2.0", "id": request["id"], "result": {"n": request["id"]}}
    sys.stdout.write(json.dumps(answer) + "\\n")
    sys.stdout.flush()
"""


@pytest.fixture
def errlog(tmp_path: Path) -> Iterator[TextIO]:
    with open(tmp_path / "stderr.log", "w") as handle:
        yield handle


def params(script: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-c", script], env=env)


def request(request_id: int | str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping"}).encode() + b"\n"


async def test_unreadable_lines_reach_the_session_as_errors_and_the_next_message_still_arrives(
    errlog: TextIO,
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with open_stdio_link(params(ANSWERING), errlog) as link:
            await link.write.send(SessionMessage(types.JSONRPCRequest(jsonrpc="2.0", id=1, method="ping")))
            first = await link.read.receive()
            second = await link.read.receive()
    assert isinstance(first, ValueError) and "unreadable line" in str(first)
    assert isinstance(second, SessionMessage) and isinstance(second.message, types.JSONRPCResponse)
    assert second.message.id == 1 and second.message.result == {"n": 1}


async def test_a_claimed_message_never_reaches_the_session(errlog: TextIO) -> None:
    claimed: list[dict[str, Any]] = []

    def claim(message: dict[str, Any]) -> bool:
        if message.get("id") == "mine":
            claimed.append(message)
            return True
        return False

    with anyio.fail_after(TIMEOUT):
        async with open_stdio_link(params(ANSWERING), errlog) as link:
            link.claim = claim
            await link.send_line(request("mine"))
            await link.send_line(request(2))
            seen = [await link.read.receive() for _ in range(3)]  # garbage, garbage, response 2
    assert claimed == [{"jsonrpc": "2.0", "id": "mine", "result": {"n": "mine"}}]
    responses = [item.message for item in seen if isinstance(item, SessionMessage)]
    assert len(responses) == 1 and isinstance(responses[0], types.JSONRPCResponse) and responses[0].id == 2


async def test_the_server_gets_the_default_environment_plus_its_configured_variables(errlog: TextIO) -> None:
    script = (
        "import json, os; print(json.dumps({'jsonrpc': '2.0', 'method': 'env', 'params': dict(os.environ)}))"
    )
    os.environ["APPROVER_TEST_NOT_INHERITED"] = "secret"
    try:
        with anyio.fail_after(TIMEOUT):
            async with open_stdio_link(params(script, {"GIVEN": "1"}), errlog) as link:
                item = await link.read.receive()
    finally:
        del os.environ["APPROVER_TEST_NOT_INHERITED"]
    assert isinstance(item, SessionMessage) and isinstance(item.message, types.JSONRPCNotification)
    env = item.message.params or {}
    assert env["GIVEN"] == "1" and env["PATH"] == os.environ["PATH"]
    assert "APPROVER_TEST_NOT_INHERITED" not in env


async def test_a_server_that_exits_ends_the_session_stream_and_sends_fail_as_closed(errlog: TextIO) -> None:
    with anyio.fail_after(TIMEOUT):
        async with open_stdio_link(params("import sys; sys.exit(0)"), errlog) as link:
            with pytest.raises(anyio.EndOfStream):
                await link.read.receive()
            await link.process.wait()
            with pytest.raises(LinkClosed):
                for _ in range(100):  # the first writes may still fit in the pipe's buffer
                    await link.send_line(request(1))


async def test_a_server_that_ignores_its_closed_stdin_is_ended_with_its_whole_process_group(
    tmp_path: Path, errlog: TextIO
) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open({str(pid_file)!r}, "w").write(str(child.pid))
print('{{"jsonrpc": "2.0", "method": "ready"}}', flush=True)
time.sleep(600)
"""
    with anyio.fail_after(TIMEOUT):
        async with open_stdio_link(params(script), errlog) as link:
            await link.read.receive()  # the child is running
            server = link.process
    assert server.returncode is not None
    child = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


async def test_a_long_line_in_many_chunks_and_several_lines_in_one_arrive_whole(errlog: TextIO) -> None:
    script = """
import json, sys
big = json.dumps({"jsonrpc": "2.0", "method": "big", "params": {"text": "x" * 3_000_000}})
small = json.dumps({"jsonrpc": "2.0", "method": "small"})
sys.stdout.write(big + "\\n" + small + "\\n" + small + "\\n")
sys.stdout.flush()
"""
    with anyio.fail_after(TIMEOUT):
        async with open_stdio_link(params(script), errlog) as link:
            items = [await link.read.receive() for _ in range(3)]
    notes = [item.message for item in items if isinstance(item, SessionMessage)]
    assert all(isinstance(note, types.JSONRPCNotification) for note in notes)
    assert [getattr(note, "method", None) for note in notes] == ["big", "small", "small"]
    assert getattr(notes[0], "params", None) == {"text": "x" * 3_000_000}
