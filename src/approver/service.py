"""The composition root: wires config, policy, audit, broker, upstreams and the HTTP door.

``approver serve`` runs :class:`Service` on a plain asyncio loop; the desktop app runs the very
same object on its qasync loop and attaches its approval window to :attr:`Service.broker`.
Nothing else in the core constructs these parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings

from approver.approval.broker import DEFAULT_APPROVAL_TIMEOUT, ApprovalRequest, Broker
from approver.audit.log import AuditLog
from approver.audit.otlp import make_export
from approver.audit.recorder import Recorder
from approver.audit.redact import Redactor, redact_logs
from approver.config.paths import Paths, write_private_text
from approver.config.patience import Patience
from approver.config.servers import SecretResolver, ServerConfig, ServersConfig, load_servers
from approver.config.settings import load_settings
from approver.config.tokens import TokenStore
from approver.errors import ApproverError
from approver.events import (
    EventHub,
    PausedChanged,
    PolicyChanged,
    ServersReloaded,
    ToolChanged,
    UpstreamChanged,
)
from approver.gateway.catalog import Catalog
from approver.gateway.fastcall import FastCalls
from approver.gateway.front import DEFAULT_PORT, MCP_PATH, build_app, check_loopback
from approver.gateway.gateway import Gateway
from approver.gateway.hooks import AgentHooks
from approver.gateway.http_limits import HttpLimits, guarded_protocol
from approver.gateway.reload import ServersReload
from approver.gateway.runtime import HOST as HOST  # re-exported: commands import the light module
from approver.gateway.runtime import RuntimeInfo as RuntimeInfo
from approver.gateway.runtime import read_runtime as read_runtime
from approver.gateway.session_quota import SessionQuota
from approver.policy.editing import (
    add_allow_rule,
    always_allow_section,
    load_policy_data,
    policy_rule_for_always_allow,
    write_policy,
)
from approver.policy.engine import Policy
from approver.policy.file import PolicyFile
from approver.policy.pins import PinStore
from approver.policy.scoped import ArgumentChoice, RuleScope, ScopedRule, choices_for, with_scoped_rule
from approver.policy.scoped import origin as rule_origin
from approver.policy.simulate import RulePreview, logged_calls, preview_rule
from approver.upstream.connection import Upstream, UpstreamHooks
from approver.upstream.oauth.signin import ShowUrl, SignInResult, sign_in
from approver.upstream.oauth.store import CredentialStore

logger = logging.getLogger(__name__)

IDLE_CONNECTION_TIMEOUT: Final = 75
"""Seconds the gateway keeps an idle client connection open (uvicorn's default is 5)."""

PROBE_TIMEOUT: Final = 1.0
"""Seconds to wait for whatever holds a port to answer an HTTP request."""


class PortInUseError(ApproverError):
    """The gateway's port is taken."""


def describe_holder(paths: Paths, port: int, host: str = HOST) -> str:
    """Who holds ``port``, in words: this data directory's approver, another approver, or another program.

    Another approver is recognised by its front door: a request without a token gets 401 with
    ``WWW-Authenticate: Bearer realm="approver"``.
    """
    running = read_runtime(paths)
    if running is not None and running.port == port:
        what = "approver's desktop app" if running.app == "desktop" else "`approver serve`"
        return f"{what} for this data directory (pid {running.pid})"
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", MCP_PATH)
        response = connection.getresponse()
        challenge = response.getheader("www-authenticate", "")
        recognised = response.status == 401 and 'realm="approver"' in challenge
    except (OSError, http.client.HTTPException):
        recognised = False
    finally:
        connection.close()
    if recognised:
        return "another approver, one with another data directory (such as `approver demo`)"
    return "another program"


def free_port(host: str = HOST, after: int = DEFAULT_PORT) -> int:
    """A port that can be bound now: the first free one of the next few after ``after``, else any."""
    for candidate in [*range(after + 1, min(after + 21, 65536)), 0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise PortInUseError(f"no free port on {host}")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or PortInUseError saying what to do."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on the connections of a socket that says it
    # is TCP. Without it a response written as two sends (headers, then body) waits for the
    # client's delayed ACK (40 ms) before its body leaves (Nagle's algorithm).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUseError(
            f"port {port} on {host} is in use ({exc.strerror}). Another approver may be running "
            f"(`approver url` shows it), or another program uses the port: start approver with "
            f"--port N to use another port."
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _QuietServer(uvicorn.Server):
    """uvicorn without its own SIGINT/SIGTERM handling: the caller owns shutdown, so waiting
    calls are denied and recorded before the HTTP server goes away."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Service:
    """Everything ``approver serve`` runs, built from the config and data directories."""

    def __init__(
        self,
        paths: Paths,
        *,
        port: int = DEFAULT_PORT,
        host: str = HOST,
        approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT,
        resolver: SecretResolver | None = None,
        token_store: TokenStore | None = None,
        app: str = "serve",
        credentials: CredentialStore | None = None,
        http_limits: HttpLimits | None = None,
    ) -> None:
        """``app`` says who runs the service (``desktop`` or ``serve``), in ``gateway.json``."""
        self.paths = paths
        self.app = app
        self.http_limits = http_limits or HttpLimits()
        """What one client connection may take of the HTTP server (gateway/http_limits.py)."""
        self.host = check_loopback(host)
        self.port = port
        paths.ensure()
        self.events = EventHub()
        resolver = resolver or SecretResolver()
        servers: ServersConfig = load_servers(paths.servers_file, resolver)
        self.settings = load_settings(paths.settings_file, resolver)
        self.policy = PolicyFile(paths.policy_file)
        self.policy.load()
        self.policy.on_status(lambda error: self.events.publish(PolicyChanged(error)))
        self.redactor = Redactor(servers.secrets)
        self.audit = AuditLog(paths.audit_db, self.redactor)
        self.recorder = Recorder(self.audit, self.events)
        self.otlp = make_export(self.settings.otlp, self.audit, self.events)
        """The OpenTelemetry export of audit events; None unless settings.json turns it on."""
        self.broker = Broker(timeout=approval_timeout)
        self.tokens = token_store or TokenStore(paths.tokens_file)
        self.credentials = credentials or CredentialStore()
        """Where sign-in credentials of remote upstreams are kept (the system keyring)."""
        hooks = UpstreamHooks(changed=self._upstream_changed)

        def make_upstream(config: ServerConfig) -> Upstream:
            return Upstream(config, paths.logs_dir, hooks, self.redactor, self.credentials)

        self.upstreams = {config.name: make_upstream(config) for config in servers.enabled}
        """The running upstreams by name; a servers.json reload changes this dict in place."""
        self.pins = PinStore(paths.pins_file)
        self.pins.on_changed = lambda server, tool: self.events.publish(ToolChanged(server, tool))
        self.catalog = Catalog(self.upstreams, self.policy, self.pins)
        self.patience = Patience(paths.settings_file)
        """Each client's patience for held calls (settings.json)."""
        self.gateway = Gateway(
            self.catalog, self.policy, self.recorder, self.broker, patience=self.patience.for_client
        )
        self.hooks = AgentHooks(self.gateway.tools, protected=(paths.config_dir, paths.data_dir))
        """Answers agents' hooks (``approver hook claude-code``) at ``/hooks/<agent>``."""
        hooks.notification = self.gateway.upstream_notification
        hooks.server_request = self.gateway.upstream_request
        self.policy.on_change(self.catalog.reclassify)
        self.servers_reload = ServersReload(
            paths.servers_file,
            resolver,
            servers,
            self.upstreams,
            make_upstream,
            self.catalog,
            self.gateway,
            self.redactor,
            self.events.publish,
        )
        """Applies servers.json edits while running (see :mod:`approver.gateway.reload`)."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._uvicorn: uvicorn.Server | None = None
        self.fast: FastCalls | None = None
        """The front door's fast path for 2025-era tool calls, once serving."""
        self._socket: socket.socket | None = None
        self._unredact_logs: Callable[[], None] = lambda: None

    @property
    def servers(self) -> ServersConfig:
        """The servers.json the running servers come from (the last version that loaded)."""
        return self.servers_reload.servers

    async def reload_servers(self) -> ServersReloaded:
        """Apply servers.json now (it is also applied within a second of any change)."""
        return await self.servers_reload.reload()

    async def _upstream_changed(self, upstream: Upstream, what: str) -> None:
        # The catalog first (a window told of new tools reads them from it at once), then the
        # event, at once (a window follows the state as it changes), then the clients.
        changed = self.gateway.catalog.refresh(upstream)
        self.events.publish(UpstreamChanged(upstream.name, what))
        await self.gateway.lists_changed(changed)

    # -- controls for a front-end (never reachable by an agent) ---------------------------------

    @property
    def paused(self) -> bool:
        """Whether every new call is being denied."""
        return self.gateway.paused

    def pause(self) -> int:
        """Deny every new call until :meth:`resume`, and deny the calls waiting now (returns how many)."""
        self.gateway.paused = True
        denied = self.broker.deny_all("paused", "approver was paused: every call is denied until resumed")
        self.events.publish(PausedChanged(True))
        return denied

    def resume(self) -> None:
        """Let calls through to the policy again."""
        self.gateway.paused = False
        self.events.publish(PausedChanged(False))

    def restart_upstream(self, name: str) -> None:
        """Reconnect one upstream now (a stdio server is restarted). KeyError for an unknown name."""
        self.upstreams[name].request_restart()

    async def sign_in(self, name: str, show_url: ShowUrl) -> SignInResult:
        """Sign in to upstream ``name`` (a person asked to); it then reconnects with the new tokens.

        KeyError for an unknown name; SignInError when the sign-in does not complete.
        """
        result = await sign_in(self.upstreams[name].config, show_url, self.credentials)
        self.restart_upstream(name)
        return result

    def reload_policy(self) -> str | None:
        """Reload policy.json now; returns the load error, or None when the file is fine."""
        self.policy.load()
        return self.policy.error

    def always_allow_rule(self, request: ApprovalRequest) -> str:
        """The rule :meth:`always_allow` would add, as the JSON the user will find in the file."""
        target = request.request or request.tool
        fragment = {always_allow_section(target): policy_rule_for_always_allow(target)}
        return json.dumps(fragment, indent=2, ensure_ascii=False)

    def always_allow(self, request: ApprovalRequest) -> None:
        """Add the rule from :meth:`always_allow_rule` to policy.json and load it.

        Raises ConfigError (file untouched) when the current file is invalid: the caller must
        not treat the call as approved then.
        """
        add_allow_rule(self.paths.policy_file, request.request or request.tool)
        if self.reload_policy() is not None:
            raise ApproverError(f"the policy file did not load after adding the rule: {self.policy.error}")

    # -- "Always approve…" with a scope (approval dialog) -----------------------------------------

    def rule_choices(self, request: ApprovalRequest) -> dict[str, list[ArgumentChoice]]:
        """How a rule can match each argument of ``request``'s call (see :func:`choices_for`)."""
        try:
            arguments = json.loads(request.arguments)
        except ValueError:
            return {}
        return choices_for(arguments) if isinstance(arguments, dict) else {}

    def draft_rule(self, request: ApprovalRequest, scope: RuleScope) -> ScopedRule:
        """The policy as it would be with the rule for ``scope``; ConfigError when it cannot be made."""
        return with_scoped_rule(
            load_policy_data(self.paths.policy_file),
            request.tool,
            request.risk,
            request.client,
            scope,
            rule_origin(request.id, request.tool, request.client),
        )

    def preview_rule(self, request: ApprovalRequest, draft: ScopedRule, calls: int = 200) -> RulePreview:
        """What the drafted rule would have decided over the tool's last ``calls`` calls in the audit log.

        Reads the log on its own connection: safe to run on a worker thread.
        """
        if not self.paths.audit_db.exists():
            return RulePreview(0, (), (), 0)
        with AuditLog(self.paths.audit_db, read_only=True) as log:
            recent = list(logged_calls(log.replay(tool=request.tool.name, newest=calls)))
        return preview_rule(recent, Policy.from_data(draft.data), draft.rule)

    def add_rule(self, request: ApprovalRequest, scope: RuleScope) -> ScopedRule:
        """Write the rule for ``scope`` to policy.json and load it; raises ApproverError (file untouched)."""
        draft = self.draft_rule(request, scope)
        write_policy(self.paths.policy_file, draft.data)
        if self.reload_policy() is not None:
            raise ApproverError(f"the policy file did not load after adding the rule: {self.policy.error}")
        return draft

    def describe_startup(self) -> list[str]:
        """Lines telling the user what was loaded (no secrets)."""
        lines = []
        if self.servers.missing:
            lines.append(
                f"No servers configured yet ({self.paths.servers_file} does not exist): starting with an "
                "empty server set. Add servers in that file (same format as Claude Desktop's mcpServers)."
            )
        else:
            lines.append(f"{len(self.upstreams)} upstream server(s) from {self.paths.servers_file}")
        lines.append("Policy: " + self.policy.describe())
        if self.policy.error:
            lines.append(
                f"Fix {self.paths.policy_file} (`approver policy check` names the problem); approver "
                "applies it as soon as it is valid, without a restart."
            )
        lines.append(self.tokens.storage_note)
        lines += [
            f"Client {client!r} cannot connect now: {problem} (then restart approver)."
            for client, problem in sorted(self.tokens.problems.items())
        ]
        lines.append(f"Audit log: {self.paths.audit_db}")
        lines.append(f"Tool pins: {self.pins.error or self.paths.pins_file}")
        if self.settings.otlp is not None:
            collector = self.settings.otlp.describe()
            lines.append(f"Audit events also go to the OpenTelemetry collector at {collector}")
        return lines

    async def start(self) -> None:
        """Bind the port, start the upstreams and the HTTP server; returns once serving."""
        self._socket = bind_socket(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"],
            allowed_origins=[f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"],
        )
        mcp_app = self.gateway.server.streamable_http_app(
            streamable_http_path=MCP_PATH, json_response=False, transport_security=security, host=self.host
        )
        self.fast = FastCalls(self.gateway, self.gateway.server.session_manager)
        quota = SessionQuota(mcp_app, self.gateway.server.session_manager)
        config = uvicorn.Config(
            build_app(quota, self.port, self.tokens.authenticate, self.fast, self.hooks),
            log_level="warning",
            access_log=False,
            # Nothing proxies a loopback gateway: X-Forwarded-* headers are a client's claim,
            # and the middleware that reads them is one more layer around every request.
            proxy_headers=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
            # Longer than clients keep idle connections (httpx: 5 s, browsers and Node: about
            # 60 s): when both sides use the same idle limit, a client can send a call on a
            # connection in the moment the server closes it, and the call fails with a read error.
            timeout_keep_alive=IDLE_CONNECTION_TIMEOUT,
            # httptools with limits on header size, header and body time, and open connections.
            http=guarded_protocol(self.http_limits),
            # asyncio accepts up to this many connections per wake-up before any of them is set
            # up; uvicorn's 2,048 let a flood of connections take every file descriptor before
            # the connection limit could close one.
            backlog=128,
        )
        # After uvicorn.Config, which replaces uvicorn's log handlers.
        self._unredact_logs = redact_logs(self.redactor)
        server = _QuietServer(config)
        self._uvicorn = server
        self.servers_reload.start_all()
        self._tasks.append(asyncio.create_task(self.policy.watch(), name="policy-watch"))
        self._tasks.append(asyncio.create_task(self.gateway.watch_pins(), name="pins-watch"))
        self._tasks.append(asyncio.create_task(self.servers_reload.watch(), name="servers-watch"))
        if self.otlp is not None:
            self.otlp.start()
        serving = asyncio.create_task(server.serve(sockets=[self._socket]), name="http")
        self._tasks.append(serving)
        while not server.started:
            if serving.done():
                serving.result()
                raise ApproverError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        write_private_text(
            self.paths.runtime_file,
            json.dumps({"port": self.port, "pid": os.getpid(), "started": time.time(), "app": self.app}),
        )

    async def wait_upstreams(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a plain bound
        """Wait until every upstream has connected or failed once (for CLI listings and tests)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(u.wait_settled() for u in self.upstreams.values())), timeout
            )

    async def stop(self) -> None:
        """Deny waiting calls, stop serving, close upstreams and the audit log."""
        self.gateway.close()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        for task in self._tasks:
            if task.get_name() in ("policy-watch", "servers-watch", "pins-watch"):
                task.cancel()
        await self.servers_reload.close()  # no server starts after this
        for upstream in self.upstreams.values():
            upstream.stop()
        tasks = [*self._tasks, *self.servers_reload.tasks]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(OSError):
            info = read_runtime(self.paths)
            if info is not None and info.pid == os.getpid():
                self.paths.runtime_file.unlink()
        if self.otlp is not None:
            self.otlp.close()  # before the log closes: it reads the rows it sends
        self.recorder.close()
        self._unredact_logs()

    @property
    def open_connections(self) -> int:
        """Client connections the HTTP server holds open now."""
        return len(self._uvicorn.server_state.connections) if self._uvicorn is not None else 0

    @property
    def url(self) -> str:
        """The MCP endpoint of this gateway (without a token)."""
        return f"http://{self.host}:{self.port}{MCP_PATH}"


def client_url(port: int, token: str) -> str:
    """The URL with an embedded token, for clients that only take a URL."""
    return f"http://{HOST}:{port}/t/{token}{MCP_PATH}"
