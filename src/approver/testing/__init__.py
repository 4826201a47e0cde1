"""Reusable test helpers: launch the package's own small real MCP server (see ``server.py``)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio
import anyio.abc

SERVER_MODULE: Final = "approver.testing.server"
"""The module that ``python -m`` runs to start the test server."""

READY_PREFIX: Final = "LISTENING "
"""Start of the stderr line the HTTP server prints once its port accepts connections."""


def server_command(
    name: str = "test", transport: str = "stdio", port: int | None = None, *, tools_file: Path | None = None
) -> list[str]:
    """The argv that starts the test server with this interpreter.

    ``port`` only matters for ``transport="http"``; leave it ``None`` (or 0) to let the server
    pick a free port and announce it as ``LISTENING <port>`` on stderr.
    """
    argv = [sys.executable, "-m", SERVER_MODULE, "--transport", transport, "--name", name]
    if port is not None:
        argv += ["--port", str(port)]
    if tools_file is not None:
        argv += ["--tools-file", str(tools_file)]
    return argv


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (another process may take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class HttpTestServer:
    """A running HTTP test server subprocess."""

    __test__ = False  # a helper, not a pytest test class

    url: str
    """The Streamable HTTP endpoint, ``http://127.0.0.1:<port>/mcp``."""
    port: int
    process: anyio.abc.Process
    """The server process, e.g. to read its ``returncode`` after the ``crash`` tool."""


async def _read_port(stream: anyio.abc.ByteReceiveStream) -> int:
    buffer = b""
    while True:
        buffer += await stream.receive()
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").strip()
            if text.startswith(READY_PREFIX):
                return int(text.removeprefix(READY_PREFIX))


async def _drain(stream: anyio.abc.ByteReceiveStream) -> None:
    """Keep reading so the server never blocks on a full stderr pipe."""
    try:
        async for _ in stream:
            pass
    except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
        pass


@asynccontextmanager
async def http_test_server(
    name: str = "test", *, tools_file: Path | None = None, ready_timeout: float = 30.0
) -> AsyncIterator[HttpTestServer]:
    """Start the test server over HTTP on a free port; stop it on exit.

    Waits for the server's ``LISTENING <port>`` line (at most ``ready_timeout`` seconds), so the
    URL accepts connections as soon as this yields. Enter and exit it in the same task.
    """
    argv = server_command(name, "http", 0, tools_file=tools_file)
    process = await anyio.open_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        assert process.stderr is not None
        with anyio.fail_after(ready_timeout):
            port = await _read_port(process.stderr)
        async with anyio.create_task_group() as group:
            group.start_soon(_drain, process.stderr)
            yield HttpTestServer(url=f"http://127.0.0.1:{port}/mcp", port=port, process=process)
            group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.terminate()
                with anyio.move_on_after(5):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()
