"""A small real MCP server for tests: every MCP feature the gateway passes through, on both protocol eras.

Run it as ``python -m approver.testing.server [--transport stdio|http] [--port N] [--name NAME]
[--tools-file PATH]``. Over HTTP it listens on 127.0.0.1 (``--port 0`` picks a free port) and
prints ``LISTENING <port>`` on stderr once the socket accepts connections.

Server-to-client requests (``sample``, ``elicit``, ``roots``) follow the caller's era: a
2025-11-25 session gets a real request sent mid-call on the call's own stream; a 2026-07-28
call gets an ``InputRequiredResult`` and is answered when the client retries the call with
``inputResponses``. List and resource changes go to legacy sessions as notifications and to
2026-07-28 listeners through the ``subscriptions/listen`` bus.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar, get_args

import anyio
import jsonschema
import mcp_types as types
import uvicorn
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ResourcesListChanged,
    ResourceUpdated,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel
from starlette.requests import Request

from approver import __version__

INSTRUCTIONS: Final = "Test server for approver."
"""The ``instructions`` the server announces."""

RESOURCE_NOT_FOUND: Final = -32002
"""JSON-RPC error code MCP uses for an unknown resource URI."""

HELLO_URI: Final = "test://static/hello"
BLOB_URI: Final = "test://static/blob"
ITEM_TEMPLATE: Final = "test://items/{id}"
_ITEM_PREFIX: Final = "test://items/"
HELLO_TEXT: Final = "Hello, world!"
BLOB_BYTES: Final = bytes(range(16))
GREET_NAMES: Final = ("alice", "alina", "bob")
ITEM_IDS: Final = ("1", "2", "10")
PROGRESS_INTERVAL: Final = 0.05
"""Seconds between two progress notifications of the ``slow`` tool."""
SLOW_CANCELLED: Final = "slow: cancelled"
"""The warning-level log message ``slow`` sends to a legacy connection when its call is cancelled."""

_LEVELS: Final[tuple[types.LoggingLevel, ...]] = get_args(types.LoggingLevel)
_TOOL_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_Ctx = ServerRequestContext[Any, Any]
_Answer = TypeVar("_Answer", bound=BaseModel)
_ToolResult = types.CallToolResult | types.InputRequiredResult


TINY_PNG: Final = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
"""A 1x1 red PNG image, base64."""
TINY_WAV: Final = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA=="
"""A WAV file of eight silent 8 kHz mono samples, base64."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _obj(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


_OCTETS: Final = "application/octet-stream"
_STR: Final = {"type": "string"}
_NUM: Final = {"type": "number"}


def _tool(name: str, description: str, schema: dict[str, Any], **extra: Any) -> types.Tool:
    return types.Tool(name=name, description=description, input_schema=schema, **extra)


def builtin_tools() -> list[types.Tool]:
    """The tools every instance offers, in listing order."""
    read_only = types.ToolAnnotations(read_only_hint=True)
    return [
        _tool(
            "echo",
            "Return the given text.",
            _obj({"text": _STR}, ["text"]),
            output_schema=_obj({"text": _STR}, ["text"]),
            annotations=types.ToolAnnotations(title="Echo", read_only_hint=True),
        ),
        _tool(
            "add",
            "Add two numbers.",
            _obj({"a": _NUM, "b": _NUM}, ["a", "b"]),
            output_schema=_obj({"sum": _NUM}, ["sum"]),
            annotations=read_only,
        ),
        _tool(
            "write_note",
            "Pretend to write a note (writes nothing).",
            _obj({"path": _STR, "text": _STR}, ["path", "text"]),
            annotations=types.ToolAnnotations(destructive_hint=False),
        ),
        _tool(
            "delete_note",
            "Pretend to delete a note (deletes nothing).",
            _obj({"path": _STR}, ["path"]),
            annotations=types.ToolAnnotations(destructive_hint=True),
        ),
        _tool("all_content", "Return one block of every content type.", _obj({})),
        _tool("fail", "Return a tool error.", _obj({})),
        _tool("crash", "Kill the server process mid-call (exit code 3).", _obj({})),
        _tool(
            "slow",
            "Wait, reporting progress; write 'completed' or 'cancelled' to marker_file.",
            _obj({"seconds": _NUM, "marker_file": _STR}, ["seconds"]),
        ),
        _tool("log", "Send log messages at several levels.", _obj({})),
        _tool("sample", "Ask the client's LLM.", _obj({"prompt": _STR}, ["prompt"])),
        _tool("elicit", "Ask the user for a name.", _obj({"message": _STR})),
        _tool("roots", "Return the client's root URIs.", _obj({})),
        _tool("add_tool", "Add a tool to the listing.", _obj({"name": _STR}, ["name"])),
        _tool("add_resource", "Add a text resource.", _obj({"uri": _STR, "text": _STR}, ["uri", "text"])),
        _tool("touch_resource", "Announce that a resource changed.", _obj({"uri": _STR}, ["uri"])),
    ]


def load_tools_file(path: Path) -> list[types.Tool]:
    """Read extra tools (a JSON array of MCP ``Tool`` objects in wire form) from ``path``."""
    data = json.loads(path.read_text("utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of tools")
    return [types.Tool.model_validate(item, by_name=False) for item in data]


def _text(text: str, *, error: bool = False, structured: Any = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)], is_error=error, structured_content=structured
    )


def _is_modern(ctx: _Ctx) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def _client_offers(ctx: _Ctx, capability: types.ClientCapabilities) -> bool:
    return ctx.session.check_client_capability(capability)


def _peer_key(ctx: _Ctx) -> str | None:
    """Name the legacy connection a request came on; ``None`` when it has no stable name yet."""
    if isinstance(ctx.request, Request):
        return ctx.request.headers.get("mcp-session-id")
    return "stdio"


def _log_call(path: Path, name: str, args: dict[str, Any]) -> None:
    """Append one received call to ``path`` as a JSON line and fsync it before the tool runs.

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


@dataclass(frozen=True)
class _Call:
    """One ``tools/call`` as a tool implementation sees it."""

    ctx: _Ctx
    params: types.CallToolRequestParams
    args: dict[str, Any]


class ServerState:
    """What one server process remembers, and the handlers that read and change it."""

    def __init__(
        self, name: str, extra_tools: Sequence[types.Tool] = (), call_log: Path | None = None
    ) -> None:
        self.name = name
        self.call_log = call_log
        self.bus = InMemorySubscriptionBus()
        self.tools: dict[str, types.Tool] = {tool.name: tool for tool in builtin_tools()}
        self._builtin = frozenset(self.tools)
        for tool in extra_tools:
            if tool.name in self.tools:
                raise ValueError(f"tool {tool.name!r} is defined twice")
            self.tools[tool.name] = tool
        self.resources: dict[str, str] = {}
        self.log_levels: dict[str, types.LoggingLevel] = {}
        self.subscriptions: dict[str, set[str]] = {}
        self.peers: dict[str, ServerSession] = {}

    async def remember_peer(self, ctx: _Ctx, call_next: CallNext) -> HandlerResult:
        """Middleware: keep each legacy connection so later changes can be announced to it."""
        key = _peer_key(ctx)
        if key is not None and not _is_modern(ctx):
            self.peers[key] = ctx.session
        return await call_next(ctx)

    # -- tools -----------------------------------------------------------------------------------

    async def list_tools(
        self, ctx: _Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        """``tools/list``: the built-in tools, then the ones added by file or by ``add_tool``."""
        return types.ListToolsResult(tools=list(self.tools.values()))

    async def call_tool(self, ctx: _Ctx, params: types.CallToolRequestParams) -> _ToolResult:
        """``tools/call``: check the arguments against the tool's input schema, then run it."""
        tool = self.tools.get(params.name)
        args = params.arguments or {}
        if self.call_log is not None:
            _log_call(self.call_log, params.name, args)
        if tool is None:
            return _text(f"unknown tool: {params.name}", error=True)
        problems = [e.message for e in jsonschema.Draft202012Validator(tool.input_schema).iter_errors(args)]
        if problems:
            return _text(f"invalid arguments for {params.name}: " + "; ".join(problems), error=True)
        if params.name not in self._builtin:
            payload = {"tool": params.name, "arguments": args}
            return _text(
                json.dumps(payload, sort_keys=True), structured=payload if tool.output_schema else None
            )
        run: Callable[[_Call], Awaitable[_ToolResult]] = getattr(self, f"_tool_{params.name}")
        try:
            return await run(_Call(ctx, params, args))
        except MCPError as error:  # the client refused a sampling, elicitation or roots request
            return _text(
                f"{params.name}: the client answered with an error: {error.error.message}", error=True
            )

    async def _tool_echo(self, call: _Call) -> _ToolResult:
        return _text(call.args["text"], structured={"text": call.args["text"]})

    async def _tool_add(self, call: _Call) -> _ToolResult:
        total = call.args["a"] + call.args["b"]
        return _text(str(total), structured={"sum": total})

    async def _tool_write_note(self, call: _Call) -> _ToolResult:
        return _text(f"ok: wrote nothing to {call.args['path']}")

    async def _tool_delete_note(self, call: _Call) -> _ToolResult:
        return _text(f"ok: deleted nothing at {call.args['path']}")

    async def _tool_all_content(self, call: _Call) -> _ToolResult:
        hello = types.TextResourceContents(uri=HELLO_URI, mime_type="text/plain", text=HELLO_TEXT)
        blob = types.BlobResourceContents(uri=BLOB_URI, mime_type=_OCTETS, blob=_b64(BLOB_BYTES))
        content: list[types.ContentBlock] = [
            types.TextContent(text="text block"),
            types.ImageContent(data=TINY_PNG, mime_type="image/png"),
            types.AudioContent(data=TINY_WAV, mime_type="audio/wav"),
            types.ResourceLink(uri=HELLO_URI, name="hello", mime_type="text/plain"),
            types.EmbeddedResource(resource=hello),
            types.EmbeddedResource(resource=blob),
        ]
        return types.CallToolResult(content=content)

    async def _tool_fail(self, call: _Call) -> _ToolResult:
        return _text("fail: this tool always fails", error=True)

    async def _tool_crash(self, call: _Call) -> _ToolResult:
        os._exit(3)

    async def _tool_slow(self, call: _Call) -> _ToolResult:
        marker = Path(call.args["marker_file"]) if "marker_file" in call.args else None
        steps = max(1, math.ceil(call.args["seconds"] / PROGRESS_INTERVAL))
        try:
            for step in range(1, steps + 1):
                await anyio.sleep(PROGRESS_INTERVAL)
                await call.ctx.session.report_progress(step, steps, f"step {step} of {steps}")
        except anyio.get_cancelled_exc_class():
            if marker is not None:
                marker.write_text("cancelled", "utf-8")
            # The call's own stream is gone, so tell the connection; bounded so a dead peer can't hang us.
            with anyio.move_on_after(1, shield=True):
                await self._send_log(call.ctx, "warning", SLOW_CANCELLED, request_scoped=False)
            raise
        if marker is not None:
            marker.write_text("completed", "utf-8")
        return _text(f"slept {steps * PROGRESS_INTERVAL:.2f} s")

    async def _tool_log(self, call: _Call) -> _ToolResult:
        levels: tuple[types.LoggingLevel, ...] = ("debug", "info", "warning", "error")
        sent = [level for level in levels if await self._send_log(call.ctx, level, f"{level} message")]
        return _text("sent: " + ", ".join(sent), structured={"sent": sent})

    async def _tool_sample(self, call: _Call) -> _ToolResult:
        if not _client_offers(call.ctx, types.ClientCapabilities(sampling=types.SamplingCapability())):
            return _text("the client does not offer sampling", error=True)
        message = types.SamplingMessage(role="user", content=types.TextContent(text=call.args["prompt"]))
        request = types.CreateMessageRequest(
            params=types.CreateMessageRequestParams(messages=[message], max_tokens=100)
        )
        answer = await self._ask(call, "sample", request, types.CreateMessageResult)
        if isinstance(answer, types.InputRequiredResult):
            return answer
        content = answer.content
        text = content.text if isinstance(content, types.TextContent) else f"<{content.type}>"
        return _text(text, structured={"text": text, "model": answer.model})

    async def _tool_elicit(self, call: _Call) -> _ToolResult:
        if not _client_offers(call.ctx, types.ClientCapabilities(elicitation=types.ElicitationCapability())):
            return _text("the client does not offer elicitation", error=True)
        form = types.ElicitRequestFormParams(
            message=call.args.get("message", "What is your name?"),
            requested_schema=_obj({"name": _STR}, ["name"]),
        )
        answer = await self._ask(call, "elicit", types.ElicitRequest(params=form), types.ElicitResult)
        if isinstance(answer, types.InputRequiredResult):
            return answer
        payload = {"action": answer.action, "content": answer.content}
        return _text(json.dumps(payload, sort_keys=True), structured=payload)

    async def _tool_roots(self, call: _Call) -> _ToolResult:
        if not _client_offers(call.ctx, types.ClientCapabilities(roots=types.RootsCapability())):
            return _text("the client does not offer roots", error=True)
        answer = await self._ask(call, "roots", types.ListRootsRequest(), types.ListRootsResult)
        if isinstance(answer, types.InputRequiredResult):
            return answer
        uris = [str(root.uri) for root in answer.roots]
        return _text("\n".join(uris), structured={"roots": uris})

    async def _tool_add_tool(self, call: _Call) -> _ToolResult:
        name = call.args["name"]
        if not _TOOL_NAME.fullmatch(name) or name in self.tools:
            return _text(f"cannot add tool {name!r}: invalid or taken", error=True)
        self.tools[name] = _tool(name, f"Added at run time: {name}.", _obj({}))
        await self._announce(lambda peer: peer.send_tool_list_changed())
        await self.bus.publish(ToolsListChanged())
        return _text(f"added tool {name}")

    async def _tool_add_resource(self, call: _Call) -> _ToolResult:
        self.resources[call.args["uri"]] = call.args["text"]
        await self._announce(lambda peer: peer.send_resource_list_changed())
        await self.bus.publish(ResourcesListChanged())
        return _text(f"added resource {call.args['uri']}")

    async def _tool_touch_resource(self, call: _Call) -> _ToolResult:
        uri = call.args["uri"]
        keys = {key for key, uris in self.subscriptions.items() if uri in uris}
        notified = await self._announce(lambda peer: peer.send_resource_updated(uri), keys)
        await self.bus.publish(ResourceUpdated(uri=uri))
        return _text(
            f"touched {uri}; legacy subscribers notified: {notified}", structured={"notified": notified}
        )

    async def _ask(
        self,
        call: _Call,
        key: str,
        request: types.CreateMessageRequest | types.ElicitRequest | types.ListRootsRequest,
        answer_type: type[_Answer],
    ) -> _Answer | types.InputRequiredResult:
        """Put one question to the client the way the caller's protocol era allows.

        2025-11-25: a server-to-client request on the call's own stream, answered mid-call.
        2026-07-28: no such requests exist; the first round returns ``InputRequiredResult`` and
        the client retries the call with the answer under ``inputResponses[key]``.
        """
        ctx, params = call.ctx, call.params
        if not _is_modern(ctx):
            metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
            return await ctx.session.send_request(request, answer_type, metadata=metadata)
        answer = (params.input_responses or {}).get(key)
        # An answer counts only with the state it was asked under: a proxy that drops it gets asked again.
        if answer is None or params.request_state != key:
            return types.InputRequiredResult(input_requests={key: request}, request_state=key)
        if isinstance(answer, answer_type):
            return answer
        return answer_type.model_validate(answer.model_dump(by_alias=True, mode="json", exclude_none=True))

    async def _announce(
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

    async def _send_log(
        self, ctx: _Ctx, level: types.LoggingLevel, data: str, *, request_scoped: bool = True
    ) -> bool:
        """Send one ``notifications/message`` if the client asked for this level; say whether it went."""
        if _is_modern(ctx):
            wanted = (ctx.meta or {}).get(types.LOG_LEVEL_META_KEY)
            if wanted not in _LEVELS:
                return False
        else:
            key = _peer_key(ctx)
            wanted = self.log_levels.get(key, "debug") if key is not None else "debug"
        if _LEVELS.index(level) < _LEVELS.index(wanted):
            return False
        notification = types.LoggingMessageNotification(
            params=types.LoggingMessageNotificationParams(level=level, data=data, logger=self.name)
        )
        await ctx.session.send_notification(notification, ctx.request_id if request_scoped else None)
        return True

    # -- logging, resources, prompts, completion -------------------------------------------------

    async def set_level(self, ctx: _Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        """``logging/setLevel``: remember the level for this connection; ``log`` honours it."""
        key = _peer_key(ctx)
        if key is not None:
            self.log_levels[key] = params.level
        return types.EmptyResult()

    async def list_resources(
        self, ctx: _Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        """``resources/list``: the two static resources, then the added ones."""
        resources = [
            types.Resource(uri=HELLO_URI, name="hello", mime_type="text/plain"),
            types.Resource(uri=BLOB_URI, name="blob", mime_type=_OCTETS),
        ]
        resources += [types.Resource(uri=uri, name=uri, mime_type="text/plain") for uri in self.resources]
        return types.ListResourcesResult(resources=resources)

    async def list_templates(
        self, ctx: _Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        """``resources/templates/list``: the single item template."""
        template = types.ResourceTemplate(uri_template=ITEM_TEMPLATE, name="item", mime_type="text/plain")
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(
        self, ctx: _Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        """``resources/read`` for the static resources, the added ones and ``test://items/{id}``."""
        uri = params.uri
        contents: types.TextResourceContents | types.BlobResourceContents
        if uri == BLOB_URI:
            contents = types.BlobResourceContents(uri=uri, mime_type=_OCTETS, blob=_b64(BLOB_BYTES))
        elif uri == HELLO_URI or uri in self.resources:
            contents = types.TextResourceContents(
                uri=uri, mime_type="text/plain", text=self.resources.get(uri, HELLO_TEXT)
            )
        elif uri.startswith(_ITEM_PREFIX) and (item := uri.removeprefix(_ITEM_PREFIX)):
            contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text=f"Item {item}")
        else:
            raise MCPError(RESOURCE_NOT_FOUND, f"Resource not found: {uri}", {"uri": uri})
        return types.ReadResourceResult(contents=[contents])

    async def subscribe(self, ctx: _Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        """``resources/subscribe`` (legacy era): remember the URI for this connection."""
        key = _peer_key(ctx)
        if key is not None:
            self.subscriptions.setdefault(key, set()).add(params.uri)
        return types.EmptyResult()

    async def unsubscribe(self, ctx: _Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        """``resources/unsubscribe`` (legacy era): forget the URI for this connection."""
        key = _peer_key(ctx)
        if key is not None:
            self.subscriptions.get(key, set()).discard(params.uri)
        return types.EmptyResult()

    async def list_prompts(
        self, ctx: _Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        """``prompts/list``: the single ``greet`` prompt."""
        argument = types.PromptArgument(name="name", description="Who to greet", required=True)
        prompt = types.Prompt(name="greet", description="Greet someone.", arguments=[argument])
        return types.ListPromptsResult(prompts=[prompt])

    async def get_prompt(self, ctx: _Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        """``prompts/get`` for ``greet``."""
        if params.name != "greet":
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name}")
        name = (params.arguments or {}).get("name")
        if not name:
            raise MCPError(types.INVALID_PARAMS, "Missing required argument: name")
        message = types.PromptMessage(role="user", content=types.TextContent(text=f"Please greet {name}."))
        return types.GetPromptResult(description=f"Greet {name}", messages=[message])

    async def complete(self, ctx: _Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
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


class _AnnouncingServer(Server[Any]):
    """A low-level server that advertises ``listChanged`` even when the HTTP manager builds the options."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(tools_changed=True, resources_changed=True)
        return super().create_initialization_options(options, experimental_capabilities, extensions)


def build_server(
    name: str = "test", extra_tools: Sequence[types.Tool] = (), call_log: Path | None = None
) -> Server[Any]:
    """Build the test server; ``extra_tools`` are listed after the built-in tools.

    With ``call_log``, every received ``tools/call`` is appended (fsynced) to that file first.

    A called extra tool answers with its name and arguments as JSON text. Raises ``ValueError``
    when an extra tool reuses a built-in tool's name.
    """
    state = ServerState(name, extra_tools, call_log)
    server = _AnnouncingServer(
        name,
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=state.list_tools,
        on_call_tool=state.call_tool,
        on_list_resources=state.list_resources,
        on_list_resource_templates=state.list_templates,
        on_read_resource=state.read_resource,
        on_subscribe_resource=state.subscribe,
        on_unsubscribe_resource=state.unsubscribe,
        on_subscriptions_listen=ListenHandler(state.bus),
        on_list_prompts=state.list_prompts,
        on_get_prompt=state.get_prompt,
        on_completion=state.complete,
    )
    # Registered here rather than as `on_set_logging_level=`, which warns that logging is deprecated.
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, state.set_level)
    server.middleware.append(state.remember_peer)
    # Seal requestState as real 2026-07-28 servers do, so a proxy must pass it through untouched.
    server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience=name))
    return server


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client on this process's stdin and stdout."""
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(server: Server[Any], port: int) -> None:
    """Serve Streamable HTTP at ``http://127.0.0.1:<port>/mcp`` and print ``LISTENING <port>`` on stderr."""
    app = server.streamable_http_app(host="127.0.0.1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    # Connections made from now on wait in the backlog until uvicorn has started, so this is true already.
    print(f"LISTENING {sock.getsockname()[1]}", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: parse ``argv`` and serve until the client goes away."""
    parser = argparse.ArgumentParser(
        prog="python -m approver.testing.server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--name", default="test", help="server name announced to clients")
    parser.add_argument("--tools-file", type=Path, help="JSON array of extra MCP tools to list")
    parser.add_argument(
        "--call-log", type=Path, help="append every received tools/call to this file (JSON lines, fsynced)"
    )
    options = parser.parse_args(argv)
    try:
        extra = load_tools_file(options.tools_file) if options.tools_file else []
        server = build_server(options.name, extra, options.call_log)
    except (OSError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        parser.error(f"--tools-file: {error}")
    if options.transport == "http":
        anyio.run(serve_http, server, options.port)
    else:
        anyio.run(serve_stdio, server)


if __name__ == "__main__":
    main()
