"""Signing in to a remote upstream, as a person starts it (``approver login``, the Sign in button).

:func:`sign_in` binds the 127.0.0.1 redirect listener, connects to the server with a fresh
interactive :class:`~approver.upstream.oauth.provider.UpstreamOAuth`, lets the server
challenge, sends the person's browser to the authorization page, takes the code back, and
stores the tokens in the keyring. It then lists the server's tools, so a step-up the server
asks for right away is granted in the same sign-in (at most three authorizations in all).
The gateway's own connection picks the new tokens up from the keyring.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Final

import anyio
import httpx2
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult

from approver import __version__
from approver.config.servers import ServerConfig
from approver.upstream.oauth.browser import check_sign_in_url
from approver.upstream.oauth.loopback import LoopbackListener
from approver.upstream.oauth.provider import MAX_AUTHORIZATIONS, Authorizer, UpstreamOAuth
from approver.upstream.oauth.store import CredentialStore

SIGN_IN_TIMEOUT: Final = 300.0
"""Seconds a sign-in waits for the person to finish in the browser."""

ShowUrl = Callable[[str], Awaitable[None]]
"""Shows the authorization URL to the person: opens the browser, prints it, or both."""


class SignInError(Exception):
    """A sign-in did not complete; the message says why."""


@dataclass(frozen=True)
class SignInResult:
    """What a completed sign-in found."""

    server: str
    tools: int
    scope: str | None
    where: str
    """Where the credentials are kept, for a person."""


async def sign_in(
    config: ServerConfig,
    show_url: ShowUrl,
    store: CredentialStore | None = None,
    *,
    browser_wait: float = SIGN_IN_TIMEOUT,
    listener_ready: Callable[[LoopbackListener], None] | None = None,
) -> SignInResult:
    """Sign in to ``config``'s server; raises SignInError when it does not complete.

    ``listener_ready`` sees the redirect listener before the browser step (a CLI uses it to
    take a redirect URL pasted by hand when the browser runs on another machine).
    """
    if not config.signs_in or config.url is None:
        raise SignInError(f"{config.name} is not a server approver signs in to (see its oauth setting)")
    store = store or CredentialStore()
    url = config.url
    try:
        check_sign_in_url(url, "server address")
        record = await anyio.to_thread.run_sync(store.load, url)
    except Exception as exc:
        raise SignInError(str(exc)) from None
    port = config.oauth_settings.callback_port or record.redirect_port or 0
    try:
        listener = LoopbackListener(port, config.name)
        await listener.__aenter__()
    except OSError as exc:
        if port == 0 or config.oauth_settings.callback_port or exc.errno != errno.EADDRINUSE:
            raise SignInError(f"cannot listen on 127.0.0.1:{port} for the browser's answer: {exc}") from None
        listener = LoopbackListener(0, config.name)  # the registration's port is taken: register anew
        await listener.__aenter__()
        await anyio.to_thread.run_sync(store.save, url, replace(record, client=None, redirect_port=None))
    try:
        if listener_ready is not None:
            listener_ready(listener)

        async def answer() -> AuthorizationCodeResult:
            with anyio.fail_after(browser_wait):
                return await listener.result()

        authorizer = Authorizer(show_url, answer, listener.redirect_uri, listener.port)
        auth = UpstreamOAuth(config.name, url, config.oauth_settings, store, authorizer, fresh=True)
        tools = await _connect_until_granted(config, auth)
    finally:
        await listener.__aexit__(None, None, None)
    tokens = auth.record.tokens
    if tokens is None:
        raise SignInError(f"{config.name} let approver in without signing in; there is nothing to sign in to")
    return SignInResult(config.name, tools, tokens.scope, store.where)


async def _connect_until_granted(config: ServerConfig, auth: UpstreamOAuth) -> int:
    """Connect and list tools until it works, or until a try ends without a new authorization."""
    while True:
        before = auth.authorizations
        try:
            return await list_tools_once(config, auth)
        except Exception as exc:
            if _contains(exc, TimeoutError) and auth.authorizations > before:
                raise SignInError(
                    f"nobody finished signing in to {config.name} in the browser in time; start again"
                ) from None
            reason = describe(exc)
            if auth.authorizations == before or auth.authorizations >= MAX_AUTHORIZATIONS:
                raise SignInError(f"signing in to {config.name} failed: {reason}") from None


async def list_tools_once(config: ServerConfig, auth: httpx2.Auth | None) -> int:
    """Connect to ``config``'s server with ``auth``, initialize, and count its tools."""
    assert config.url is not None
    async with (
        httpx2.AsyncClient(
            headers=dict(config.headers), auth=auth, timeout=httpx2.Timeout(30.0, read=300.0)
        ) as client,
        streamable_http_client(config.url, http_client=client) as (read, write),
        ClientSession(
            read, write, client_info=types.Implementation(name="approver", version=__version__)
        ) as session,
    ):
        await session.initialize()
        count = 0
        cursor: str | None = None
        while True:
            page = await session.list_tools(
                params=types.PaginatedRequestParams(cursor=cursor) if cursor else None
            )
            count += len(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return count


def _contains(exc: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_contains(inner, kind) for inner in exc.exceptions)
    return isinstance(exc, kind)


def describe(exc: BaseException) -> str:
    """One line on why a connection or sign-in failed."""
    if isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
        if inner:
            return describe(inner[0])
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


async def sign_out(config: ServerConfig, store: CredentialStore | None = None) -> bool:
    """Forget the sign-in to ``config``'s server (tokens and registration); False if there was none."""
    if config.url is None:
        return False
    store = store or CredentialStore()
    return await anyio.to_thread.run_sync(store.delete, config.url)
