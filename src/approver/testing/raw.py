"""Plain-HTTP MCP clients, for tests that need to see the wire or forge what a client sends.

:class:`RawSession` drives a 2025-11-25 session request by request; :func:`post_modern` sends
one 2026-07-28 request with whatever extra headers a test wants (a borrowed session id, say).
"""

from __future__ import annotations

import json
from typing import Any, Final

import httpx2

from approver.testing.fuzz_cases import MODERN, request, routing

ACCEPT: Final = "application/json, text/event-stream"
"""The Accept header an MCP client sends."""


class RawSession:
    """A 2025-11-25 session driven with plain HTTP requests, to see the wire itself."""

    def __init__(self, http: httpx2.AsyncClient, url: str, token: str) -> None:
        self.http = http
        self.url = url
        self.headers = {
            "authorization": f"Bearer {token}",
            "accept": ACCEPT,
            "content-type": "application/json",
        }

    @property
    def session_id(self) -> str:
        """The session's ``Mcp-Session-Id`` (after :meth:`open`)."""
        return self.headers["mcp-session-id"]

    async def open(self, list_tools: bool = True) -> None:
        """Initialize the session (and list tools, as clients do before calling)."""
        initialize = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        }
        response = await self.http.post(self.url, json=initialize, headers=self.headers)
        assert response.status_code == 200, response.text
        self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        self.headers["mcp-protocol-version"] = "2025-11-25"
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await self.post_json(initialized)).status_code == 202
        if list_tools:  # it also registers the session for notifications
            listed = await self.post_json({"jsonrpc": "2.0", "id": "list", "method": "tools/list"})
            assert listed.status_code == 200, listed.text

    async def post_json(self, message: Any, **headers: str) -> httpx2.Response:
        """POST one JSON-RPC message in this session."""
        return await self.http.post(self.url, content=json.dumps(message), headers=self.headers | headers)

    async def post_raw(self, body: bytes, **headers: str) -> httpx2.Response:
        """POST raw bytes in this session."""
        return await self.http.post(self.url, content=body, headers=self.headers | headers)


async def post_modern(
    http: httpx2.AsyncClient,
    url: str,
    token: str,
    method: str,
    params: dict[str, Any] | None,
    *,
    name: str | None = None,
    request_id: int = 1,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    """POST one 2026-07-28 request (``_meta`` and routing headers included) plus ``headers``."""
    sent = {
        "authorization": f"Bearer {token}",
        "accept": ACCEPT,
        "content-type": "application/json",
        **routing(method, name),
        **(headers or {}),
    }
    body = json.dumps(request(method, params, request_id, MODERN))
    return await http.post(url, content=body, headers=sent)


def sse_messages(body: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE response body."""
    return [json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")]


def answer_of(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC answer (the last message with an id and a result or error) of a response."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        messages = sse_messages(response.text)
    else:
        messages = [response.json()]
    answers = [m for m in messages if "result" in m or "error" in m]
    assert answers, response.text
    return answers[-1]
