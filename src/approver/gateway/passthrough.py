"""Everything besides tool calls, passed to the upstream that owns it.

Resources (lists, reads, subscriptions, 2026-era ``subscriptions/listen``), prompts, completion
and log levels reach the same upstream a client would have used directly; the catalog says which
upstream owns a resource URI, a template or a prompt name. Reads, prompt gets and completions
are decided and recorded on the way (:mod:`approver.gateway.policed`); lists are not.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp.types as types
from mcp import ClientSession
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError

from approver.calls import RequestKind, RequestRef
from approver.gateway.callers import SdkCaller
from approver.gateway.catalog import Catalog
from approver.gateway.policed import PolicedRequests
from approver.gateway.sessions import LegacySessions
from approver.upstream.connection import Upstream
from approver.upstream.status import UpstreamUnavailable

logger = logging.getLogger(__name__)


class Passthrough:
    """The SDK handlers for resources, prompts, completion and logging."""

    def __init__(
        self, catalog: Catalog, sessions: LegacySessions, listen: ListenHandler, policed: PolicedRequests
    ) -> None:
        self.catalog = catalog
        self.sessions = sessions
        self.policed = policed
        self._listen = listen
        self._upstream_subscriptions: dict[str, int] = {}
        """How many client subscriptions each resource URI has: approver subscribes upstream once."""

    # -- resources ----------------------------------------------------------------------------

    async def list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        self.sessions.track(ctx)
        return types.ListResourcesResult(resources=self.catalog.resources())

    async def list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        self.sessions.track(ctx)
        return types.ListResourceTemplatesResult(resource_templates=self.catalog.templates())

    async def read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        self.sessions.track(ctx)
        uri = str(params.uri)
        upstream = self._resource_owner(uri)

        async def read() -> types.ReadResourceResult:
            result: types.ReadResourceResult = await _session_or_error(upstream).read_resource(params.uri)
            return result

        request = RequestRef(RequestKind.RESOURCE, upstream.name, uri)
        return await self.policed.run(SdkCaller(ctx), request, {"uri": uri}, read)

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        entry = self.sessions.track(ctx)
        uri = str(params.uri)
        await self._upstream_subscribe(uri)
        if entry is not None:
            entry.subscriptions.add(uri)
        return types.EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        entry = self.sessions.track(ctx)
        uri = str(params.uri)
        if entry is not None and uri in entry.subscriptions:
            entry.subscriptions.discard(uri)
            await self._upstream_unsubscribe(uri)
        return types.EmptyResult()

    async def _upstream_subscribe(self, uri: str) -> None:
        count = self._upstream_subscriptions.get(uri, 0)
        if count == 0:
            session = _session_or_error(self._resource_owner(uri))
            await session.send_request(
                types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri)), types.EmptyResult
            )
        self._upstream_subscriptions[uri] = count + 1

    async def _upstream_unsubscribe(self, uri: str) -> None:
        count = self._upstream_subscriptions.get(uri, 0)
        if count <= 1:
            self._upstream_subscriptions.pop(uri, None)
            try:
                session = _session_or_error(self._resource_owner(uri))
                await session.send_request(
                    types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri)),
                    types.EmptyResult,
                )
            except MCPError as exc:
                logger.debug("unsubscribe %s upstream failed: %s", uri, exc)
        else:
            self._upstream_subscriptions[uri] = count - 1

    async def subscriptions_listen(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        uris = [str(uri) for uri in (params.notifications.resource_subscriptions or [])]
        subscribed: list[str] = []
        try:
            for uri in uris:
                try:
                    await self._upstream_subscribe(uri)
                    subscribed.append(uri)
                except MCPError as exc:
                    logger.info("listen: cannot subscribe %s upstream: %s", uri, exc)
            return await self._listen(ctx, params)
        finally:
            for uri in subscribed:
                await self._upstream_unsubscribe(uri)

    def _resource_owner(self, uri: Any) -> Upstream:
        upstream = self.catalog.resource_owner(str(uri))
        if upstream is None:
            raise MCPError(types.INVALID_PARAMS, f"approver: no upstream server offers the resource {uri}")
        return upstream

    # -- prompts and completion ---------------------------------------------------------------

    async def list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        self.sessions.track(ctx)
        return types.ListPromptsResult(prompts=self.catalog.prompts())

    async def get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        self.sessions.track(ctx)
        found = self.catalog.prompt(params.name)
        if found is None:
            raise MCPError(types.INVALID_PARAMS, f"approver: unknown prompt {params.name!r}")
        upstream, original = found

        async def get() -> types.GetPromptResult:
            result = await _session_or_error(upstream).get_prompt(original, params.arguments)
            assert isinstance(result, types.GetPromptResult)  # input_required is not allowed upstream
            return result

        prefix = self.catalog.prefix(upstream.name)
        request = RequestRef(RequestKind.PROMPT, upstream.name, original, params.name, prefix)
        arguments = {"name": params.name, "arguments": params.arguments or {}}
        return await self.policed.run(SdkCaller(ctx), request, arguments, get)

    async def complete(
        self, ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            found = self.catalog.prompt(ref.name)
            if found is None:
                raise MCPError(types.INVALID_PARAMS, f"approver: unknown prompt {ref.name!r}")
            upstream, original = found
            prefix = self.catalog.prefix(upstream.name)
            request = RequestRef(RequestKind.COMPLETION, upstream.name, original, ref.name, prefix)
            ref = types.PromptReference(name=original, title=ref.title)
        else:
            owner = self.catalog.template_owner(ref.uri)
            if owner is None:
                raise MCPError(types.INVALID_PARAMS, f"approver: no upstream server offers {ref.uri}")
            upstream = owner
            request = RequestRef(RequestKind.COMPLETION, upstream.name, ref.uri)
        context = params.context.arguments if params.context is not None else None
        upstream_ref = ref

        async def complete() -> types.CompleteResult:
            session = _session_or_error(upstream)
            return await session.complete(
                upstream_ref, params.argument.model_dump(), context_arguments=context
            )

        recorded = params.model_dump(
            by_alias=True, mode="json", exclude_none=True, include={"ref", "argument", "context"}
        )
        return await self.policed.run(SdkCaller(ctx), request, recorded, complete)

    # -- logging ------------------------------------------------------------------------------

    async def set_logging_level(
        self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        entry = self.sessions.track(ctx)
        if entry is not None:
            entry.logging = True
        for upstream in self.catalog.upstreams():
            caps = upstream.capabilities
            if upstream.session is not None and caps is not None and caps.logging is not None:
                try:
                    await upstream.session.send_request(
                        types.SetLevelRequest(params=types.SetLevelRequestParams(level=params.level)),
                        types.EmptyResult,
                    )
                except MCPError as exc:
                    logger.info("setLevel on %s failed: %s", upstream.name, exc)
        return types.EmptyResult()


def _session_or_error(upstream: Upstream) -> ClientSession:
    try:
        return upstream.session_or_raise()
    except UpstreamUnavailable as exc:
        raise MCPError(types.INTERNAL_ERROR, f"approver: {exc}") from None
