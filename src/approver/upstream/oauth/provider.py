"""The MCP SDK's OAuth client, held to approver's rules: keyring storage, no surprise browsers.

:class:`UpstreamOAuth` is the SDK's ``OAuthClientProvider`` (discovery per RFC 9728 / RFC 8414 /
OpenID with the 2025-03-26 fallbacks, client ID metadata documents, dynamic registration, PKCE,
``resource``, issuer checks, scope selection and step-up) with what a desktop gateway adds:

- credentials come from and go to the keyring (:mod:`.store`), with the token's expiry and the
  discovered metadata, so after a restart the token is refreshed *before* it expires, at the
  right token endpoint, without a browser;
- a 401 to a request that carried a token is first answered by a refresh;
- without an :class:`Authorizer` (the gateway's background connection) a challenge that only a
  person can answer raises :class:`SignInNeeded` before anything is registered or opened;
- every sign-in URL is https (plain http only to this machine), and at most
  :data:`MAX_AUTHORIZATIONS` authorizations run per sign-in;
- pre-registered credentials from ``servers.json`` come first, with the token endpoint
  authentication method the authorization server supports.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.client.auth.utils import (
    extract_field_from_www_auth,
    extract_scope_from_www_auth,
    issuers_match,
    union_scopes,
)
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthMetadata,
    OAuthToken,
)
from pydantic import AnyUrl

from approver import __version__
from approver.config.servers import OAuthSettings
from approver.upstream.oauth.browser import check_sign_in_url
from approver.upstream.oauth.store import CredentialsError, CredentialStore, SignInRecord

MAX_AUTHORIZATIONS: Final = 3
"""Authorizations one sign-in may run (a step-up the server never grants must not loop)."""
REFRESH_MARGIN: Final = 60.0
"""Seconds before its expiry at which an access token is refreshed rather than sent."""
_UNUSED_REDIRECT: Final = "http://127.0.0.1/callback"
"""The background connection never authorizes, but the SDK's client metadata needs a redirect URI."""


class SignInNeeded(Exception):
    """The server wants a person to sign in (again); the message says why in a few words."""


@dataclass(frozen=True)
class Authorizer:
    """How an interactive sign-in reaches a person: the browser step and the answer coming back."""

    open_url: Callable[[str], Awaitable[None]]
    """Show the authorization URL (open the browser, print it); it is already checked."""
    answer: Callable[[], Awaitable[AuthorizationCodeResult]]
    """Wait for the redirect's code and state."""
    redirect_uri: str
    redirect_port: int | None = None


def _challenged(response: httpx2.Response) -> bool:
    return response.status_code == 401 or (
        response.status_code == 403 and extract_field_from_www_auth(response, "error") == "insufficient_scope"
    )


class UpstreamOAuth(OAuthClientProvider):
    """OAuth for one upstream server (an ``httpx2.Auth``); interactive when given an :class:`Authorizer`.

    ``fresh`` ignores the stored tokens (the registration is kept), so the server challenges
    and a person signs in anew: that is what ``approver login`` does.
    """

    def __init__(
        self,
        server_name: str,
        server_url: str,
        settings: OAuthSettings,
        store: CredentialStore,
        authorizer: Authorizer | None = None,
        *,
        fresh: bool = False,
    ) -> None:
        self.server_name = server_name
        self._settings = settings
        self._store = store
        self._authorizer = authorizer
        self._fresh = fresh
        self.record = SignInRecord()
        """The stored record as last read or written."""
        self.authorizations = 0
        """Authorizations (browser round trips) started so far by this object."""
        self.sign_in_needed: SignInNeeded | None = None
        """Set when the background connection stopped because a person must sign in."""
        self.store_problem: str | None = None
        """Why the keyring could not be read, when it could not."""
        self._legacy_issuer: str | None = None
        """The issuer of 2025-03-26 metadata accepted by :meth:`_same_origin_issuer`."""
        redirect = authorizer.redirect_uri if authorizer is not None else _UNUSED_REDIRECT
        metadata = OAuthClientMetadata(
            redirect_uris=[AnyUrl(redirect)],
            client_name="approver",
            software_id="approver",
            software_version=__version__,
        )
        super().__init__(
            server_url,
            metadata,
            _RecordStorage(self),
            redirect_handler=self._open,
            callback_handler=self._answer,
            client_metadata_url=settings.client_metadata_url,
        )

    # -- the stored record --------------------------------------------------------------------

    async def _initialize(self) -> None:
        try:
            record = await anyio.to_thread.run_sync(self._store.load, self.context.server_url)
        except CredentialsError as exc:
            # A server that never challenges needs no keyring; one that does is told why sign-in cannot work.
            record, self.store_problem = SignInRecord(), str(exc)
        self.record = record
        context = self.context
        context.protected_resource_metadata = record.resource_metadata
        context.oauth_metadata = record.server_metadata
        servers = record.resource_metadata.authorization_servers if record.resource_metadata else []
        context.auth_server_url = str(servers[0]) if servers else None
        context.client_info = self._preregistered() or record.client
        if not self._fresh:
            context.current_tokens = record.tokens
            # Treated as expired a little early, so it is refreshed instead of refused mid-call.
            context.token_expiry_time = (
                None if record.expires_at is None else record.expires_at - REFRESH_MARGIN
            )
        self._fresh = False  # a second initialize (after a failed refresh) reads what is stored now
        self._initialized = True

    async def save(self, record: SignInRecord) -> None:
        """Store ``record`` with the metadata discovered so far."""
        record = replace(
            record,
            resource_metadata=self.context.protected_resource_metadata or record.resource_metadata,
            server_metadata=self.context.oauth_metadata or record.server_metadata,
        )
        self.record = record
        if self.store_problem is not None and self._authorizer is None:
            return  # the background flow keeps working in memory; a sign-in reports the keyring itself
        await anyio.to_thread.run_sync(self._store.save, self.context.server_url, record)

    def _preregistered(self) -> OAuthClientInformationFull | None:
        settings = self._settings
        if not settings.client_id:
            return None
        return OAuthClientInformationFull(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_endpoint_auth_method=self._preregistered_method(),
            redirect_uris=self.context.client_metadata.redirect_uris,
        )

    def _preregistered_method(self) -> str:
        """How a pre-registered client authenticates at the token endpoint: what the server supports."""
        if not self._settings.client_secret:
            return "none"
        metadata = self.context.oauth_metadata
        supported = metadata.token_endpoint_auth_methods_supported if metadata is not None else None
        if supported is None or "client_secret_basic" in supported:  # RFC 8414's default
            return "client_secret_basic"
        return "client_secret_post" if "client_secret_post" in supported else "client_secret_basic"

    def _refresh_preregistered(self) -> None:
        info = self.context.client_info
        if info is not None and self._settings.client_id and info.client_id == self._settings.client_id:
            info.token_endpoint_auth_method = self._preregistered_method()

    # -- the SDK's steps, adjusted --------------------------------------------------------------

    async def _perform_authorization_code_grant(self) -> tuple[str, str]:
        metadata = self.context.client_metadata
        metadata.scope = union_scopes(
            union_scopes(metadata.scope, self.record.wanted_scope), self._settings.scope
        )
        return await super()._perform_authorization_code_grant()

    async def _exchange_token_authorization_code(self, auth_code: str, code_verifier: str) -> httpx2.Request:
        self._refresh_preregistered()
        return await super()._exchange_token_authorization_code(auth_code, code_verifier)

    async def _refresh_token(self) -> httpx2.Request:
        self._refresh_preregistered()
        return await super()._refresh_token()

    async def _handle_refresh_response(self, response: httpx2.Response) -> bool:
        refreshed = await super()._handle_refresh_response(response)
        if not refreshed and response.status_code in (400, 401):
            # The grant is gone (revoked, expired): forget it, so no later start tries it again.
            await self.save(replace(self.record, tokens=None, expires_at=None))
        return refreshed

    async def _open(self, url: str) -> None:
        if self._authorizer is None:  # the background flow stops before this; never open a browser from it
            raise self._stop("not signed in yet")
        self.authorizations += 1
        if self.authorizations > MAX_AUTHORIZATIONS:
            wanted = self.context.client_metadata.scope
            raise OAuthFlowError(
                f"gave up after {MAX_AUTHORIZATIONS} sign-ins in a row: {self.server_name} keeps refusing "
                f"the permissions it was given{f' (it asks for {wanted})' if wanted else ''}"
            )
        check_sign_in_url(url, "authorization address")
        await self._authorizer.open_url(url)

    async def _answer(self) -> AuthorizationCodeResult:
        assert self._authorizer is not None
        return await self._authorizer.answer()

    # -- the flow -------------------------------------------------------------------------------

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        inner = super()._auth_flow(request)
        refreshed = False
        try:
            outgoing = await inner.__anext__()
            while True:
                if outgoing is not request:
                    check_sign_in_url(str(outgoing.url), "sign-in address")
                response = yield outgoing
                if outgoing is not request:
                    response = await self._same_origin_issuer(outgoing, response)
                if outgoing is request and _challenged(response):
                    check_sign_in_url(self.context.server_url, "server address")
                    if (
                        not refreshed
                        and "Authorization" in request.headers
                        and self.context.can_refresh_token()
                    ):
                        refreshed = True
                        refresh = await self._refresh_token()
                        check_sign_in_url(str(refresh.url), "token address")
                        if await self._handle_refresh_response((yield refresh)):
                            self._add_auth_header(request)
                            response = yield request
                    if _challenged(response) and self._authorizer is None:
                        raise await self._background_stop(request, response)
                outgoing = await inner.asend(response)
                self._restore_issuer()
        except StopAsyncIteration:
            return
        finally:
            await inner.aclose()

    async def _same_origin_issuer(self, sent: httpx2.Request, response: httpx2.Response) -> httpx2.Response:
        """On the 2025-03-26 path, accept root metadata whose issuer is a path on the server's own origin.

        That spec makes the MCP server's origin the authorization server and has no issuer
        check; a document served at that origin's root describes that same server even when its
        ``issuer`` carries a path (the conformance suite's backcompat scenario). The SDK applies
        RFC 8414's exact match there and refuses it, so the issuer is handed to the SDK as the
        origin, and the real one is put back (:meth:`_restore_issuer`) for RFC 9207's ``iss`` check.
        """
        origin = urlsplit(self.context.server_url)
        root = f"{origin.scheme}://{origin.netloc}"
        if (
            self.context.auth_server_url is not None
            or response.status_code != 200
            or str(sent.url) != f"{root}/.well-known/oauth-authorization-server"
        ):
            return response
        try:
            document = json.loads(await response.aread())
        except ValueError:
            return response
        issuer = document.get("issuer") if isinstance(document, dict) else None
        if not isinstance(issuer, str) or issuers_match(issuer, root):
            return response
        parts = urlsplit(issuer)
        if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
            return response  # another origin: the SDK refuses it, rightly
        self._legacy_issuer = issuer
        return httpx2.Response(200, json={**document, "issuer": root}, request=sent)

    def _restore_issuer(self) -> None:
        metadata = self.context.oauth_metadata
        if self._legacy_issuer is None or metadata is None or str(metadata.issuer) == self._legacy_issuer:
            return
        document = metadata.model_dump(mode="json", exclude_none=True)
        self.context.oauth_metadata = OAuthMetadata.model_validate(
            {**document, "issuer": self._legacy_issuer}
        )

    async def _background_stop(self, request: httpx2.Request, response: httpx2.Response) -> SignInNeeded:
        """Note why a person must sign in; for a step-up, remember the scope to ask for then."""
        if response.status_code == 403:
            challenged = extract_scope_from_www_auth(response)
            granted = self.context.current_tokens.scope if self.context.current_tokens else None
            wanted = union_scopes(granted, challenged)
            await self.save(replace(self.record, wanted_scope=wanted))
            detail = f" (scope: {challenged})" if challenged else ""
            return self._stop(f"the server asks for more permission{detail}")
        if "Authorization" in request.headers or self.record.signed_in:
            return self._stop("the sign-in has expired or was revoked")
        if self.store_problem is not None:
            return self._stop(f"not signed in yet, and {self.store_problem}")
        return self._stop("not signed in yet")

    def _stop(self, reason: str) -> SignInNeeded:
        self.sign_in_needed = SignInNeeded(reason)
        return self.sign_in_needed


class _RecordStorage:
    """The SDK's ``TokenStorage``, written through to the provider's keyring record."""

    def __init__(self, provider: UpstreamOAuth) -> None:
        self._provider = provider

    async def get_tokens(self) -> OAuthToken | None:
        return self._provider.record.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        provider = self._provider
        record = provider.record.with_tokens(tokens)
        if provider._authorizer is not None:  # a person signed in, rather than a refresh
            record = replace(record, signed_in_at=time.time())
        await provider.save(record)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self._provider.record.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        provider = self._provider
        authorizer = provider._authorizer
        port = authorizer.redirect_port if authorizer is not None else None
        await provider.save(replace(provider.record, client=client_info, redirect_port=port))
