"""The pipes to a stdio upstream server, with a way for tool calls to skip the SDK's session.

The SDK's ``stdio_client`` turns every line the server writes into a pydantic model and hands it
through two task hops to the client session, and every message the session sends through one
more. For a tool call that is most of the time approver spends on its side of the upstream round
trip. :func:`open_stdio_link` runs the server as ``stdio_client`` does (the same inherited
environment, its own process group, the same shutdown: close stdin, wait, then end the process
group) and gives the session the same pair of message streams, but reads the server's output
itself: each line is parsed once, offered to :attr:`StdioLink.claim` (the tool lane's answers
and progress stop there) and only otherwise validated and passed to the session.
:meth:`StdioLink.send_line` writes a line straight to the server's stdin.

POSIX only: on Windows, :mod:`approver.upstream.connection` keeps the SDK's ``stdio_client``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import anyio
import anyio.abc
import mcp.types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import StdioServerParameters
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage

from approver.upstream.limits import MAX_MESSAGE_BYTES, message_too_long

logger = logging.getLogger(__name__)

EXIT_GRACE: Final = 2.0
"""Seconds the server gets to exit on its own once its stdin is closed, as with the SDK."""
KILL_GRACE: Final = 2.0
"""Seconds between SIGTERM and SIGKILL to the server's process group."""
FLUSH_TIMEOUT: Final = 0.5
"""Seconds the writer gets to send messages already accepted before stdin closes."""
_EXIT_POLL: Final = 0.01

_PIPE_GONE: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class LinkClosed(Exception):
    """The server's stdin is closed: nothing more can be sent to it."""


@dataclass(eq=False)
class StdioLink:
    """A running stdio server: message streams for the SDK's session, and raw lines."""

    process: anyio.abc.Process
    read: MemoryObjectReceiveStream[SessionMessage | Exception]
    """What the server sends, for the session (less what :attr:`claim` took)."""
    write: MemoryObjectSendStream[SessionMessage]
    """What the session sends."""
    claim: Callable[[dict[str, Any]], bool] | None = None
    """Offered every JSON object the server writes, first; returns True when it took it."""
    failure: str | None = None
    """Why approver ended the link, when the server broke a limit (a line too long)."""
    _closed: bool = field(default=False, init=False)

    async def send_line(self, line: bytes) -> None:
        """Write one message (a JSON text ending in a newline) to the server's stdin.

        Raises LinkClosed when the server's stdin is closed.
        """
        stdin = self.process.stdin
        if self._closed or stdin is None:
            raise LinkClosed("the upstream server's stdin is closed")
        try:
            await stdin.send(line)
        except _PIPE_GONE as exc:
            self._closed = True
            raise LinkClosed(f"the upstream server's stdin is closed ({exc})") from None

    def parse(self, line: bytes) -> SessionMessage | Exception | None:
        """One line from the server as a message for the session, an error, or None if claimed."""
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            return ValueError(f"unreadable line from the server: {exc}")
        if isinstance(data, dict) and self.claim is not None and self.claim(data):
            return None
        try:
            return SessionMessage(types.jsonrpc_message_adapter.validate_python(data, by_name=False))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            return exc


@asynccontextmanager
async def open_stdio_link(
    params: StdioServerParameters, errlog: TextIO, max_line: int = MAX_MESSAGE_BYTES
) -> AsyncIterator[StdioLink]:
    """Start the server and yield its link; on exit stop it, as the SDK's ``stdio_client`` does.

    A line longer than ``max_line`` bytes ends the link (the session's read stream closes, and
    :attr:`StdioLink.failure` says why) instead of growing without limit. Raises OSError when
    the server cannot be started.
    """
    process = await anyio.open_process(
        [params.command, *params.args],
        env=get_default_environment() | (params.env or {}),
        stderr=errlog,
        cwd=params.cwd,
        start_new_session=True,
    )
    # No awaits until the task group is entered: a cancellation in between would leak the process.
    to_session, read = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write, from_session = anyio.create_memory_object_stream[SessionMessage](0)
    link = StdioLink(process, read, write)
    writer_done = anyio.Event()

    async def reader() -> None:
        stdout = process.stdout
        assert stdout is not None
        try:
            async with to_session:
                # The chunks of a line not yet ended, joined once it ends: a long line (a large
                # result) is copied once, not once per chunk.
                parts: list[bytes] = []
                unbroken = 0
                with suppress(anyio.EndOfStream, *_PIPE_GONE):
                    while True:
                        chunk = await stdout.receive()
                        parts.append(chunk)
                        if b"\n" not in chunk:
                            unbroken += len(chunk)
                            if unbroken > max_line:
                                link.failure = message_too_long(max_line)
                                return
                            continue
                        *lines, rest = b"".join(parts).split(b"\n")
                        parts = [rest] if rest else []
                        unbroken = len(rest)
                        for line in lines:
                            if not line.strip():
                                continue
                            item = link.parse(line)
                            if item is not None:
                                await to_session.send(item)
        finally:
            # Keep reading until the pipe closes: a server blocked writing to a full pipe could
            # not see its stdin close, and would only end by the kill.
            with anyio.CancelScope(shield=True), suppress(anyio.EndOfStream, *_PIPE_GONE):
                while True:
                    await stdout.receive()

    async def writer() -> None:
        try:
            async with from_session:
                async for message in from_session:
                    text = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await link.send_line(text.encode() + b"\n")
        except LinkClosed:
            # The server may still run: end the session's read side so no request hangs.
            await to_session.aclose()
        finally:
            writer_done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        group.start_soon(writer)
        try:
            yield link
        finally:
            with anyio.CancelScope(shield=True):
                read.close()
                write.close()
                with anyio.move_on_after(FLUSH_TIMEOUT):
                    await writer_done.wait()
                await _stop(process)
            group.cancel_scope.cancel()


async def _stop(process: anyio.abc.Process) -> None:
    """Close stdin, give the server :data:`EXIT_GRACE`, then end its whole process group."""
    if process.stdin is not None:
        with suppress(*_PIPE_GONE):
            await process.stdin.aclose()
    if not await _exited(process, EXIT_GRACE):
        await terminate_posix_process_tree(process, KILL_GRACE)
        if not await _exited(process, KILL_GRACE):
            logger.warning("upstream server process %d is still alive after SIGKILL", process.pid)
    if process.stdout is not None:
        with suppress(*_PIPE_GONE):
            await process.stdout.aclose()  # a survivor may hold it open: this ends the reader
    _close_transport(process)


def _close_transport(process: anyio.abc.Process) -> None:
    # Not process.aclose(): it waits for the pipes, which a surviving child of the server may
    # hold open. The asyncio transport is closed directly instead (as the SDK does), else it
    # stays open, and warns, until garbage collection.
    transport = getattr(getattr(process, "_process", None), "_transport", None)
    close = getattr(transport, "close", None)
    if callable(close):
        with suppress(PermissionError):
            close()


async def _exited(process: anyio.abc.Process, grace: float) -> bool:
    # Polls returncode rather than process.wait(): on 3.11+ wait() also waits for the pipes to
    # close, and a child that inherited them makes an exited server look hung.
    with anyio.move_on_after(grace):
        while process.returncode is None:  # noqa: ASYNC110 - no event tells of the exit alone
            await anyio.sleep(_EXIT_POLL)
        return True
    return False
