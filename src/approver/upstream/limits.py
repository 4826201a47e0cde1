"""Limits on what an upstream server may send: one message, and one listing of its tools.

An upstream is a program approver runs or a URL it is given, and it may misbehave: a line that
never ends grew approver's memory by 1.5 GiB, and a ``nextCursor`` that never ends kept a
listing going forever. Past a limit approver drops that upstream's connection, or stops that
listing, logs why and shows it as the server's error; other upstreams and every client carry on.

:class:`BoundedTransport` holds an HTTP upstream's responses to :data:`MAX_MESSAGE_BYTES`
between line breaks (a JSON response is one line; an event stream has a line break after each
field), as :mod:`approver.upstream.stdio_link` does for a stdio server's output.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Final

import httpx2

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""The longest message (line) an upstream may send: 16 MiB, four times the largest request a
client may send, room for a tool result of about 12 MB of base64."""

MAX_LIST_PAGES: Final = 1_000
"""Pages one listing (``tools/list``, ``resources/list``, ...) may take before approver stops asking."""

MAX_LIST_ITEMS: Final = 20_000
"""Tools (or resources, templates, prompts) one listing may hold; approver keeps the first ones."""


def message_too_long(limit: int = MAX_MESSAGE_BYTES) -> str:
    """Why a connection was dropped after a message longer than ``limit`` bytes."""
    return (
        f"the server sent a message of more than {limit // (1024 * 1024)} MiB without a line break; "
        "approver dropped the connection (limit: MAX_MESSAGE_BYTES)"
    )


class MessageTooLong(httpx2.ReadError):
    """An HTTP upstream's response ran past :data:`MAX_MESSAGE_BYTES` without a line break."""


class BoundedTransport(httpx2.AsyncBaseTransport):
    """An HTTP transport whose responses fail with :class:`MessageTooLong` past the message limit.

    :attr:`failure` keeps the last such failure, for the upstream's status.
    """

    def __init__(
        self, inner: httpx2.AsyncBaseTransport | None = None, limit: int = MAX_MESSAGE_BYTES
    ) -> None:
        self._inner = inner if inner is not None else httpx2.AsyncHTTPTransport()
        self.limit = limit
        self.failure: str | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        response.stream = _BoundedStream(stream, self, request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _BoundedStream(httpx2.AsyncByteStream):
    def __init__(
        self, stream: httpx2.AsyncByteStream, transport: BoundedTransport, request: httpx2.Request
    ) -> None:
        self._stream = stream
        self._transport = transport
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        unbroken = 0
        async for chunk in self._stream:
            newline = chunk.rfind(b"\n")
            unbroken = len(chunk) - newline - 1 if newline >= 0 else unbroken + len(chunk)
            if unbroken > self._transport.limit:
                failure = message_too_long(self._transport.limit)
                self._transport.failure = failure
                logger.warning("the HTTP upstream at %s: %s", self._request.url.host, failure)
                raise MessageTooLong(failure, request=self._request)
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()
