"""The redirect listener of RFC 8252 section 7.3: one authorization answer on 127.0.0.1, then closed.

The browser comes back to ``http://127.0.0.1:PORT/callback?code=...&state=...``; the listener
answers with a short page telling the person to go back to approver, and hands the code and
state to the sign-in flow, which checks the state. Anything else (a favicon request, another
path) gets a 404 and is otherwise ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from types import TracebackType
from typing import Final
from urllib.parse import parse_qs, urlsplit

from mcp.client.auth import OAuthFlowError
from mcp.shared.auth import AuthorizationCodeResult

CALLBACK_PATH: Final = "/callback"
"""The path of the redirect URI."""
HOST: Final = "127.0.0.1"
"""Never ``localhost``: a name can resolve elsewhere, the address cannot (RFC 8252 section 8.3)."""
_READ_LIMIT: Final = 16 * 1024
_READ_TIMEOUT: Final = 10.0


class LoopbackListener:
    """``async with LoopbackListener(port) as listener``: send ``listener.redirect_uri``, await ``result()``.

    ``port`` 0 picks a free port. The listener takes one authorization answer (a code, or an
    ``error``) and stops listening when the block ends.
    """

    def __init__(self, port: int = 0, server_name: str = "the server") -> None:
        self._port = port
        self._server_name = server_name
        self._server: asyncio.Server | None = None
        self._answer: asyncio.Future[AuthorizationCodeResult] | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._server is not None, "use the listener inside 'async with'"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def redirect_uri(self) -> str:
        """The redirect URI to register and send."""
        return f"http://{HOST}:{self.port}{CALLBACK_PATH}"

    async def __aenter__(self) -> LoopbackListener:
        self._answer = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._serve, HOST, self._port)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()

    async def result(self) -> AuthorizationCodeResult:
        """Wait for the browser's answer; raises OAuthFlowError when the server sent an error."""
        assert self._answer is not None, "use the listener inside 'async with'"
        return await asyncio.shield(self._answer)

    def deliver(self, url: str) -> None:
        """Take the answer from a redirect URL pasted by a person (when the browser is elsewhere)."""
        self._settle(urlsplit(url.strip()).query)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        request_line = head[:_READ_LIMIT].split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        target = urlsplit(parts[1]) if len(parts) == 3 else None
        if target is None or parts[0] != "GET" or target.path != CALLBACK_PATH:
            await _respond(writer, 404, "Not found.")
            return
        settled = self._settle(target.query)
        if settled is None:
            await _respond(writer, 200, f"Signed in to {self._server_name}. You can close this tab.")
        else:
            await _respond(writer, 400, settled)

    def _settle(self, query: str) -> str | None:
        """Resolve the answer from a callback query; returns an error text for the page, or None."""
        assert self._answer is not None
        values = {key: items[0] for key, items in parse_qs(query).items() if items}
        if self._answer.done():
            return "This sign-in was already answered; start it again from approver."
        if "error" in values:
            reason = values["error"] + (
                f": {values['error_description']}" if "error_description" in values else ""
            )
            self._answer.set_exception(
                OAuthFlowError(f"the authorization server refused the sign-in ({reason})")
            )
            return f"Sign-in failed: {reason}"
        if "code" not in values:
            return "This address has no authorization code."
        self._answer.set_result(
            AuthorizationCodeResult(code=values["code"], state=values.get("state"), iss=values.get("iss"))
        )
        return None


async def _respond(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    body = (
        "<!doctype html><meta charset=utf-8><title>approver</title>"
        f"<p style='font-family:sans-serif'>{html.escape(text)}</p>"
    ).encode()
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()
