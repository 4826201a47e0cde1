"""Machine-to-machine upstreams: the OAuth client-credentials grant, where no person signs in.

A server entry with ``"oauth": {"grant": "client_credentials", ...}`` gets its tokens with the
client's own credentials: a client secret (``client_secret_basic``) or a private key
(``private_key_jwt``, RFC 7523), both through the MCP SDK's client-credentials providers. The
``issuer`` is required: the credentials go only to that authorization server, whichever one the
MCP server names. Tokens are minted again when needed, so they are kept in memory only; the
secret or key comes from ``servers.json``'s ``${keyring:...}`` reference.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx2
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from approver.config.servers import ServerConfig
from approver.upstream.oauth.browser import check_sign_in_url


class _MemoryTokens:
    """The SDK's ``TokenStorage`` in memory: client-credentials tokens are minted again at will."""

    def __init__(self) -> None:
        self._tokens: OAuthToken | None = None
        self._client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self._tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self._tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self._client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._client = client_info


class HttpsOnly(httpx2.Auth):
    """An auth flow whose own requests (metadata, token) must be https, or http to this machine."""

    def __init__(self, inner: httpx2.Auth) -> None:
        self._inner = inner

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = self._inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                if outgoing is not request:
                    check_sign_in_url(str(outgoing.url), "sign-in address")
                response = yield outgoing
                outgoing = await flow.asend(response)
        except StopAsyncIteration:
            return
        finally:
            await flow.aclose()


def machine_auth(config: ServerConfig) -> httpx2.Auth:
    """The client-credentials OAuth client for ``config``'s server (the schema requires its fields)."""
    settings = config.oauth_settings
    assert config.url is not None and settings.client_id is not None and settings.issuer is not None
    check_sign_in_url(config.url, "server address")
    check_sign_in_url(settings.issuer, "issuer")
    inner: httpx2.Auth
    if settings.private_key is not None:
        signing = SignedJWTParameters(
            issuer=settings.client_id,
            subject=settings.client_id,
            signing_key=settings.private_key,
            signing_algorithm=settings.signing_algorithm or "RS256",
        )
        inner = PrivateKeyJWTOAuthProvider(
            config.url,
            _MemoryTokens(),
            settings.client_id,
            signing.create_assertion_provider(),
            scope=settings.scope,
            issuer=settings.issuer,
        )
    else:
        assert settings.client_secret is not None
        inner = ClientCredentialsOAuthProvider(
            config.url,
            _MemoryTokens(),
            settings.client_id,
            settings.client_secret,
            scope=settings.scope,
            issuer=settings.issuer,
        )
    return HttpsOnly(inner)
