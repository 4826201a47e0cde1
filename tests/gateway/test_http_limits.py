"""The HTTP server's limits, attacked with real sockets against a real gateway.

Half-sent requests, endless header lines and a flood of connections must not hold the gateway's
connections or memory, and must not keep a real client from its calls.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from approver.gateway.http_limits import HttpLimits
from approver.service import Service
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

WAIT = 60.0
LIMITS = HttpLimits(header_timeout=1.0, body_timeout=1.0, max_connections=64)
"""Small enough for a quick test; the defaults are in docs/RELIABILITY.md."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    paths = write_config(
        tmp_path_factory.mktemp("http"), {"test": upstream_entry()}, {"version": "1", "default": "allow"}
    )
    async with running_service(paths, http_limits=LIMITS) as running:
        yield running


@asynccontextmanager
async def half_sent(port: int, count: int) -> AsyncIterator[list[socket.socket]]:
    """``count`` connections that each send the start of a request and then nothing.

    They connect from a worker thread: the gateway runs on this event loop, and must accept them.
    """

    def connect() -> list[socket.socket]:
        sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            sockets.append(sock)
        return sockets

    sockets = await anyio.to_thread.run_sync(connect)
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


async def read_all(sock: socket.socket) -> bytes:
    """What the server sends on ``sock`` until it closes it."""

    def receive() -> bytes:
        sock.settimeout(WAIT)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass  # closed before it read all we sent: closed all the same
        return b"".join(chunks)

    return await anyio.to_thread.run_sync(receive)


async def test_a_request_whose_headers_never_finish_gets_408_and_its_connection_closed(
    service: Service,
) -> None:
    async with half_sent(service.port, 1) as [sock]:
        with anyio.fail_after(WAIT):
            answer = await read_all(sock)

    assert answer.startswith(b"HTTP/1.1 408 ")
    message = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["message"]
    assert message == "no complete request headers within 1 s: approver closed the connection"


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(service: Service) -> None:
    with socket.create_connection(("127.0.0.1", service.port)) as sock, anyio.fail_after(WAIT):
        assert (await read_all(sock)).startswith(b"HTTP/1.1 408 ")


async def test_endless_header_lines_get_431_once_past_the_limit_and_are_not_kept(service: Service) -> None:
    line = b"X-Padding: " + b"p" * 1000 + b"\r\n"
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sent = 0

        def flood() -> int:
            nonlocal sent
            try:
                while sent < 300 * 1024 * 1024:
                    sock.sendall(line * 64)
                    sent += len(line) * 64
            except OSError:
                pass  # the gateway closed the connection
            return sent

        with anyio.fail_after(WAIT):
            await anyio.to_thread.run_sync(flood)
            answer = await read_all(sock)

    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"request headers over 64 KiB" in answer
    assert sent < 8 * 1024 * 1024  # refused after the first 64 KiB, not after 300 MiB


async def test_a_flood_of_half_sent_requests_holds_no_more_than_the_cap_and_a_real_call_gets_through(
    service: Service,
) -> None:
    token = service.tokens.get_or_create("real")
    with anyio.fail_after(WAIT):
        async with half_sent(service.port, 200) as attackers:
            async with legacy_client(service.url, token) as session:
                assert service.open_connections <= LIMITS.max_connections
                result = await session.call_tool("test__echo", {"text": "through"})
            answers = [(await read_all(sock))[:13] for sock in attackers]

    assert not result.is_error
    # The oldest half-sent requests made room for newer connections (a 503, or a reset when it
    # had not read them yet), the rest timed out: every one of them was closed.
    assert set(answers) <= {b"HTTP/1.1 503 ", b"HTTP/1.1 408 ", b""}
    assert len(answers) - answers.count(b"HTTP/1.1 408 ") >= 200 - LIMITS.max_connections


async def test_a_body_that_stops_arriving_closes_the_connection(service: Service) -> None:
    token = service.tokens.get_or_create("slow")
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        with anyio.fail_after(WAIT):
            answer = await read_all(sock)
    assert b" 200 " not in answer.partition(b"\r\n")[0]


def test_the_default_limits_are_what_the_docs_say() -> None:
    limits = HttpLimits()
    assert (limits.max_header_bytes, limits.header_timeout, limits.body_timeout, limits.max_connections) == (
        64 * 1024,
        10.0,
        30.0,
        256,
    )


async def test_the_connection_cap_is_half_the_file_limit_when_that_is_lower(tmp_path: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (200, hard))
    try:
        assert HttpLimits().connection_cap() == 100
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
