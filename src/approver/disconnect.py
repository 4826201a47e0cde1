"""Notice when an HTTP client goes away before it has its answer.

A call held for approval must be withdrawn as soon as the agent that made it is gone: the
dialog closes, and the call is recorded as cancelled instead of waiting out its timeout. A
client that is killed, or whose connection drops, sends no ``notifications/cancelled``; the
only sign is the ASGI server's ``http.disconnect`` message. The MCP SDK reads that message only
while it streams a response, and never tells a running handler, so the front door wraps each
request's ``receive`` and ``send`` here and hands the handler an event to wait on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

from starlette.types import Message, Receive, Send

GONE_SCOPE_KEY: Final = "approver.gone"
"""Where the front door puts a request's :class:`asyncio.Event` that is set when its client goes away."""


class DisconnectWatch:
    """Wraps one HTTP request's ``receive`` and ``send``; ``gone`` is set when the client leaves.

    Once the request body has been read, a watcher task waits for the server's next message,
    which can only be ``http.disconnect``. It means the client left if the response had not been
    completely sent by then. Later ``receive`` calls by the app get that same message.
    """

    def __init__(self, receive: Receive, send: Send) -> None:
        self.gone = asyncio.Event()
        self._receive = receive
        self._send = send
        self._responded = False
        self._watcher: asyncio.Task[Message] | None = None

    async def receive(self) -> Message:
        """The app's ``receive``: the request body, then (shared) the disconnect."""
        if self._watcher is not None:
            return await asyncio.shield(self._watcher)
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self._note_disconnect()
        elif message["type"] == "http.request" and not message.get("more_body", False):
            self._watcher = asyncio.create_task(self._watch(), name="approver-disconnect-watch")
        return message

    async def send(self, message: Message) -> None:
        """The app's ``send``; notes when the response is complete."""
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._responded = True
        await self._send(message)

    def close(self) -> None:
        """Stop watching: the app has returned."""
        if self._watcher is None:
            return
        if not self._watcher.done():
            self._watcher.cancel()
        elif not self._watcher.cancelled():
            self._watcher.exception()  # retrieved: a failed receive was the app's to report

    async def _watch(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self._note_disconnect()
        return message

    def _note_disconnect(self) -> None:
        if not self._responded:
            self.gone.set()


def client_gone(scope: Mapping[str, Any] | None) -> asyncio.Event | None:
    """The event set when the client of the request with ``scope`` goes away, if it is watched."""
    if scope is None:
        return None
    event = scope.get(GONE_SCOPE_KEY)
    return event if isinstance(event, asyncio.Event) else None
