"""The Streamable HTTP side of an upstream connection: the HTTP client, its sign-in, and waiting for one.

A remote server that answers with an OAuth challenge gets approver's background
:class:`~approver.upstream.oauth.provider.UpstreamOAuth`: stored tokens, refreshed without a
browser. When only a person can help, the connection ends with ``SignInNeeded`` and the
upstream waits in :func:`until_signed_in` for new credentials in the keyring (from ``approver
login`` in another process, or the app's Sign in button) instead of retrying on a timer.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any, Final

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client

from approver.config.servers import ServerConfig
from approver.upstream.oauth.machine import machine_auth
from approver.upstream.oauth.provider import UpstreamOAuth
from approver.upstream.oauth.store import CredentialsError, CredentialStore, SignInRecord

logger = logging.getLogger(__name__)

SIGN_IN_POLL: Final = 3.0
"""Seconds between looks at the keyring while a server waits for a sign-in."""


async def open_remote(
    config: ServerConfig,
    stack: AsyncExitStack,
    store: CredentialStore | None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> tuple[Any, Any, UpstreamOAuth | None]:
    """Connect to ``config``'s Streamable HTTP endpoint; returns the streams and the OAuth client, if any.

    ``transport`` (the connection's ``BoundedTransport``) bounds what the server may send.
    """
    assert config.url is not None
    auth = None
    if config.signs_in:
        auth = UpstreamOAuth(config.name, config.url, config.oauth_settings, store or CredentialStore())
    client = httpx2.AsyncClient(
        headers=dict(config.headers),
        auth=machine_auth(config) if config.uses_client_credentials else auth,
        timeout=httpx2.Timeout(30.0, read=300.0),
        transport=transport,
    )
    stack.push_async_callback(client.aclose)
    read, write = await stack.enter_async_context(streamable_http_client(config.url, http_client=client))
    return read, write, auth


def sign_in_hint(name: str) -> str:
    """What a person does about a server that needs sign-in."""
    return f"sign in with `approver login {name}`, or with Sign in in approver's Servers window"


async def until_signed_in(
    store: CredentialStore, url: str, seen: SignInRecord, wake: anyio.Event, poll: float = SIGN_IN_POLL
) -> None:
    """Return once the keyring's record for ``url`` differs from ``seen``, or ``wake`` is set.

    When the keyring cannot be read (locked, gone), only ``wake`` (Sign in, Restart) ends the wait.
    """

    def changed() -> bool | None:
        try:
            return store.load(url) != seen
        except CredentialsError as exc:
            logger.debug("cannot read the sign-in record of %s: %s", url, exc)
            return None

    while not wake.is_set():
        found = await anyio.to_thread.run_sync(changed)
        if found:
            return
        if found is None:
            # A locked keyring may ask to be unlocked at every read: wait for a person instead.
            await wake.wait()
            return
        with anyio.move_on_after(poll):
            await wake.wait()
