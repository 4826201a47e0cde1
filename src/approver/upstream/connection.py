"""Connections to upstream MCP servers: one long-lived task owns each connection.

An :class:`Upstream` connects (stdio subprocess or Streamable HTTP), initializes a
``ClientSession``, fetches the server's catalog (tools, resources, templates, prompts) and keeps
it current on ``list_changed`` notifications. When the connection ends (a crashed subprocess, a
dropped HTTP server) it restarts with exponential backoff. Its visible state is
:class:`UpstreamStatus`. The gateway talks to it only through :meth:`Upstream.call_tool`,
:meth:`Upstream.session_or_raise` and the hooks it passes in.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.session import ClientRequestContext
from mcp.shared.dispatcher import ProgressFnT

from approver import __version__
from approver.audit.redact import Redactor
from approver.config.servers import ServerConfig
from approver.upstream.lane import ToolLane, lane_suits
from approver.upstream.limits import BoundedTransport
from approver.upstream.listing import ListPage, Refresher, list_all
from approver.upstream.oauth.provider import UpstreamOAuth
from approver.upstream.oauth.store import CredentialStore
from approver.upstream.remote import open_remote, sign_in_hint, until_signed_in
from approver.upstream.status import (
    UpstreamState,
    UpstreamStatus,
    UpstreamUnavailable,
    describe_error,
    last_lines,
)
from approver.upstream.stderr_log import ROTATE_BYTES, RedactingLog
from approver.upstream.stdio_link import StdioLink, open_stdio_link

logger = logging.getLogger(__name__)

INITIALIZE_TIMEOUT = 30.0
"""Seconds an upstream gets to answer ``initialize`` before it counts as failed."""
BACKOFF_START = 0.5
BACKOFF_MAX = 60.0
STABLE_AFTER = 10.0
"""Seconds of uptime after which a crash restarts the backoff from the start."""
LOG_ROTATE_BYTES = ROTATE_BYTES
STDERR_DRAIN_TIMEOUT = 1.0
"""Seconds to wait for an exited server's last stderr lines before quoting the log."""


ServerRequestHook = Callable[["Upstream", str, Any], Awaitable[Any]]
"""(upstream, kind, params) -> result, for sampling / elicitation / roots asked by an upstream."""


@dataclass
class UpstreamHooks:
    """How an upstream tells the gateway about changes; all optional."""

    changed: Callable[[Upstream, str], Awaitable[None]] | None = None
    """Called with "state", "tools", "resources" or "prompts"."""
    notification: Callable[[Upstream, types.ServerNotification], Awaitable[None]] | None = None
    """Upstream notifications the gateway forwards (log messages, resource updates)."""
    server_request: ServerRequestHook | None = None


@dataclass
class Catalog:
    """What one upstream offers, as last listed."""

    tools: list[types.Tool] = field(default_factory=list)
    resources: list[types.Resource] = field(default_factory=list)
    templates: list[types.ResourceTemplate] = field(default_factory=list)
    prompts: list[types.Prompt] = field(default_factory=list)


class Upstream:
    """One configured upstream server and the task that keeps it connected."""

    def __init__(
        self,
        config: ServerConfig,
        logs_dir: Path,
        hooks: UpstreamHooks | None = None,
        redactor: Redactor | None = None,
        credentials: CredentialStore | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self._logs_dir = logs_dir
        self._redactor = redactor or Redactor()
        """Keeps secrets out of the stderr log and of :attr:`error` (which clients and logs see)."""
        self._stderr: RedactingLog | None = None
        self._credentials = credentials
        """Where sign-in credentials live (default: the system keyring, opened on first use)."""
        self._auth: UpstreamOAuth | None = None
        """The current HTTP connection's OAuth client, if the server signs in."""
        self._hooks = hooks or UpstreamHooks()
        self.catalog = Catalog()
        self.session: ClientSession | None = None
        self._lane: ToolLane | None = None
        """Set while connected when tool calls may skip the session (see :mod:`approver.upstream.lane`)."""
        self.lane_calls = 0
        """Tool calls sent through a lane so far, over every connection (for tests and benchmarks)."""
        self.capabilities: types.ServerCapabilities | None = None
        self.instructions: str | None = None
        self.state = UpstreamState.STARTING
        self.error: str | None = None
        self.restarts = 0
        self._retry_at: float | None = None
        self._stop = anyio.Event()
        self._restart_pending = False
        self._wake = anyio.Event()
        """Set by :meth:`request_restart` and :meth:`stop`; replaced only once nothing is pending,
        so a request that arrives while the run task is busy elsewhere is never lost."""
        self._ready = anyio.Event()
        self._ended_once = anyio.Event()
        self._state_changed = anyio.Event()
        self._list_notes: dict[str, str] = {}
        """Why a listing stopped short (a limit of :mod:`approver.upstream.limits`), by list."""
        self.refresher: Refresher | None = None
        """Refreshes the lists on ``list_changed`` while connected."""
        self._http: BoundedTransport | None = None

    # -- status -------------------------------------------------------------------------------

    def status(self) -> UpstreamStatus:
        """A snapshot of this upstream's visible state."""
        retry_in = max(0.0, self._retry_at - time.monotonic()) if self._retry_at is not None else None
        error = "; ".join(filter(None, [self.error, *self._list_notes.values()])) or None
        return UpstreamStatus(self.name, self.state, error, self.restarts, len(self.catalog.tools), retry_in)

    @property
    def log_file(self) -> Path:
        """Where this upstream's stderr goes."""
        return self._logs_dir / f"{self.name}.log"

    def stderr_drained(self, timeout: float) -> bool:
        """Block up to ``timeout`` s until the last stdio connection's stderr is all in :attr:`log_file`."""
        return self._stderr is None or self._stderr.drained(timeout)

    async def wait_for_state(self, state: UpstreamState) -> None:
        """Return once the upstream is in ``state`` (bound it with a timeout)."""
        while self.state is not state:
            await self._state_changed.wait()

    async def wait_settled(self) -> None:
        """Return once the first connection attempt has either succeeded or failed."""
        await self._ended_once.wait()

    @property
    def sign_in_reason(self) -> str | None:
        """Why the server wants a person to sign in, as soon as its connection knows; else None."""
        return str(self._auth.sign_in_needed) if self._auth and self._auth.sign_in_needed else None

    def session_or_raise(self) -> ClientSession:
        """The live session, or UpstreamUnavailable saying why there is none."""
        if self.state is UpstreamState.NEEDS_SIGN_IN:
            raise UpstreamUnavailable(
                f"upstream server {self.name!r} needs sign-in ({self.error}): {sign_in_hint(self.name)}"
            )
        if self.session is None or self.state is not UpstreamState.READY:
            detail = f": {self.error}" if self.error else ""
            raise UpstreamUnavailable(f"upstream server {self.name!r} is {self.state.value}{detail}")
        return self.session

    async def call_tool(
        self, tool: str, arguments: bytes, progress: ProgressFnT | None = None
    ) -> types.CallToolResult:
        """Call ``tool`` with ``arguments`` (a JSON object, UTF-8): through the lane if any, else the session.

        Raises UpstreamUnavailable when not connected and MCPError for an error answer.
        """
        session = self.session_or_raise()
        if self._lane is not None:
            self.lane_calls += 1
            return await self._lane.call_tool(tool, arguments, progress)
        return await session.call_tool(tool, json.loads(arguments), progress_callback=progress)

    def request_restart(self) -> None:
        """Drop the current connection (if any) and connect again now."""
        self._restart_pending = True
        self._wake.set()

    def stop(self) -> None:
        """Ask the run task to close the connection and end."""
        self._stop.set()
        self._wake.set()

    def _fresh_wake(self) -> anyio.Event:
        """The event to wait on for the next restart or stop request."""
        if self._wake.is_set() and not (self._restart_pending or self._stop.is_set()):
            self._wake = anyio.Event()
        return self._wake

    # -- the owning task ----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, and reconnect with backoff until :meth:`stop`; never raises."""
        backoff = BACKOFF_START
        while not self._stop.is_set():
            started = time.monotonic()
            self._restart_pending = False  # this attempt is the restart anyone asked for so far
            self._auth = None
            try:
                await self._connect_and_serve()
            except anyio.get_cancelled_exc_class():
                raise
            except BaseException as exc:
                self.error = self._redactor.redact_text(describe_error(exc, INITIALIZE_TIMEOUT))
                if self._auth is None or self._auth.sign_in_needed is None:  # that one is told below
                    logger.warning("upstream %s failed: %s", self.name, self.error)
            finally:
                self.session = None
                self._lane = None
                self._ready = anyio.Event()
            if self._stop.is_set():
                break
            if self._auth is not None and self._auth.sign_in_needed is not None and not self._restart_pending:
                await self._wait_for_sign_in(str(self._auth.sign_in_needed))
                backoff = BACKOFF_START
                continue
            if self._restart_pending:
                # Someone asked for a fresh connection: reconnect now, and it is not a failure.
                self.error = None
                self.restarts += 1
                await self._set_state(UpstreamState.RESTARTING)
                continue
            if time.monotonic() - started > STABLE_AFTER:
                backoff = BACKOFF_START
            self.error = self.error or "the connection ended"
            # "failed" only until the first connection: a crash after that is a restart.
            never_ready = self.restarts == 0 and self.state is not UpstreamState.READY
            await self._set_state(UpstreamState.FAILED if never_ready else UpstreamState.RESTARTING)
            self._ended_once.set()
            self._retry_at = time.monotonic() + backoff
            with anyio.move_on_after(backoff):
                await self._fresh_wake().wait()
            self._retry_at = None
            backoff = min(backoff * 2, BACKOFF_MAX)
            self.restarts += 1
            await self._set_state(UpstreamState.RESTARTING)
        await self._set_state(UpstreamState.STOPPED)
        self._ended_once.set()

    async def _wait_for_sign_in(self, reason: str) -> None:
        """Show "needs sign-in" until new credentials arrive, a restart is asked for, or stop."""
        auth, store = self._auth, self._credentials  # both set by _open for a server that signs in
        assert auth is not None and store is not None and self.config.url is not None
        self.error = reason
        logger.warning("upstream %s: Sign in needed (%s): %s", self.name, reason, sign_in_hint(self.name))
        await self._set_state(UpstreamState.NEEDS_SIGN_IN)
        self._ended_once.set()
        await until_signed_in(store, self.config.url, auth.record, self._fresh_wake())
        self.error = None
        await self._set_state(UpstreamState.RESTARTING)

    async def _connect_and_serve(self) -> None:
        async with AsyncExitStack() as stack:
            read, write, link = await self._open(stack)
            if self._stderr is not None:
                self._stderr.spawned()
            ended = anyio.Event()
            relay_send, relay_recv = anyio.create_memory_object_stream[Any](0)
            lane = None
            if link is not None:
                lane = ToolLane(link.send_line)
                link.claim = partial(self._claim, lane)
                stack.callback(lane.close)

            async def relay() -> None:
                # Sits between transport and session so we notice the connection ending.
                async with relay_send:
                    async for message in read:
                        await relay_send.send(message)
                if lane is not None:
                    lane.close()
                ended.set()

            group = await stack.enter_async_context(anyio.create_task_group())
            group.start_soon(relay)
            self.refresher = Refresher(self._refresh, group)
            session = await stack.enter_async_context(
                ClientSession(
                    relay_recv,
                    write,
                    sampling_callback=self._on_sampling,
                    elicitation_callback=self._on_elicitation,
                    list_roots_callback=self._on_roots,
                    message_handler=self._on_message,
                    client_info=types.Implementation(name="approver", version=__version__),
                )
            )
            with anyio.fail_after(INITIALIZE_TIMEOUT):
                result = await session.initialize()
            self.capabilities = result.capabilities
            self.instructions = result.instructions
            self.session = session
            if lane is not None and lane_suits(self.config.transport, result.protocol_version):
                self._lane = lane
            await self._refresh_all(session)
            self.error = None
            await self._set_state(UpstreamState.READY)
            self._ready.set()
            self._ended_once.set()
            async with anyio.create_task_group() as waiters:

                async def until(event: anyio.Event) -> None:
                    await event.wait()
                    waiters.cancel_scope.cancel()

                waiters.start_soon(until, ended)
                waiters.start_soon(until, self._fresh_wake())
            self.session = None
            self._lane = None
            self.refresher = None
            if ended.is_set() and not self._stop.is_set():
                if self._stderr is not None:  # let its last lines reach the file before quoting them
                    await anyio.to_thread.run_sync(self._stderr.drained, STDERR_DRAIN_TIMEOUT)
                self.error = self._exit_description(link)
            group.cancel_scope.cancel()

    async def _open(self, stack: AsyncExitStack) -> tuple[Any, Any, StdioLink | None]:
        """Connect; returns the session's read and write streams, and the stdio link if there is one."""
        config = self.config
        if config.transport == "http":
            if self._credentials is None and config.signs_in:
                self._credentials = CredentialStore()
            self._http = BoundedTransport()
            read, write, self._auth = await open_remote(config, stack, self._credentials, self._http)
            return read, write, None
        assert config.command is not None
        # Upstream stderr may echo secrets from its environment: it is copied to the log redacted.
        self._stderr = RedactingLog(self.log_file, self._redactor, f"starting {self.name}")
        stack.callback(self._stderr.close)
        params = StdioServerParameters(
            command=config.command,
            args=list(config.args),
            env=dict(config.env) or None,
            cwd=config.cwd,
        )
        if sys.platform == "win32":  # the SDK's transport knows Windows' process handling
            read, write = await stack.enter_async_context(stdio_client(params, errlog=self._stderr.stream))
            return read, write, None
        link = await stack.enter_async_context(open_stdio_link(params, self._stderr.stream))
        return link.read, link.write, link

    def _exit_description(self, link: StdioLink | None) -> str:
        failure = link.failure if link is not None else self._http.failure if self._http is not None else None
        if failure is not None:
            logger.warning("upstream %s: %s", self.name, failure)
            return failure
        if self.config.transport == "http":
            return "the HTTP connection closed"
        tail = last_lines(self.log_file, 3)
        return "the server process exited" + (f"; its last stderr lines: {tail}" if tail else "")

    async def _set_state(self, state: UpstreamState) -> None:
        if state is self.state:
            return
        self.state = state
        changed, self._state_changed = self._state_changed, anyio.Event()
        changed.set()
        await self._emit("state")

    async def _emit(self, what: str) -> None:
        if self._hooks.changed is not None:
            try:
                await self._hooks.changed(self, what)
            except Exception:
                logger.exception("upstream change hook failed")

    # -- catalog ------------------------------------------------------------------------------

    async def _refresh_all(self, session: ClientSession) -> None:
        caps = self.capabilities
        if caps is None or caps.tools is not None:
            self.catalog.tools = await self._list(session.list_tools, "tools")
        if caps is not None and caps.resources is not None:
            self.catalog.resources = await self._list(session.list_resources, "resources")
            self.catalog.templates = await self._list(session.list_resource_templates, "resource_templates")
        if caps is not None and caps.prompts is not None:
            self.catalog.prompts = await self._list(session.list_prompts, "prompts")

    async def _list(self, list_page: ListPage, field: str) -> list[Any]:
        """One whole list (within the limits; a listing stopped short is noted in the status)."""
        items, note = await list_all(list_page, field)
        if note is None:
            self._list_notes.pop(field, None)
        else:
            self._list_notes[field] = note
            logger.warning("upstream %s: %s", self.name, note)
        return items

    def _claim(self, lane: ToolLane, message: dict[str, Any]) -> bool:
        """Take a stdio server's message before the SDK's session parses it: the lane's answers,
        and list changes, which only mark a list for the refresher (a flood of them then costs
        a JSON parse each, not a pydantic model and a task each)."""
        kind = _LIST_CHANGE_METHODS.get(message.get("method")) if "id" not in message else None
        if kind is not None and self.refresher is not None and self.session is not None:
            self.refresher.changed(kind)
            return True
        return lane.take(message)

    async def _refresh(self, kind: str) -> None:
        """Fetch one list again after the server said it changed, and tell the gateway."""
        session = self.session
        if session is None:
            return
        try:
            if kind == "tools":
                self.catalog.tools = await self._list(session.list_tools, "tools")
            elif kind == "resources":
                self.catalog.resources = await self._list(session.list_resources, "resources")
                self.catalog.templates = await self._list(
                    session.list_resource_templates, "resource_templates"
                )
            else:
                self.catalog.prompts = await self._list(session.list_prompts, "prompts")
        except Exception as exc:  # the connection may have gone meanwhile; its run loop reports that
            logger.warning("upstream %s: refreshing its %s failed: %s", self.name, kind, exc)
            return
        await self._emit(kind)

    # -- messages from the upstream -----------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            logger.warning("upstream %s sent something unreadable: %s", self.name, message)
            return
        changed = _LIST_CHANGE_METHODS.get(getattr(message, "method", None))
        if changed is not None:
            if self.refresher is not None and self.session is not None:
                self.refresher.changed(changed)  # folded with others, not a relisting each
        elif self._hooks.notification is not None:
            await self._hooks.notification(self, message)

    async def _server_request(self, kind: str, params: Any) -> Any:
        if self._hooks.server_request is None:
            return types.ErrorData(code=types.METHOD_NOT_FOUND, message=f"approver cannot answer {kind} here")
        return await self._hooks.server_request(self, kind, params)

    async def _on_sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> Any:
        return await self._server_request("sampling", params)

    async def _on_elicitation(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> Any:
        return await self._server_request("elicitation", params)

    async def _on_roots(self, context: ClientRequestContext) -> Any:
        return await self._server_request("roots", None)


_LIST_CHANGE_METHODS: dict[Any, str] = {
    "notifications/tools/list_changed": "tools",
    "notifications/resources/list_changed": "resources",
    "notifications/prompts/list_changed": "prompts",
}
