"""Signing in to a real OAuth-protected MCP test server, with a stand-in browser, and what follows."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from pathlib import Path

import anyio
import httpx2
import pytest

from approver.config.servers import OAuthSettings, ServerConfig
from approver.testing.browser import LOG_ENV, write_browser_script
from approver.testing.harness import MemoryKeyring
from approver.testing.oauth_server import read_events, running_oauth_server
from approver.upstream.oauth.browser import open_in_browser
from approver.upstream.oauth.provider import SignInNeeded, UpstreamOAuth
from approver.upstream.oauth.signin import SignInError, list_tools_once, sign_in, sign_out
from approver.upstream.oauth.store import CredentialStore, keyring_username

pytestmark = pytest.mark.anyio

TIMEOUT = 60


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$BROWSER`` is the stand-in browser; returns the file listing every URL it opened."""
    log = tmp_path / "browser.log"
    monkeypatch.setenv("BROWSER", str(write_browser_script(tmp_path)))
    monkeypatch.setenv(LOG_ENV, str(log))
    return log


@pytest.fixture
def store() -> CredentialStore:
    return CredentialStore(MemoryKeyring())


def server_config(base: str, **oauth: str) -> ServerConfig:
    settings = OAuthSettings(**oauth) if oauth else None
    return ServerConfig(name="remote", transport="http", url=f"{base}/mcp", oauth=settings)


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return tmp_path / "events.jsonl"


@pytest.fixture
def server(events: Path) -> Iterator[str]:
    with running_oauth_server(events, "--scope", "read") as base:
        yield base


async def show(url: str) -> None:
    assert await open_in_browser(url)


def opened(browser: Path) -> int:
    """How many URLs the stand-in browser opened."""
    return len(browser.read_text().splitlines()) if browser.exists() else 0


async def refused(run: Awaitable[object]) -> Exception:
    """The error ``run`` ends with (it must end with one)."""
    try:
        await run
    except Exception as exc:
        return exc
    raise AssertionError("the connection worked")


def named(events: Path, kind: str) -> list[dict[str, object]]:
    return [event for event in read_events(events) if event["event"] == kind]


async def test_signing_in_registers_with_pkce_and_the_resource_and_keeps_the_tokens_in_the_keyring(
    server: str, events: Path, browser: Path, store: CredentialStore
) -> None:
    config = server_config(server)
    with anyio.fail_after(TIMEOUT):
        result = await sign_in(config, show, store)
    assert result.tools > 0 and result.scope == "read"
    [authorize] = named(events, "authorize")
    assert authorize["resource"] == f"{server}/mcp" and authorize["scope"] == "read"
    assert str(authorize["redirect_uri"]).startswith("http://127.0.0.1:")
    assert [e["grant_type"] for e in named(events, "token")] == ["authorization_code"]
    record = store.load(f"{server}/mcp")
    assert record.tokens is not None and record.tokens.refresh_token and record.client is not None
    stored = store.backend.get_password("approver", keyring_username(f"{server}/mcp"))
    assert stored is not None and record.tokens.access_token in stored
    assert opened(browser) == 1


async def test_after_a_restart_a_token_near_its_expiry_is_refreshed_without_a_browser(
    events: Path, browser: Path, store: CredentialStore
) -> None:
    # 30 s is inside the refresh margin: the stored token counts as expiring at once.
    with running_oauth_server(events, "--token-lifetime", "30") as base:
        config = server_config(base)
        with anyio.fail_after(TIMEOUT):
            await sign_in(config, show, store)
            first = store.load(config.url or "").tokens
            # A new provider reads only the keyring, as the gateway does after a restart.
            background = UpstreamOAuth("remote", config.url or "", config.oauth_settings, store)
            assert await list_tools_once(config, background) > 0
    assert [e["grant_type"] for e in named(events, "token")] == ["authorization_code", "refresh_token"]
    assert opened(browser) == 1
    refreshed = store.load(config.url or "").tokens
    assert first is not None and refreshed is not None and refreshed.access_token != first.access_token


async def test_a_token_the_server_refuses_is_refreshed_before_anyone_is_asked(
    server: str, events: Path, browser: Path, store: CredentialStore
) -> None:
    config = server_config(server)
    with anyio.fail_after(TIMEOUT):
        await sign_in(config, show, store)
        async with httpx2.AsyncClient() as client:
            await client.post(f"{server}/test/expire")
        background = UpstreamOAuth("remote", config.url or "", config.oauth_settings, store)
        assert await list_tools_once(config, background) > 0
    assert [e["grant_type"] for e in named(events, "token")] == ["authorization_code", "refresh_token"]
    assert len(named(events, "authorize")) == 1


async def test_without_a_sign_in_the_background_stops_before_registering_or_opening_anything(
    server: str, events: Path, browser: Path, store: CredentialStore
) -> None:
    config = server_config(server)
    background = UpstreamOAuth("remote", config.url or "", config.oauth_settings, store)
    with anyio.fail_after(TIMEOUT):
        error = await refused(list_tools_once(config, background))
    assert isinstance(background.sign_in_needed, SignInNeeded), error
    assert str(background.sign_in_needed) == "not signed in yet"
    assert named(events, "register") == [] and named(events, "authorize") == []
    assert opened(browser) == 0


async def test_a_revoked_grant_is_forgotten_and_the_background_asks_for_a_new_sign_in(
    server: str, events: Path, browser: Path, store: CredentialStore
) -> None:
    config = server_config(server)
    with anyio.fail_after(TIMEOUT):
        await sign_in(config, show, store)
        async with httpx2.AsyncClient() as client:
            await client.post(f"{server}/test/revoke")
        background = UpstreamOAuth("remote", config.url or "", config.oauth_settings, store)
        await refused(list_tools_once(config, background))
    assert str(background.sign_in_needed) == "the sign-in has expired or was revoked"
    record = store.load(config.url or "")
    assert record.tokens is None and record.client is not None  # the registration is kept


async def test_a_step_up_is_remembered_and_granted_at_the_next_sign_in(
    events: Path, browser: Path, store: CredentialStore
) -> None:
    with running_oauth_server(events, "--scope", "read", "--step-up-scope", "write") as base:
        config = server_config(base)
        with anyio.fail_after(TIMEOUT):
            await sign_in(config, show, store)
            background = UpstreamOAuth("remote", config.url or "", config.oauth_settings, store)
            await refused(call_echo(config, background))
            assert str(background.sign_in_needed) == "the server asks for more permission (scope: read write)"
            assert store.load(config.url or "").wanted_scope == "read write"
            result = await sign_in(config, show, store)
            assert result.scope == "read write"
            assert store.load(config.url or "").wanted_scope is None
            again = UpstreamOAuth("remote", config.url or "", config.oauth_settings, store)
            await call_echo(config, again)
    assert [e["scope"] for e in named(events, "authorize")] == ["read", "read write"]


async def call_echo(config: ServerConfig, auth: UpstreamOAuth) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    assert config.url is not None
    async with (
        httpx2.AsyncClient(auth=auth) as client,
        streamable_http_client(config.url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("echo", {"text": "hi"})
        assert not result.is_error


async def test_sign_in_refuses_a_server_on_another_machine_over_plain_http(store: CredentialStore) -> None:
    config = ServerConfig(name="remote", transport="http", url="http://example.invalid/mcp")
    with pytest.raises(SignInError, match="only over https"):
        await sign_in(config, show, store)


async def test_a_server_with_its_own_authorization_header_is_not_signed_in_to(store: CredentialStore) -> None:
    config = ServerConfig(
        name="remote",
        transport="http",
        url="https://example.invalid/mcp",
        headers={"Authorization": "Bearer x"},
    )
    with pytest.raises(SignInError, match="not a server approver signs in to"):
        await sign_in(config, show, store)


async def test_signing_out_forgets_the_tokens_and_the_registration(
    server: str, browser: Path, store: CredentialStore
) -> None:
    config = server_config(server)
    with anyio.fail_after(TIMEOUT):
        await sign_in(config, show, store)
    assert await sign_out(config, store) is True
    assert store.load(config.url or "").tokens is None
    assert await sign_out(config, store) is False


async def test_pre_registered_credentials_are_used_instead_of_registering_and_sent_with_basic_auth(
    events: Path, browser: Path, store: CredentialStore
) -> None:
    with running_oauth_server(events, "--client", "my-app:s3cret") as base:
        config = server_config(base, client_id="my-app", client_secret="s3cret")
        with anyio.fail_after(TIMEOUT):
            await sign_in(config, show, store)
            async with httpx2.AsyncClient() as client:
                await client.post(f"{base}/test/expire")
            background = UpstreamOAuth("remote", config.url or "", config.oauth_settings, store)
            assert await list_tools_once(config, background) > 0
    assert named(events, "register") == []
    assert [e["client_id"] for e in named(events, "authorize")] == ["my-app"]
    assert [(e["grant_type"], e["basic"]) for e in named(events, "token")] == [
        ("authorization_code", True),
        ("refresh_token", True),
    ]
    assert store.load(config.url or "").client is None  # the secret stays in servers.json's reference
