"""What one test server process remembers, and its handlers for everything but tools.

Legacy (2025-11-25) connections are remembered so changes can be announced to them; resources,
prompts, completion and log levels are answered here. The tools are in
:mod:`approver.testing.server_tools`; :mod:`approver.testing.server` puts both together.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, get_args
from urllib.parse import unquote

import anyio
import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request

INSTRUCTIONS: Final = "Test server for approver."
"""The ``instructions`` the server announces."""

RESOURCE_NOT_FOUND: Final = -32002
"""JSON-RPC error code MCP uses for an unknown resource URI."""

HELLO_URI: Final = "test://static/hello"
BLOB_URI: Final = "test://static/blob"
ITEM_TEMPLATE: Final = "test://items/{id}"
FILE_TEMPLATE: Final = "file:///{+path}"
"""With ``--files``: any file on disk, as a filesystem server offers them."""
_ITEM_PREFIX: Final = "test://items/"
_FILE_PREFIX: Final = "file://"
HELLO_TEXT: Final = "Hello, world!"
BLOB_BYTES: Final = bytes(range(16))
GREET_NAMES: Final = ("alice", "alina", "bob")
ITEM_IDS: Final = ("1", "2", "10")
OCTETS: Final = "application/octet-stream"

_LEVELS: Final[tuple[types.LoggingLevel, ...]] = get_args(types.LoggingLevel)
Ctx = ServerRequestContext[Any, Any]
"""A request's context as the low-level server hands it to a handler."""


def b64(data: bytes) -> str:
    """``data`` in base64, as MCP carries binary content."""
    return base64.b64encode(data).decode("ascii")


def text_result(text: str, *, error: bool = False, structured: Any = None) -> types.CallToolResult:
    """A tool result of one text block."""
    return types.CallToolResult(
        content=[types.TextContent(text=text)], is_error=error, structured_content=structured
    )


def log_call(path: Path, name: str, args: dict[str, Any]) -> None:
    """Append one received call to ``path`` as a JSON line and fsync it before the call runs.

    Fault tests read this file after killing the gateway: every line is a call that reached
    this upstream, and each must have a committed decision row in approver's audit log.
    """
    line = json.dumps({"tool": name, "arguments": args}, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def is_modern(ctx: Ctx) -> bool:
    """Whether the request came in the 2026-07-28 era (sessionless)."""
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def peer_key(ctx: Ctx) -> str | None:
    """Name the legacy connection a request came on; ``None`` when it has no stable name yet."""
    if isinstance(ctx.request, Request):
        return ctx.request.headers.get("mcp-session-id")
    return "stdio"


class ServerState:
    """What one server process remembers, and the handlers that read and change it."""

    def __init__(self, name: str, *, files: bool = False, call_log: Path | None = None) -> None:
        self.name = name
        self.files = files
        """Whether ``file:///{+path}`` reads files from disk."""
        self.call_log = call_log
        """Where every ``tools/call`` and ``resources/read`` received is logged (see ``log_call``)."""
        self.bus = InMemorySubscriptionBus()
        self.resources: dict[str, str] = {}
        self.log_levels: dict[str, types.LoggingLevel] = {}
        self.subscriptions: dict[str, set[str]] = {}
        self.peers: dict[str, ServerSession] = {}

    async def remember_peer(self, ctx: Ctx, call_next: CallNext) -> HandlerResult:
        """Middleware: keep each legacy connection so later changes can be announced to it."""
        key = peer_key(ctx)
        if key is not None and not is_modern(ctx):
            self.peers[key] = ctx.session
        return await call_next(ctx)

    async def announce(
        self, send: Callable[[ServerSession], Awaitable[None]], only: set[str] | None = None
    ) -> int:
        """Notify remembered legacy connections (all, or those in ``only``); forget dead ones."""
        notified = 0
        for key, peer in list(self.peers.items()):
            if only is not None and key not in only:
                continue
            try:
                await send(peer)
                notified += 1
            except Exception:  # a closed connection: forget it, the others still get the news
                self.peers.pop(key, None)
        return notified

    async def send_log(
        self, ctx: Ctx, level: types.LoggingLevel, data: str, *, request_scoped: bool = True
    ) -> bool:
        """Send one ``notifications/message`` if the client asked for this level; say whether it went."""
        if is_modern(ctx):
            wanted = (ctx.meta or {}).get(types.LOG_LEVEL_META_KEY)
            if wanted not in _LEVELS:
                return False
        else:
            key = peer_key(ctx)
            wanted = self.log_levels.get(key, "debug") if key is not None else "debug"
        if _LEVELS.index(level) < _LEVELS.index(wanted):
            return False
        notification = types.LoggingMessageNotification(
            params=types.LoggingMessageNotificationParams(level=level, data=data, logger=self.name)
        )
        await ctx.session.send_notification(notification, ctx.request_id if request_scoped else None)
        return True

    # -- logging, resources, prompts, completion -------------------------------------------------

    async def set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        """``logging/setLevel``: remember the level for this connection; ``log`` honours it."""
        key = peer_key(ctx)
        if key is not None:
            self.log_levels[key] = params.level
        return types.EmptyResult()

    async def list_resources(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        """``resources/list``: the two static resources, then the added ones."""
        resources = [
            types.Resource(uri=HELLO_URI, name="hello", mime_type="text/plain"),
            types.Resource(uri=BLOB_URI, name="blob", mime_type=OCTETS),
        ]
        resources += [types.Resource(uri=uri, name=uri, mime_type="text/plain") for uri in self.resources]
        return types.ListResourcesResult(resources=resources)

    async def list_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        """``resources/templates/list``: the item template (and, with ``--files``, the file template)."""
        templates = [types.ResourceTemplate(uri_template=ITEM_TEMPLATE, name="item", mime_type="text/plain")]
        if self.files:
            templates.append(
                types.ResourceTemplate(uri_template=FILE_TEMPLATE, name="file", mime_type="text/plain")
            )
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def read_resource(
        self, ctx: Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        """``resources/read`` for the static resources, the added ones, ``test://items/{id}`` and files."""
        uri = params.uri
        if self.call_log is not None:
            log_call(self.call_log, "resources/read", {"uri": uri})
        contents: types.TextResourceContents | types.BlobResourceContents
        if self.files and uri.startswith(_FILE_PREFIX):
            text = await anyio.Path(unquote(uri.removeprefix(_FILE_PREFIX))).read_text("utf-8")
            contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text=text)
        elif uri == BLOB_URI:
            contents = types.BlobResourceContents(uri=uri, mime_type=OCTETS, blob=b64(BLOB_BYTES))
        elif uri == HELLO_URI or uri in self.resources:
            contents = types.TextResourceContents(
                uri=uri, mime_type="text/plain", text=self.resources.get(uri, HELLO_TEXT)
            )
        elif uri.startswith(_ITEM_PREFIX) and (item := uri.removeprefix(_ITEM_PREFIX)):
            contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text=f"Item {item}")
        else:
            raise MCPError(RESOURCE_NOT_FOUND, f"Resource not found: {uri}", {"uri": uri})
        return types.ReadResourceResult(contents=[contents])

    async def subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        """``resources/subscribe`` (legacy era): remember the URI for this connection."""
        key = peer_key(ctx)
        if key is not None:
            self.subscriptions.setdefault(key, set()).add(params.uri)
        return types.EmptyResult()

    async def unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        """``resources/unsubscribe`` (legacy era): forget the URI for this connection."""
        key = peer_key(ctx)
        if key is not None:
            self.subscriptions.get(key, set()).discard(params.uri)
        return types.EmptyResult()

    async def list_prompts(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        """``prompts/list``: the single ``greet`` prompt."""
        argument = types.PromptArgument(name="name", description="Who to greet", required=True)
        prompt = types.Prompt(name="greet", description="Greet someone.", arguments=[argument])
        return types.ListPromptsResult(prompts=[prompt])

    async def get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        """``prompts/get`` for ``greet``."""
        if params.name != "greet":
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name}")
        name = (params.arguments or {}).get("name")
        if not name:
            raise MCPError(types.INVALID_PARAMS, "Missing required argument: name")
        message = types.PromptMessage(role="user", content=types.TextContent(text=f"Please greet {name}."))
        return types.GetPromptResult(description=f"Greet {name}", messages=[message])

    async def complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        """``completion/complete`` for ``greet``'s ``name`` and the item template's ``id``."""
        ref, argument = params.ref, params.argument
        choices: Sequence[str] = ()
        if isinstance(ref, types.PromptReference) and ref.name == "greet" and argument.name == "name":
            choices = GREET_NAMES
        elif (
            isinstance(ref, types.ResourceTemplateReference)
            and ref.uri == ITEM_TEMPLATE
            and argument.name == "id"
        ):
            choices = ITEM_IDS
        values = [choice for choice in choices if choice.startswith(argument.value)]
        return types.CompleteResult(
            completion=types.Completion(values=values, total=len(values), has_more=False)
        )
