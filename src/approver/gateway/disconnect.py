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

from starlette.types import Message, Receive, Send


class DisconnectWatch:
    """Wraps one HTTP request's ``receive`` and ``send``; ``gone`` is set when the client leaves.

    After the request body, the server's next message can only be ``http.disconnect``. It means
    the client left if the response had not been completely sent by then. Most requests never
    need to know, so nothing waits for that message until someone does: the app's own
    ``receive`` calls (an SSE response listens for the disconnect) pass it through and note it,
    and only :meth:`watch`, while the app is not receiving, starts a task that waits for it.
    Later ``receive`` calls by the app then share that task's message.
    """

    def __init__(self, receive: Receive, send: Send) -> None:
        self.gone = asyncio.Event()
        self._receive = receive
        self._send = send
        self._body_read = False
        self._responded = False
        self._wanted = False
        self._receiving = 0
        """How many of the app's ``receive`` calls after the body are waiting now."""
        self._watcher: asyncio.Task[Message] | None = None

    def watch(self) -> asyncio.Event:
        """Watch for the client leaving from now on; returns :attr:`gone`."""
        self._wanted = True
        self._start_watcher()
        return self.gone

    async def receive(self) -> Message:
        """The app's ``receive``: the request body, then the disconnect (shared with the watcher)."""
        if self._watcher is not None:
            return await asyncio.shield(self._watcher)
        if not self._body_read:
            message = await self._receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                self._body_read = True
                self._start_watcher()
            elif message["type"] == "http.disconnect":
                self._note_disconnect()
            return message
        self._receiving += 1
        try:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._note_disconnect()
        finally:
            self._receiving -= 1
            self._start_watcher()  # the app stopped listening early: keep a wanted watch alive
        return message

    async def send(self, message: Message) -> None:
        """The app's ``send``; notes when the response is complete."""
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._responded = True
        await self._send(message)

    def close(self) -> None:
        """Stop watching: the app has returned."""
        self._wanted = False
        if self._watcher is None:
            return
        if not self._watcher.done():
            self._watcher.cancel()
        elif not self._watcher.cancelled():
            self._watcher.exception()  # retrieved: a failed receive was the app's to report

    def _start_watcher(self) -> None:
        if (
            self._wanted
            and self._body_read
            and self._receiving == 0
            and self._watcher is None
            and not self.gone.is_set()
            and not self._responded
        ):
            self._watcher = asyncio.create_task(self._watch(), name="approver-disconnect-watch")

    async def _watch(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self._note_disconnect()
        return message

    def _note_disconnect(self) -> None:
        if not self._responded:
            self.gone.set()
