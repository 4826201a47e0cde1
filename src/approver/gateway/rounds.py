"""Calls in flight upstream, and the questions their upstreams ask on the way.

While a forwarded call runs, its upstream may ask the client something: sampling, elicitation
or its roots. A 2025-era client is asked on the call's own stream (:meth:`Caller.ask`). A
2026-07-28 client cannot be asked mid-call: its call ends with an ``InputRequiredResult`` (an
*input round*), the upstream call waits, and the client's retry with ``requestState`` carries
the answer back in (:meth:`InputRounds.resume`).

An upstream's request does not say which call caused it (a stdio upstream has one connection
for every client). It goes to the client whose calls are the only ones running on that
upstream; while calls of several clients run there, approver cannot tell, so it refuses the
request rather than guess (:meth:`InputRounds.owner`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import mcp.types as types
from mcp.shared.exceptions import MCPError

from approver.gateway.answers import tool_error
from approver.gateway.callers import Caller

logger = logging.getLogger(__name__)

SUSPEND_TIMEOUT: Final = 300.0
"""Seconds a 2026-era call waits for the client to come back with an answer for its upstream."""

ANSWER_TYPES: Final[dict[str, type[Any]]] = {
    "sampling": types.CreateMessageResult,
    "elicitation": types.ElicitResult,
    "roots": types.ListRootsResult,
}
"""The result type a client's answer must have, by the kind of the upstream's question."""


@dataclass
class InFlight:
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

    flight: InFlight
    key: str
    answer_type: type[Any]
    future: asyncio.Future[Any]
    expiry: asyncio.TimerHandle


class InputRounds:
    """The calls in flight per upstream server, and the 2026-era calls suspended for an answer."""

    def __init__(self) -> None:
        self._in_flight: dict[str, list[InFlight]] = {}
        self._suspended: dict[str, _Suspended] = {}

    @contextmanager
    def flying(self, server: str, flight: InFlight) -> Iterator[None]:
        """Count ``flight`` as running on ``server`` while the block runs."""
        flights = self._in_flight.setdefault(server, [])
        flights.append(flight)
        try:
            yield
        finally:
            flights.remove(flight)

    def running(self, server: str) -> bool:
        """Whether any forwarded call is running on ``server``."""
        return bool(self._in_flight.get(server))

    def owner(self, server: str) -> InFlight | str:
        """The call an upstream request from ``server`` belongs to, or why no call can be named.

        It is the latest call on ``server`` when every call running there comes from one
        principal (the requests of one client go to that client whichever call asked). When
        calls of several clients run there, the request could belong to any of them.
        """
        flights = self._in_flight.get(server)
        if not flights:
            return "requests from an upstream server are only relayed during a tool call from a client"
        clients = {flight.caller.principal for flight in flights}
        if len(clients) > 1:
            return (
                f"calls of {len(clients)} clients are running on server {server!r}, and approver cannot "
                "tell which of them this request belongs to, so it is refused; "
                "retry when the other calls have finished"
            )
        return flights[-1]

    async def drive(self, flight: InFlight) -> types.CallToolResult | types.InputRequiredResult:
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
        self, flight: InFlight, kind: str, request: Any, future: asyncio.Future[Any]
    ) -> types.InputRequiredResult:
        state = secrets.token_urlsafe(24)
        expiry = asyncio.get_running_loop().call_later(SUSPEND_TIMEOUT, self._expire, state)
        self._suspended[state] = _Suspended(flight, kind, ANSWER_TYPES[kind], future, expiry)
        return types.InputRequiredResult(input_requests={kind: request}, request_state=state)

    def _expire(self, state: str) -> None:
        suspended = self._suspended.pop(state, None)
        if suspended is not None:
            suspended.future.cancel()
            suspended.flight.scope.cancel()

    async def resume(
        self, caller: Caller, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        """A 2026-era retry that carries the answer to an upstream's question."""
        state = params.request_state or ""
        suspended = self._suspended.get(state)
        if (
            suspended is None
            or suspended.flight.caller.principal != caller.principal
            or suspended.flight.tool != params.name
        ):
            return tool_error("approver: this request_state is unknown or expired; call the tool again")
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
        return await self.drive(suspended.flight)

    async def upstream_request(self, server: str, kind: str, params: Any) -> Any:
        """Route sampling / elicitation / roots from an upstream to the client whose call is running.

        Refused (an error to the upstream) when no call, or calls of several clients, run there.
        """
        flight = self.owner(server)
        if isinstance(flight, str):
            logger.warning("refused a %s request from upstream %s: %s", kind, server, flight)
            return types.ErrorData(
                code=types.INVALID_REQUEST, message=f"approver refused this {kind} request: {flight}"
            )
        request = _server_request(kind, params)
        if flight.asks is not None:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            await flight.asks.put((kind, request, future))
            return await future
        try:
            return await flight.caller.ask(request, ANSWER_TYPES[kind])
        except MCPError as exc:
            return exc.error
        except Exception as exc:
            logger.warning("relaying %s to %s failed: %s", kind, flight.caller.client, exc)
            return types.ErrorData(
                code=types.INTERNAL_ERROR, message=f"approver could not relay {kind}: {exc}"
            )


def _server_request(kind: str, params: Any) -> Any:
    """The client-bound request for an upstream's sampling / elicitation / roots request."""
    if kind == "sampling":
        return types.CreateMessageRequest(params=params)
    if kind == "elicitation":
        return types.ElicitRequest(params=params)
    return types.ListRootsRequest()
