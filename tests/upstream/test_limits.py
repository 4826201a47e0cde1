"""A message longer than the limit ends only the offending upstream's connection, and says why."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.upstream.limits import BoundedTransport, MessageTooLong, message_too_long
from approver.upstream.status import UpstreamState

ALLOW_ALL = {"version": "1", "default": "allow"}
WAIT = 60.0
MIB = 1024 * 1024


def hostile(*flags: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "approver.testing.hostile_server", *flags]}


def test_a_line_without_end_drops_only_that_upstreams_connection_and_says_why(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"h": hostile("--wire"), "test": upstream_entry()}, ALLOW_ALL)

    async def body() -> None:
        with anyio.fail_after(WAIT):
            async with running_service(paths) as service:
                token = service.tokens.get_or_create("agent")
                async with legacy_client(service.url, token) as session:
                    flooded = await session.call_tool("h__long_line", {})
                    await service.upstreams["h"].wait_for_state(UpstreamState.RESTARTING)
                    status = service.upstreams["h"].status()
                    other = await session.call_tool("test__echo", {"text": "unharmed"})
                assert flooded.is_error and "stopped during the call" in str(flooded.content)
                assert status.error == message_too_long()
                assert "more than 16 MiB without a line break" in status.error
                assert not other.is_error

    anyio.run(body)


@pytest.fixture
def streaming_server() -> Iterator[str]:
    """An HTTP server whose ``/unbroken`` sends 3 MiB without a line break and ``/lines`` 3 MiB in lines."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            line = b"x" * (100 * 1024) + (b"\n" if self.path == "/lines" else b"")
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            for _ in range(30):
                self.wfile.write(line)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.anyio
async def test_an_http_response_without_a_line_break_past_the_limit_is_cut_off(streaming_server: str) -> None:
    transport = BoundedTransport(limit=1 * MIB)
    async with httpx2.AsyncClient(transport=transport) as client:
        with anyio.fail_after(WAIT):
            lines = await client.get(f"{streaming_server}/lines")
            with pytest.raises(MessageTooLong, match="more than 1 MiB without a line break"):
                await client.get(f"{streaming_server}/unbroken")

    assert len(lines.content) == 30 * (100 * 1024 + 1)
    assert transport.failure == message_too_long(1 * MIB)
