"""A small real OAuth 2.1 authorization server in front of the MCP test server, for tests (loopback only).

Run it as ``python -m approver.testing.oauth_server [--port N] [--token-lifetime S] [--scope S]
[--step-up-scope S] [--events FILE]``. It prints ``LISTENING <port>`` on stderr once it accepts
connections, and serves on ``http://127.0.0.1:<port>``:

- ``/mcp``: the MCP test server (:mod:`approver.testing.server`), which answers 401 with
  ``WWW-Authenticate: Bearer resource_metadata=...`` without a valid access token, and 403
  ``insufficient_scope`` to a ``tools/call`` when ``--step-up-scope`` names a scope the token lacks;
- ``/.well-known/oauth-protected-resource/mcp`` (RFC 9728) and
  ``/.well-known/oauth-authorization-server`` (RFC 8414);
- ``/register`` (RFC 7591), ``/authorize`` (PKCE S256 required; it approves at once and
  redirects, as if a person had clicked "Allow"), ``/token`` (code and refresh grants; refresh
  tokens rotate);
- ``POST /test/expire`` ends every access token now, ``POST /test/revoke`` ends every grant.

Each step is appended as a JSON line to ``--events`` (``{"event": "authorize", ...}``) so a test
can see what a client did. Access tokens never appear there.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from approver.testing.server import build_server

LOOPBACK = "http://127.0.0.1:"
"""A pre-registered client may come back to any port on this (RFC 8252 section 7.3)."""


@dataclass
class _Grant:
    client_id: str
    scope: str
    refresh_token: str


@dataclass
class AuthState:
    """Everything the authorization server remembers; in memory only."""

    base: str
    token_lifetime: int
    scope: str
    step_up_scope: str | None
    events: Path | None
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, tuple[str, float]] = field(default_factory=dict)
    """access token -> (scope, expiry)."""
    grants: dict[str, _Grant] = field(default_factory=dict)
    """refresh token -> grant."""

    def record(self, event: str, **details: Any) -> None:
        """Append one event line to the events file."""
        if self.events is not None:
            with self.events.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"event": event, **details}) + "\n")

    def issue(self, client_id: str, scope: str, refresh: str | None = None) -> dict[str, Any]:
        """New tokens for ``client_id``; ``refresh`` is the refresh token they replace."""
        if refresh is not None:
            self.grants.pop(refresh, None)
        access = "at-" + secrets.token_urlsafe(24)
        new_refresh = "rt-" + secrets.token_urlsafe(24)
        self.access[access] = (scope, time.time() + self.token_lifetime)
        self.grants[new_refresh] = _Grant(client_id, scope, new_refresh)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "refresh_token": new_refresh,
        }
        if scope:
            answer["scope"] = scope
        return answer


def _challenge(state: AuthState, status: int, error: str, scope: str | None = None) -> Response:
    parts = [f'resource_metadata="{state.base}/.well-known/oauth-protected-resource/mcp"']
    if scope:
        parts.append(f'scope="{scope}"')
    if status == 403:
        parts.append(f'error="{error}"')
    return JSONResponse(
        {"error": error}, status_code=status, headers={"WWW-Authenticate": "Bearer " + ", ".join(parts)}
    )


class _Guard:
    """ASGI middleware: ``/mcp`` needs a live access token (and the step-up scope for ``tools/call``)."""

    def __init__(self, app: ASGIApp, state: AuthState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/mcp":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        known = self.state.access.get(token)
        if known is None or known[1] < time.time():
            self.state.record("refused", reason="no token" if not token else "invalid or expired token")
            await _challenge(self.state, 401, "invalid_token", self.state.scope or None)(scope, receive, send)
            return
        body = await request.body()
        step_up = self.state.step_up_scope
        if step_up and step_up not in known[0].split() and b'"tools/call"' in body:
            self.state.record("refused", reason="insufficient scope")
            wanted = f"{self.state.scope} {step_up}".strip()
            await _challenge(self.state, 403, "insufficient_scope", wanted)(scope, receive, send)
            return
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _client_authenticated(state: AuthState, request: Request, form_client: str) -> bool:
    """A confidential (pre-registered) client must present its secret with HTTP Basic."""
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        expected = state.clients.get(client_id, {}).get("secret")
        return expected is not None and secrets.compare_digest(secret, expected)
    return state.clients.get(form_client, {}).get("secret") is None


def build_app(state: AuthState) -> ASGIApp:
    """The MCP test server behind :class:`_Guard`, plus the authorization server's routes."""

    async def resource_metadata(request: Request) -> Response:
        state.record("resource_metadata")
        document: dict[str, Any] = {"resource": f"{state.base}/mcp", "authorization_servers": [state.base]}
        if state.scope:
            document["scopes_supported"] = state.scope.split()
        return JSONResponse(document)

    async def server_metadata(request: Request) -> Response:
        state.record("server_metadata")
        return JSONResponse(
            {
                "issuer": state.base,
                "authorization_endpoint": f"{state.base}/authorize",
                "token_endpoint": f"{state.base}/token",
                "registration_endpoint": f"{state.base}/register",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
            }
        )

    async def register(request: Request) -> Response:
        body = await request.json()
        client_id = "client-" + secrets.token_hex(6)
        state.clients[client_id] = {"redirect_uris": body.get("redirect_uris", [])}
        state.record("register", client_id=client_id, redirect_uris=body.get("redirect_uris", []))
        return JSONResponse(
            {
                "client_id": client_id,
                "redirect_uris": body.get("redirect_uris", []),
                "token_endpoint_auth_method": "none",
            },
            status_code=201,
        )

    async def authorize(request: Request) -> Response:
        query = request.query_params
        client = state.clients.get(query.get("client_id", ""))
        redirect = query.get("redirect_uri", "")
        state.record(
            "authorize",
            client_id=query.get("client_id"),
            scope=query.get("scope"),
            resource=query.get("resource"),
            redirect_uri=redirect,
        )
        allowed = client["redirect_uris"] if client is not None else []
        if client is None or (
            redirect not in allowed and not (allowed == ["*"] and redirect.startswith(LOOPBACK))
        ):
            return JSONResponse(
                {"error": "invalid_request", "error_description": "unknown client or redirect"}, 400
            )
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE S256 required"}, 400)
        code = "code-" + secrets.token_urlsafe(16)
        state.codes[code] = {
            "client_id": query["client_id"],
            "redirect_uri": redirect,
            "challenge": query["code_challenge"],
            "scope": query.get("scope", ""),
            "resource": query.get("resource"),
        }
        answer = {"code": code, "state": query.get("state", "")}
        return RedirectResponse(f"{redirect}?{urlencode(answer)}", status_code=302)

    async def token(request: Request) -> Response:
        form = await request.form()
        grant_type = str(form.get("grant_type", ""))
        state.record(
            "token",
            grant_type=grant_type,
            resource=form.get("resource"),
            basic=request.headers.get("authorization", "").startswith("Basic "),
        )
        if not _client_authenticated(state, request, str(form.get("client_id", ""))):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if grant_type == "authorization_code":
            issued = state.codes.pop(str(form.get("code", "")), None)
            verifier = str(form.get("code_verifier", ""))
            digest = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            )
            if (
                issued is None
                or digest != issued["challenge"]
                or form.get("redirect_uri") != issued["redirect_uri"]
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(state.issue(issued["client_id"], issued["scope"]))
        if grant_type == "refresh_token":
            grant = state.grants.get(str(form.get("refresh_token", "")))
            if grant is None:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(state.issue(grant.client_id, grant.scope, grant.refresh_token))
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    async def expire(request: Request) -> Response:
        state.access = {token: (scope, 0.0) for token, (scope, _) in state.access.items()}
        return JSONResponse({"expired": len(state.access)})

    async def revoke(request: Request) -> Response:
        state.access.clear()
        state.grants.clear()
        return JSONResponse({"revoked": True})

    mcp_app = build_server("remote").streamable_http_app(host="127.0.0.1")
    mcp_app.router.routes.extend(
        [
            Route("/.well-known/oauth-protected-resource/mcp", resource_metadata),
            Route("/.well-known/oauth-authorization-server", server_metadata),
            Route("/register", register, methods=["POST"]),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/test/expire", expire, methods=["POST"]),
            Route("/test/revoke", revoke, methods=["POST"]),
        ]
    )
    guarded: Starlette = mcp_app
    return _Guard(guarded, state)


async def serve(state: AuthState, sock: socket.socket) -> None:
    """Serve on ``sock`` until cancelled."""
    config = uvicorn.Config(build_app(state), log_level="warning", timeout_graceful_shutdown=1)
    await uvicorn.Server(config).serve(sockets=[sock])


@contextmanager
def running_oauth_server(events: Path, *options: str) -> Iterator[str]:
    """This server in a subprocess, with ``--events events`` and ``options``; yields ``http://127.0.0.1:PORT``."""
    command = [sys.executable, "-m", "approver.testing.oauth_server", "--events", str(events), *options]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    drain = threading.Thread(target=process.stderr.read, daemon=True)  # keeps its pipe from filling
    try:
        line = process.stderr.readline()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"the OAuth test server did not start: {line}{process.stderr.read()}")
        drain.start()
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        process.wait(10)
        if drain.is_alive():
            drain.join(10)
        process.stderr.close()


def read_events(events: Path) -> list[dict[str, Any]]:
    """The events the server recorded so far."""
    if not events.exists():
        return []
    return [json.loads(line) for line in events.read_text("utf-8").splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m approver.testing.oauth_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--token-lifetime", type=int, default=3600, help="seconds an access token lives")
    parser.add_argument("--scope", default="", help="scopes the server asks for and grants (space-separated)")
    parser.add_argument(
        "--step-up-scope", help="a scope tools/call needs on top (answered with 403 until granted)"
    )
    parser.add_argument("--events", type=Path, help="append each step as a JSON line to this file")
    parser.add_argument("--client", help="a pre-registered confidential client, ID:SECRET (Basic auth)")
    options = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", options.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    state = AuthState(
        f"http://127.0.0.1:{port}",
        options.token_lifetime,
        options.scope,
        options.step_up_scope,
        options.events,
    )
    if options.client:
        client_id, _, secret = options.client.partition(":")
        state.clients[client_id] = {"redirect_uris": ["*"], "secret": secret}
    print(f"LISTENING {port}", file=sys.stderr, flush=True)
    anyio.run(serve, state, sock)


if __name__ == "__main__":
    main()
