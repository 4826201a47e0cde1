"""The gateway: one MCP server in front of every upstream, with a decision on every tool call.

Clients see one server whose tools, prompts and resources are the union of all upstreams'
(see :mod:`approver.gateway.catalog` for naming). This module builds the SDK's server and
wires its handlers to the parts that do the work:

- :mod:`approver.gateway.tools`: every ``tools/call``: decide, ask, record, forward;
- :mod:`approver.gateway.rounds`: calls in flight and the questions their upstreams ask;
- :mod:`approver.gateway.passthrough`: resources, prompts, completion and logging, with
  reads, prompt gets and completions decided and recorded by :mod:`approver.gateway.policed`;
- :mod:`approver.gateway.grants`: what a person approved "for this session", per client;
- :mod:`approver.gateway.sessions`: the 2025-era sessions that notifications go to.

It also takes the upstreams' own messages (list changes, log messages, resource updates,
server-to-client requests) to the clients that should see them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable
from typing import Any, Final

import mcp.types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPDeprecationWarning

from approver import __version__
from approver.approval.broker import Broker
from approver.approval.keepalive import KEEPALIVE_INTERVAL
from approver.audit.recorder import Recorder
from approver.gateway.callers import Caller, SdkCaller
from approver.gateway.catalog import Catalog, list_page
from approver.gateway.grants import Grants
from approver.gateway.passthrough import Passthrough
from approver.gateway.policed import PolicedRequests
from approver.gateway.rounds import InputRounds
from approver.gateway.sessions import LegacySessions
from approver.gateway.tools import ToolCalls
from approver.policy.file import PolicyFile
from approver.policy.limits import RateLimiter
from approver.upstream.connection import Upstream

logger = logging.getLogger(__name__)

PINS_WATCH_INTERVAL: Final = 1.0
"""Seconds between checks of the pins file for tools the user accepted."""


class _GatewayServer(Server[Any]):
    """A low-level server that advertises list-change notifications on every transport."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(
            prompts_changed=True, resources_changed=True, tools_changed=True
        )
        return super().create_initialization_options(options, experimental_capabilities, extensions)


class Gateway:
    """The Qt-free heart of approver: routes, decides, records and forwards."""

    def __init__(
        self,
        catalog: Catalog,
        policy: PolicyFile,
        recorder: Recorder,
        broker: Broker,
        *,
        clock: Callable[[], float] = time.time,
        instructions: str | None = None,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        patience: Callable[[str], float | None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.policy = policy
        self.recorder = recorder
        self.broker = broker
        self.sessions = LegacySessions()
        self.rounds = InputRounds()
        self.grants = Grants()
        self.tools = ToolCalls(
            catalog,
            policy,
            recorder,
            broker,
            self.rounds,
            self.grants,
            clock=clock,
            keepalive_interval=keepalive_interval,
        )
        if patience is not None:
            self.tools.patience = patience
        self.bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self.bus)
        self.policed = PolicedRequests(
            policy,
            recorder,
            broker,
            self.grants,
            lambda: self.tools.paused,
            keepalive_interval=lambda: self.tools.keepalive_interval,
        )
        self.passthrough = Passthrough(catalog, self.sessions, self._listen, self.policed)
        with warnings.catch_warnings():
            # logging/setLevel is deprecated in the 2026-07-28 revision, but 2025-11-25 clients
            # still use it and everything they can do upstream must work through approver.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            self.server = self._build_server(instructions)
        # The SDK wraps every request in an OpenTelemetry span and says to drop that middleware
        # from ``Server.middleware`` to opt out. approver installs no tracer provider, so the
        # spans are never exported; building and entering one costs about 18 us per request.
        self.server.middleware[:] = [
            m for m in self.server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"
        ]

    def _build_server(self, instructions: str | None) -> _GatewayServer:
        passthrough = self.passthrough
        return _GatewayServer(
            "approver",
            version=__version__,
            instructions=instructions
            or "approver is a local gateway: tools of several MCP servers, each call checked by policy.",
            on_list_tools=self._list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=passthrough.list_resources,
            on_list_resource_templates=passthrough.list_templates,
            on_read_resource=passthrough.read_resource,
            on_subscribe_resource=passthrough.subscribe,
            on_unsubscribe_resource=passthrough.unsubscribe,
            on_subscriptions_listen=passthrough.subscriptions_listen,
            on_list_prompts=passthrough.list_prompts,
            on_get_prompt=passthrough.get_prompt,
            on_completion=passthrough.complete,
            on_set_logging_level=passthrough.set_logging_level,
            # Without it the SDK runs a whole tools/list for every 2026-era call to check the
            # call's Mcp-Param headers: about a seventh of the gateway's CPU under load.
            get_tool_input_schema=self._tool_input_schema,
        )

    # -- state the desktop app and the commands read or set ------------------------------------

    @property
    def paused(self) -> bool:
        """While paused, every tool call is denied without asking."""
        return self.tools.paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self.tools.paused = value

    @property
    def limiter(self) -> RateLimiter:
        """The policy's rate limits, counted across every client."""
        return self.tools.limiter

    @property
    def keepalive_interval(self) -> float:
        """Seconds between progress notifications for a call held for approval."""
        return self.tools.keepalive_interval

    @keepalive_interval.setter
    def keepalive_interval(self, value: float) -> None:
        self.tools.keepalive_interval = value

    def tracks(self, session_id: str) -> bool:
        """Whether a 2025-era session is known, so notifications (list changes, logs) reach it."""
        return session_id in self.sessions

    # -- tools --------------------------------------------------------------------------------

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        entry = self.catalog.tool(name)
        return entry.exposed.input_schema if entry is not None else None

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self.sessions.track(ctx)
        tools = self.catalog.listed_tools() + self.catalog.sign_in_tools()
        return list_page(tools, params.cursor if params else None)

    async def call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        """The SDK's handler for ``tools/call``: see :meth:`call`."""
        self.sessions.track(ctx)
        if params.request_state is not None:
            return await self.rounds.resume(SdkCaller(ctx), params)
        return await self.tools.call(SdkCaller(ctx), params.name, params.arguments)

    async def call(
        self, caller: Caller, name: str, arguments: dict[str, Any] | None
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Decide on one tool call and, if allowed, forward it (:meth:`ToolCalls.call`)."""
        return await self.tools.call(caller, name, arguments)

    # -- what upstreams send ------------------------------------------------------------------

    async def upstream_request(self, upstream: Upstream, kind: str, params: Any) -> Any:
        """Route sampling / elicitation / roots from an upstream to the client whose call is running."""
        return await self.rounds.upstream_request(upstream.name, kind, params)

    async def lists_changed(self, changed: set[str]) -> None:
        """Tell every client which of tools/resources/prompts changed (both protocol eras)."""
        if "tools" in changed:
            await self._tools_changed()
        if "resources" in changed:
            await self.sessions.broadcast(types.ResourceListChangedNotification())
            await self.bus.publish(ResourcesListChanged())
        if "prompts" in changed:
            await self.sessions.broadcast(types.PromptListChangedNotification())
            await self.bus.publish(PromptsListChanged())

    async def upstream_notification(self, upstream: Upstream, message: types.ServerNotification) -> None:
        """Forward log messages and resource updates to the clients that want them."""
        if isinstance(message, types.ResourceUpdatedNotification):
            uri = str(message.params.uri)
            for key, entry in self.sessions.entries():
                if uri in entry.subscriptions:
                    await self.sessions.send(key, entry, message)
            await self.bus.publish(ResourceUpdated(uri=uri))
        elif isinstance(message, types.LoggingMessageNotification):
            flight = self.rounds.owner(upstream.name)
            if not isinstance(flight, str):
                try:
                    await flight.caller.notify(message)
                except Exception as exc:
                    logger.debug("could not relay a log message: %s", exc)
                return
            if self.rounds.running(upstream.name):
                return  # it belongs to one of several clients' calls: no client sees another's
            for key, entry in self.sessions.entries():
                if entry.logging:
                    await self.sessions.send(key, entry, message)

    async def _tools_changed(self) -> None:
        await self.sessions.broadcast(types.ToolListChangedNotification())
        await self.bus.publish(ToolsListChanged())

    async def watch_pins(self, interval: float = PINS_WATCH_INTERVAL) -> None:
        """Once the user accepts a quarantined tool (here or in another process), list it as accepted.

        Clients are told that the tool list changed, so they see the accepted definition, or the
        accepted new tool, without waiting for the upstream to change again.
        """
        while True:
            await asyncio.sleep(interval)
            try:
                if self.catalog.pins_changed():
                    await self._tools_changed()
            except Exception:
                logger.exception("could not apply a change of the pins file")

    # -- shutdown ------------------------------------------------------------------------------

    def close(self) -> None:
        """End listen streams and deny waiting approvals; recording happens in the waiting tasks."""
        self._listen.close()
        self.broker.close("shutdown", "approver is shutting down")
