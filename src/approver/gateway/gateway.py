"""The gateway: one MCP server in front of every upstream, with a decision on every tool call.

Clients see one server whose tools, prompts and resources are the union of all upstreams'
(see :mod:`approver.gateway.catalog` for naming). Every ``tools/call`` goes through
:meth:`Gateway.call_tool`: classify, decide by policy, ask a person through the broker when the
policy says so, commit the decision to the audit log, and only then forward the exact arguments.
Any error on that path denies the call (fail closed). Everything else a client can do against
an upstream (resources, prompts, completion, logging, progress, cancellation, server-to-client
requests during a call) is passed through to the upstream that owns it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import mcp.types as types
from mcp import ClientSession
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from approver import __version__
from approver.approval.broker import ApprovalRequest, Broker, Scope, Verdict
from approver.approval.keepalive import KEEPALIVE_INTERVAL, keepalive, unless_gone
from approver.audit.log import AuditWriteError, DecisionRecord, OutcomeRecord, canonical_json
from approver.audit.recorder import Recorder
from approver.calls import Action, CallContext, Decision
from approver.gateway.callers import Caller, SdkCaller, client_of, session_id_of
from approver.gateway.catalog import Catalog, ToolEntry, list_page
from approver.gateway.disconnect import client_gone
from approver.policy.engine import RateLimiter
from approver.policy.file import PolicyFile
from approver.upstream.connection import Upstream, UpstreamUnavailable

logger = logging.getLogger(__name__)

MAX_LEGACY_SESSIONS = 1024
SUSPEND_TIMEOUT = 300.0
"""Seconds a 2026-era call waits for the client to come back with an answer for its upstream."""
_ARGUMENTS_JSON: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
""":func:`canonical_json`, refusing NaN and Infinity: the SDK parses them, but they are not JSON,
and an upstream would get ``null`` instead of the value that was decided on."""


@dataclass
class _InFlight:
    """A forwarded call, so server-to-client requests from its upstream find their way back."""

    caller: Caller
    tool: str
    asks: asyncio.Queue[tuple[str, Any, asyncio.Future[Any]]] | None = None
    """For 2026-era clients: questions from the upstream, answered through input_required rounds."""
    task: asyncio.Task[types.CallToolResult] | None = None
    """2026-era calls only: their upstream call outlives a request, so it runs in a task of its own.
    A 2025-era call runs in its request's task, and is cancelled with it (by the front door's or
    the SDK's anyio scope for that request)."""
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    """Cancels a task's upstream call. An anyio scope, not ``task.cancel()``: the SDK sends the
    upstream its courtesy ``notifications/cancelled`` from a shielded scope that a native asyncio
    cancellation would cut short."""


@dataclass
class _Suspended:
    """A 2026-era call waiting for the client to retry with the answer to an upstream's question."""

    flight: _InFlight
    key: str
    answer_type: type[Any]
    future: asyncio.Future[Any]
    expiry: asyncio.TimerHandle


@dataclass
class _LegacySession:
    session: ServerSession
    client: str
    subscriptions: set[str] = field(default_factory=set)
    logging: bool = False


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
    ) -> None:
        self.catalog = catalog
        self.policy = policy
        self.recorder = recorder
        self.broker = broker
        self.limiter = RateLimiter()
        self.paused = False
        self.keepalive_interval = keepalive_interval
        self._clock = clock
        self._grants: set[tuple[str, str]] = set()
        self._in_flight: dict[str, list[_InFlight]] = {}
        self._suspended: dict[str, _Suspended] = {}
        self._legacy: dict[str, _LegacySession] = {}
        self._upstream_subscriptions: dict[str, int] = {}
        self.bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self.bus)
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
        return _GatewayServer(
            "approver",
            version=__version__,
            instructions=instructions
            or "approver is a local gateway: tools of several MCP servers, each call checked by policy.",
            on_list_tools=self._list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_subscribe_resource=self._subscribe,
            on_unsubscribe_resource=self._unsubscribe,
            on_subscriptions_listen=self._subscriptions_listen,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_completion=self._complete,
            on_set_logging_level=self._set_logging_level,
            # Without it the SDK runs a whole tools/list for every 2026-era call to check the
            # call's Mcp-Param headers: about a seventh of the gateway's CPU under load.
            get_tool_input_schema=self._tool_input_schema,
        )

    # -- who is asking ------------------------------------------------------------------------

    def _track(self, ctx: ServerRequestContext[Any, Any]) -> _LegacySession | None:
        """Remember a 2025-era session so later notifications can reach it."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None
        key = session_id_of(ctx)
        if key is None:
            return None
        entry = self._legacy.get(key)
        if entry is None:
            if len(self._legacy) >= MAX_LEGACY_SESSIONS:
                self._legacy.pop(next(iter(self._legacy)))
            entry = self._legacy[key] = _LegacySession(ctx.session, client_of(ctx))
        return entry

    def tracks(self, session_id: str) -> bool:
        """Whether a 2025-era session is known, so notifications (list changes, logs) reach it."""
        return session_id in self._legacy

    # -- tools --------------------------------------------------------------------------------

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        entry = self.catalog.tool(name)
        return entry.exposed.input_schema if entry is not None else None

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self._track(ctx)
        return list_page([entry.exposed for entry in self.catalog.tools()], params.cursor if params else None)

    async def call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        """The SDK's handler for ``tools/call``: see :meth:`call`."""
        self._track(ctx)
        if params.request_state is not None:
            return await self._resume(ctx, params)
        return await self.call(SdkCaller(ctx), params.name, params.arguments)

    async def call(
        self, caller: Caller, name: str, arguments: dict[str, Any] | None
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Decide on one tool call and, if allowed, forward it. Never raises to the client.

        Only a 2026-era ``caller`` can get an ``InputRequiredResult`` (the upstream asked a question).
        """
        started = time.monotonic()
        entry = self.catalog.tool(name)
        if entry is None:
            down = self.catalog.unavailable(name)
            return _tool_error(
                f"approver: {down}"
                if down
                else f"approver: unknown tool {name!r}; list the tools again to see what exists"
            )
        client = caller.client
        arguments = dict(arguments or {})
        call_id = self.broker.new_id()
        try:
            argument_bytes = _ARGUMENTS_JSON.encode(arguments).encode()
        except (TypeError, ValueError) as exc:
            return _tool_error(f"approver denied this call: its arguments cannot be encoded ({exc})")
        decision, decided_by, message = await self._decide(caller, entry, arguments, argument_bytes, call_id)
        record = _decision_record(entry, client, call_id, argument_bytes, decision, decided_by, message)
        try:
            await self.recorder.decision(record)
        except AuditWriteError as exc:
            logger.error("audit log write failed; denying %s: %s", entry.ref.name, exc)
            return _tool_error(
                "approver denied this call: the audit log cannot be written, and approver never forwards "
                f"a call it has not recorded ({exc})"
            )
        except Exception as exc:
            logger.exception("audit log write failed unexpectedly")
            return _tool_error(
                f"approver denied this call: the audit log cannot be written ({type(exc).__name__})"
            )
        if decision.action is not Action.ALLOW:
            return _tool_error(f"approver denied this call: {message or decision.reason}")
        return await self._forward(caller, entry, call_id, argument_bytes, started)

    async def _decide(
        self,
        caller: Caller,
        entry: ToolEntry,
        arguments: dict[str, Any],
        argument_bytes: bytes,
        call_id: str,
    ) -> tuple[Decision, str, str]:
        """The decision for one call as (decision, decided_by, message). Any error denies."""
        try:
            if self.paused:
                return (
                    Decision(Action.DENY, "paused", "approver is paused: every call is denied until resumed"),
                    "paused",
                    "",
                )
            client = caller.client
            context = CallContext(client=client, tool=entry.ref, risk=entry.risk, arguments=arguments)
            decision = self.policy.policy.decide(context, self.limiter, self._clock())
            pin = self.catalog.pin_check(entry) if decision.action is not Action.DENY else entry.pin
            if pin.quarantined and decision.action is Action.ALLOW:
                # A changed definition may be a rug pull: a person sees the diff before any call.
                decision = Decision(Action.REQUIRE_APPROVAL, "pin-changed", pin.reason)
            if decision.action is not Action.REQUIRE_APPROVAL:
                return decision, "policy", ""
            session_key = caller.session_key
            if not pin.quarantined and (session_key, entry.ref.name) in self._grants:
                return (
                    Decision(Action.ALLOW, "session-grant", "allowed for this session by the user"),
                    "user",
                    "",
                )
            now = self._clock()
            request = ApprovalRequest(
                id=call_id,
                client=client,
                session=session_key,
                tool=entry.ref,
                risk=entry.risk,
                description=entry.exposed.description or "",
                arguments=argument_bytes,
                received=now,
                deadline=now + self.broker.timeout,
                rule=decision.rule,
                pin_change=(pin.diff or pin.reason) if pin.quarantined else "",
                lookalikes=tuple(self.catalog.lookalikes(entry.ref)),
            )
            try:
                async with keepalive(
                    caller.progress_reporter(), self.broker.timeout, self.keepalive_interval
                ):
                    resolution = await unless_gone(self.broker.submit(request), client_gone(caller.scope))
            except asyncio.CancelledError:
                await self._record_cancelled(entry, client, call_id, argument_bytes, decision)
                raise
            if resolution is None:
                gone = "the client went away while the call waited for approval"
                return Decision(Action.DENY, decision.rule, gone), "cancelled", ""
            if resolution.verdict is Verdict.APPROVED:
                if resolution.scope is not Scope.ONCE:
                    self._grants.add((session_key, entry.ref.name))
                return Decision(Action.ALLOW, decision.rule, "approved by the user"), "user", ""
            action_reason = {
                Verdict.TIMED_OUT: "nobody approved this call in time",
                Verdict.CANCELLED: "the request was withdrawn",
            }.get(resolution.verdict, "denied by the user")
            message = resolution.message or action_reason
            if pin.quarantined:
                message = f"{pin.reason}; {message}"
            return Decision(Action.DENY, decision.rule, message), resolution.decided_by, message
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("decision failed for %s", entry.ref.name)
            return (
                Decision(
                    Action.DENY,
                    "error",
                    f"approver could not decide on this call ({type(exc).__name__}: {exc})",
                ),
                "error",
                "",
            )

    async def _record_cancelled(
        self, entry: ToolEntry, client: str, call_id: str, argument_bytes: bytes, decision: Decision
    ) -> None:
        reason = "the client cancelled or went away while the call waited for approval"
        cancelled = Decision(Action.DENY, decision.rule, reason)
        record = _decision_record(entry, client, call_id, argument_bytes, cancelled, "cancelled", "")
        try:
            # Shielded: the task is being cancelled, but the row must still land.
            await asyncio.shield(self.recorder.decision(record))
        except Exception:
            logger.exception("could not record a cancelled approval")

    async def _forward(
        self, caller: Caller, entry: ToolEntry, call_id: str, argument_bytes: bytes, started: float
    ) -> types.CallToolResult | types.InputRequiredResult:
        flight = _InFlight(caller, entry.ref.name, asyncio.Queue() if caller.modern else None)
        if not caller.modern:
            # Answered within this request: no task of its own (each costs a turn of the event
            # loop). Cancelling the request cancels the call, which tells the upstream.
            return await self._upstream_call(flight, entry, call_id, argument_bytes, started)
        flight.task = asyncio.create_task(
            self._upstream_call(flight, entry, call_id, argument_bytes, started)
        )
        return await self._drive(flight)

    async def _drive(self, flight: _InFlight) -> types.CallToolResult | types.InputRequiredResult:
        """Wait for the upstream's result, or (2026 era) hand its next question to the client."""
        task = flight.task
        assert task is not None
        try:
            if flight.asks is None:
                # Shielded: awaiting a task directly would cancel it natively when this handler
                # is cancelled; the except clause below cancels it through its anyio scope instead.
                return await asyncio.shield(task)
            getter = asyncio.ensure_future(flight.asks.get())
            try:
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not getter.done():
                    getter.cancel()
            if task.done():
                if getter.done() and not getter.cancelled():
                    getter.result()[2].cancel()
                return task.result()
            kind, request, future = getter.result()
            return self._suspend(flight, kind, request, future)
        except asyncio.CancelledError:
            flight.scope.cancel()
            raise

    def _suspend(
        self, flight: _InFlight, kind: str, request: Any, future: asyncio.Future[Any]
    ) -> types.InputRequiredResult:
        state = secrets.token_urlsafe(24)
        expiry = asyncio.get_running_loop().call_later(SUSPEND_TIMEOUT, self._expire, state)
        self._suspended[state] = _Suspended(flight, kind, _ANSWER_TYPES[kind], future, expiry)
        return types.InputRequiredResult(input_requests={kind: request}, request_state=state)

    def _expire(self, state: str) -> None:
        suspended = self._suspended.pop(state, None)
        if suspended is not None:
            suspended.future.cancel()
            suspended.flight.scope.cancel()

    async def _resume(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        """A 2026-era retry that carries the answer to an upstream's question."""
        state = params.request_state or ""
        suspended = self._suspended.get(state)
        caller = SdkCaller(ctx)
        if (
            suspended is None
            or suspended.flight.caller.client != caller.client
            or suspended.flight.tool != params.name
        ):
            return _tool_error("approver: this request_state is unknown or expired; call the tool again")
        del self._suspended[state]
        suspended.expiry.cancel()
        answer = (params.input_responses or {}).get(suspended.key)
        if answer is None:
            suspended.future.set_result(
                types.ErrorData(
                    code=types.INVALID_PARAMS, message=f"the client did not answer {suspended.key}"
                )
            )
        else:
            try:
                dumped = answer.model_dump(by_alias=True, mode="json", exclude_none=True)
                suspended.future.set_result(suspended.answer_type.model_validate(dumped, by_name=False))
            except Exception as exc:
                suspended.future.set_result(
                    types.ErrorData(
                        code=types.INVALID_PARAMS, message=f"unreadable {suspended.key} answer: {exc}"
                    )
                )
        suspended.flight.caller = caller
        return await self._drive(suspended.flight)

    async def _upstream_call(
        self,
        flight: _InFlight,
        entry: ToolEntry,
        call_id: str,
        argument_bytes: bytes,
        started: float,
    ) -> types.CallToolResult:
        """Forward one decided call and record its outcome; owns the call across input rounds."""
        upstream = self.catalog.upstream(entry.ref.server)
        flights = self._in_flight.setdefault(entry.ref.server, [])
        flights.append(flight)
        outcome, error, result_bytes = "error", None, b""
        try:
            # Forward exactly the bytes that were decided on (and shown, when a person approved).
            result: types.CallToolResult | None = None
            with flight.scope:
                relay = self._progress_relay(flight)
                result = await upstream.call_tool(entry.ref.tool, argument_bytes, relay)
            if result is None:
                outcome = "cancelled"
                return _tool_error("approver: the call was cancelled")
            result_bytes = canonical_json(result.model_dump(by_alias=True, mode="json", exclude_none=True))
            outcome = "error" if result.is_error else "ok"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except UpstreamUnavailable as exc:
            error = str(exc)
            return _tool_error(f"approver: {exc}")
        except MCPError as exc:
            error = f"upstream error {exc.error.code}: {exc.error.message}"
            if exc.error.code == types.CONNECTION_CLOSED:
                error = (
                    f"upstream server {entry.ref.server!r} stopped during the call; approver is restarting it"
                )
            return _tool_error(f"approver: {error}")
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("forwarding %s failed", entry.ref.name)
            return _tool_error(f"approver: the call to {entry.ref.name} failed ({error})")
        finally:
            flights.remove(flight)
            record = OutcomeRecord(
                call_id=call_id,
                outcome=outcome,
                duration_ms=(time.monotonic() - started) * 1000.0,
                result_size=len(result_bytes),
                result_sha256=hashlib.sha256(result_bytes).hexdigest() if result_bytes else None,
                error=error,
            )
            # Queued before the client is answered, committed while the answer goes out: the
            # client does not wait for a row that changes nothing about its call.
            self.recorder.outcome_soon(record)

    @staticmethod
    def _progress_relay(flight: _InFlight) -> Any:
        if flight.caller.progress_reporter() is None:
            return None

        async def relay(progress: float, total: float | None, message: str | None) -> None:
            try:
                report = flight.caller.progress_reporter()  # the caller changes across input rounds
                if report is not None:
                    await report(progress, total, message)
            except Exception as exc:
                # The client's stream may be gone between input rounds; progress is best effort.
                logger.debug("progress not relayed: %s", exc)

        return relay

    # -- server-to-client requests from upstreams ---------------------------------------------

    async def upstream_request(self, upstream: Upstream, kind: str, params: Any) -> Any:
        """Route sampling / elicitation / roots from an upstream to the client whose call is running."""
        flights = self._in_flight.get(upstream.name) or []
        if not flights:
            return types.ErrorData(
                code=types.INVALID_REQUEST,
                message=f"approver: {kind} requests are only relayed during a tool call from a client",
            )
        flight = flights[-1]
        request = _server_request(kind, params)
        if flight.asks is not None:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            await flight.asks.put((kind, request, future))
            return await future
        try:
            return await flight.caller.ask(request, _ANSWER_TYPES[kind])
        except MCPError as exc:
            return exc.error
        except Exception as exc:
            logger.warning("relaying %s to %s failed: %s", kind, flight.caller.client, exc)
            return types.ErrorData(
                code=types.INTERNAL_ERROR, message=f"approver could not relay {kind}: {exc}"
            )

    # -- notifications from upstreams ---------------------------------------------------------

    async def upstream_changed(self, upstream: Upstream, what: str) -> None:
        """Rebuild the catalog and tell clients when an upstream's lists change."""
        changed = self.catalog.refresh(upstream)
        if "tools" in changed:
            await self._broadcast(types.ToolListChangedNotification())
            await self.bus.publish(ToolsListChanged())
        if "resources" in changed:
            await self._broadcast(types.ResourceListChangedNotification())
            await self.bus.publish(ResourcesListChanged())
        if "prompts" in changed:
            await self._broadcast(types.PromptListChangedNotification())
            await self.bus.publish(PromptsListChanged())

    async def upstream_notification(self, upstream: Upstream, message: types.ServerNotification) -> None:
        """Forward log messages and resource updates to the clients that want them."""
        if isinstance(message, types.ResourceUpdatedNotification):
            uri = str(message.params.uri)
            for key, entry in list(self._legacy.items()):
                if uri in entry.subscriptions:
                    await self._send(key, entry, message)
            await self.bus.publish(ResourceUpdated(uri=uri))
        elif isinstance(message, types.LoggingMessageNotification):
            flights = self._in_flight.get(upstream.name) or []
            if flights:
                try:
                    await flights[-1].caller.notify(message)
                except Exception as exc:
                    logger.debug("could not relay a log message: %s", exc)
                return
            for key, entry in list(self._legacy.items()):
                if entry.logging:
                    await self._send(key, entry, message)

    async def _broadcast(self, notification: types.ServerNotification) -> None:
        for key, entry in list(self._legacy.items()):
            await self._send(key, entry, notification)

    async def _send(self, key: str, entry: _LegacySession, notification: types.ServerNotification) -> None:
        try:
            await entry.session.send_notification(notification)
        except Exception as exc:
            logger.debug("session %s is gone (%s); forgetting it", key, exc)
            self._legacy.pop(key, None)

    # -- resources ----------------------------------------------------------------------------

    async def _list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        self._track(ctx)
        return types.ListResourcesResult(resources=self.catalog.resources())

    async def _list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        self._track(ctx)
        return types.ListResourceTemplatesResult(resource_templates=self.catalog.templates())

    async def _read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        self._track(ctx)
        upstream = self._resource_owner(params.uri)
        session = self._session_or_error(upstream)
        result: types.ReadResourceResult = await session.read_resource(params.uri)
        return result

    async def _subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        entry = self._track(ctx)
        uri = str(params.uri)
        await self._upstream_subscribe(uri)
        if entry is not None:
            entry.subscriptions.add(uri)
        return types.EmptyResult()

    async def _unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        entry = self._track(ctx)
        uri = str(params.uri)
        if entry is not None and uri in entry.subscriptions:
            entry.subscriptions.discard(uri)
            await self._upstream_unsubscribe(uri)
        return types.EmptyResult()

    async def _upstream_subscribe(self, uri: str) -> None:
        count = self._upstream_subscriptions.get(uri, 0)
        if count == 0:
            session = self._session_or_error(self._resource_owner(uri))
            await session.send_request(
                types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri)), types.EmptyResult
            )
        self._upstream_subscriptions[uri] = count + 1

    async def _upstream_unsubscribe(self, uri: str) -> None:
        count = self._upstream_subscriptions.get(uri, 0)
        if count <= 1:
            self._upstream_subscriptions.pop(uri, None)
            try:
                session = self._session_or_error(self._resource_owner(uri))
                await session.send_request(
                    types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri)),
                    types.EmptyResult,
                )
            except MCPError as exc:
                logger.debug("unsubscribe %s upstream failed: %s", uri, exc)
        else:
            self._upstream_subscriptions[uri] = count - 1

    async def _subscriptions_listen(
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

    def _resource_owner(self, uri: str) -> Upstream:
        upstream = self.catalog.resource_owner(str(uri))
        if upstream is None:
            raise MCPError(types.INVALID_PARAMS, f"approver: no upstream server offers the resource {uri}")
        return upstream

    @staticmethod
    def _session_or_error(upstream: Upstream) -> ClientSession:
        try:
            return upstream.session_or_raise()
        except UpstreamUnavailable as exc:
            raise MCPError(types.INTERNAL_ERROR, f"approver: {exc}") from None

    # -- prompts and completion ---------------------------------------------------------------

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        self._track(ctx)
        return types.ListPromptsResult(prompts=self.catalog.prompts())

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        self._track(ctx)
        found = self.catalog.prompt(params.name)
        if found is None:
            raise MCPError(types.INVALID_PARAMS, f"approver: unknown prompt {params.name!r}")
        upstream, original = found
        session = self._session_or_error(upstream)
        result = await session.get_prompt(original, params.arguments)
        assert isinstance(result, types.GetPromptResult)  # input_required is not allowed upstream
        return result

    async def _complete(
        self, ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            found = self.catalog.prompt(ref.name)
            if found is None:
                raise MCPError(types.INVALID_PARAMS, f"approver: unknown prompt {ref.name!r}")
            upstream, original = found
            ref = types.PromptReference(name=original, title=ref.title)
        else:
            owner = self.catalog.template_owner(ref.uri)
            if owner is None:
                raise MCPError(types.INVALID_PARAMS, f"approver: no upstream server offers {ref.uri}")
            upstream = owner
        session = self._session_or_error(upstream)
        context = params.context.arguments if params.context is not None else None
        return await session.complete(ref, params.argument.model_dump(), context_arguments=context)

    # -- logging ------------------------------------------------------------------------------

    async def _set_logging_level(
        self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        entry = self._track(ctx)
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

    # -- shutdown ------------------------------------------------------------------------------

    def close(self) -> None:
        """End listen streams and deny waiting approvals; recording happens in the waiting tasks."""
        self._listen.close()
        self.broker.close("shutdown", "approver is shutting down")


_ANSWER_TYPES: dict[str, type[Any]] = {
    "sampling": types.CreateMessageResult,
    "elicitation": types.ElicitResult,
    "roots": types.ListRootsResult,
}


def _server_request(kind: str, params: Any) -> Any:
    """The client-bound request for an upstream's sampling / elicitation / roots request."""
    if kind == "sampling":
        return types.CreateMessageRequest(params=params)
    if kind == "elicitation":
        return types.ElicitRequest(params=params)
    return types.ListRootsRequest()


def _decision_record(
    entry: ToolEntry,
    client: str,
    call_id: str,
    argument_bytes: bytes,
    decision: Decision,
    decided_by: str,
    message: str,
) -> DecisionRecord:
    """The audit row for one decision."""
    return DecisionRecord(
        call_id=call_id,
        client=client,
        server=entry.ref.server,
        tool=entry.ref.name,
        upstream_tool=entry.ref.tool,
        risk_class=entry.risk.risk_class.value,
        risk_level=entry.risk.level.value,
        risk_reasons=list(entry.risk.reasons),
        arguments=argument_bytes,
        decision=decision.action.value,
        decided_by=decided_by,
        rule=decision.rule,
        reason=message or decision.reason,
    )


def _tool_error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
