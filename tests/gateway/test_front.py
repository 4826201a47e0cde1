"""The HTTP front door: loopback binding, Host and Origin checks, client tokens, the MCP path."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import MutableMapping
from typing import Any

import pytest

from approver.gateway.front import FrontDoor, NonLoopbackError, build_app, check_loopback
from approver.gateway.request_scope import CLIENT_SCOPE_KEY

pytestmark = pytest.mark.anyio

PORT = 39217
HOST = f"127.0.0.1:{PORT}"
TOKEN = "tok-claude-0123456789"
TOKENS = {TOKEN: "claude"}

Message = MutableMapping[str, Any]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


class Inner:
    """The app behind the door: records the scope it was called with and answers 200."""

    def __init__(self) -> None:
        self.scopes: list[MutableMapping[str, Any]] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"inner"})


class Response:
    """What the door (or the app behind it) sent back."""

    def __init__(self, messages: list[Message]) -> None:
        start = messages[0]
        assert start["type"] == "http.response.start"
        self.status: int = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}
        self.body = b"".join(m.get("body", b"") for m in messages[1:])

    def error_message(self) -> str:
        message: str = json.loads(self.body)["error"]["message"]
        return message


async def request(
    path: str = "/mcp",
    *,
    host: str | None = HOST,
    headers: list[tuple[str, str]] | None = None,
    token: str | None = TOKEN,
) -> tuple[Response, Inner]:
    """Send one POST through a FrontDoor to a fresh Inner app; bearer ``token`` unless None."""
    raw: list[tuple[bytes, bytes]] = []
    if host is not None:
        raw.append((b"host", host.encode()))
    if token is not None:
        raw.append((b"authorization", f"Bearer {token}".encode()))
    raw += [(k.lower().encode(), v.encode()) for k, v in headers or []]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", PORT),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    inner = Inner()
    door = FrontDoor(inner, PORT, TOKENS.get)
    await door(scope, receive, send)
    return Response(sent), inner


# -- check_loopback ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "127.0.0.2"])
def test_check_loopback_accepts_loopback_addresses(host: str) -> None:
    assert check_loopback(host) == host


def test_check_loopback_turns_localhost_into_127_0_0_1() -> None:
    assert check_loopback("localhost") == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5"])
def test_check_loopback_refuses_an_address_reachable_from_other_computers(host: str) -> None:
    with pytest.raises(NonLoopbackError) as raised:
        check_loopback(host)

    message = str(raised.value)
    assert host in message
    assert "loopback" in message
    assert "nothing outside this computer" in message


def test_check_loopback_refuses_a_hostname_because_it_is_not_an_address() -> None:
    with pytest.raises(NonLoopbackError, match=r"'example\.com' is not an IP address.*127\.0\.0\.1"):
        check_loopback("example.com")


# -- Host -------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example:39217", f"127.0.0.1:{PORT + 1}", "127.0.0.1", ""])
async def test_a_foreign_host_header_is_a_misdirected_request(host: str) -> None:
    response, inner = await request(host=host)

    assert response.status == 421
    assert "127.0.0.1" in response.error_message()
    assert inner.scopes == []


async def test_a_missing_host_header_is_a_misdirected_request() -> None:
    response, inner = await request(host=None)

    assert response.status == 421
    assert inner.scopes == []


async def test_a_duplicated_host_header_is_a_misdirected_request() -> None:
    response, inner = await request(headers=[("Host", HOST)])

    assert response.status == 421
    assert inner.scopes == []


@pytest.mark.parametrize("host", [f"localhost:{PORT}", f"[::1]:{PORT}"])
async def test_localhost_and_ipv6_loopback_hosts_are_accepted(host: str) -> None:
    response, inner = await request(host=host)

    assert response.status == 200
    assert len(inner.scopes) == 1


# -- Origin -----------------------------------------------------------------------------------


async def test_a_foreign_origin_is_forbidden() -> None:
    response, inner = await request(headers=[("Origin", "https://evil.example")])

    assert response.status == 403
    assert "web pages" in response.error_message()
    assert inner.scopes == []


async def test_the_origin_of_another_localhost_port_is_forbidden() -> None:
    response, inner = await request(headers=[("Origin", f"http://localhost:{PORT + 1}")])

    assert response.status == 403
    assert inner.scopes == []


async def test_a_duplicated_origin_header_is_forbidden() -> None:
    origin = f"http://127.0.0.1:{PORT}"
    response, inner = await request(headers=[("Origin", origin), ("Origin", origin)])

    assert response.status == 403
    assert inner.scopes == []


async def test_the_gateways_own_origin_is_accepted() -> None:
    response, inner = await request(headers=[("Origin", f"http://localhost:{PORT}")])

    assert response.status == 200
    assert len(inner.scopes) == 1


# -- token ------------------------------------------------------------------------------------


async def test_a_request_without_a_token_is_unauthorized_with_a_bearer_challenge() -> None:
    response, inner = await request(token=None)

    assert response.status == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="approver"'
    assert "approver url --client" in response.error_message()
    assert inner.scopes == []


async def test_a_wrong_token_is_unauthorized() -> None:
    response, inner = await request(token="tok-not-issued")

    assert response.status == 401
    assert "www-authenticate" in response.headers
    assert inner.scopes == []


async def test_a_non_bearer_authorization_is_unauthorized() -> None:
    response, inner = await request(token=None, headers=[("Authorization", f"Basic {TOKEN}")])

    assert response.status == 401
    assert inner.scopes == []


async def test_a_duplicated_authorization_header_is_unauthorized() -> None:
    response, inner = await request(headers=[("Authorization", f"Bearer {TOKEN}")])

    assert response.status == 401
    assert inner.scopes == []


async def test_a_bearer_token_passes_and_names_the_client_in_the_scope() -> None:
    response, inner = await request()

    assert response.status == 200
    assert response.body == b"inner"
    [scope] = inner.scopes
    assert scope[CLIENT_SCOPE_KEY] == "claude"
    assert scope["path"] == "/mcp"


async def test_the_bearer_scheme_is_case_insensitive() -> None:
    response, inner = await request(token=None, headers=[("Authorization", f"bearer {TOKEN}")])

    assert response.status == 200
    assert inner.scopes[0][CLIENT_SCOPE_KEY] == "claude"


async def test_a_token_in_the_path_passes_with_the_path_rewritten_to_mcp() -> None:
    response, inner = await request(f"/t/{TOKEN}/mcp", token=None)

    assert response.status == 200
    [scope] = inner.scopes
    assert scope["path"] == "/mcp"
    assert scope["raw_path"] == b"/mcp"
    assert scope[CLIENT_SCOPE_KEY] == "claude"


async def test_a_wrong_token_in_the_path_is_unauthorized() -> None:
    response, inner = await request("/t/tok-not-issued/mcp", token=None)

    assert response.status == 401
    assert inner.scopes == []


async def test_a_valid_token_does_not_excuse_a_foreign_host() -> None:
    response, inner = await request(host="evil.example", token=TOKEN)

    assert response.status == 421
    assert inner.scopes == []


# -- path -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/admin", "/mcp/extra", f"/t/{TOKEN}/other"])
async def test_an_authenticated_request_for_another_path_is_not_found(path: str) -> None:
    response, inner = await request(path)

    assert response.status == 404
    assert "/mcp" in response.error_message()
    assert inner.scopes == []


async def test_an_unauthenticated_request_for_another_path_is_unauthorized_not_not_found() -> None:
    response, inner = await request("/admin", token=None)

    assert response.status == 401
    assert inner.scopes == []


# -- other scopes -----------------------------------------------------------------------------


async def test_a_lifespan_scope_passes_straight_through() -> None:
    inner = Inner()
    door = build_app(inner, PORT, TOKENS.get)
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}}

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        raise AssertionError("the inner app sends nothing here")

    await door(scope, receive, send)

    assert inner.scopes == [scope]
    assert CLIENT_SCOPE_KEY not in inner.scopes[0]


def test_the_front_doors_body_limit_is_the_sdks() -> None:
    from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE

    from approver.gateway.front import MAX_BODY_BYTES

    assert MAX_BODY_BYTES == DEFAULT_MAX_REQUEST_BODY_SIZE


def test_importing_the_cli_does_not_import_the_mcp_server_package() -> None:
    # Every approver command imports the CLI; `approver secret` or `doctor` must not pay for mcp.server.
    code = "import sys, approver.cli.main; print('mcp.server' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
