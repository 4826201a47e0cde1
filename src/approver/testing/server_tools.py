"""The test server's tools: what each one does, for every feature a tool call can use.

``echo`` and ``add`` answer with structured content, ``slow`` reports progress and notices
cancellation, ``sample``, ``elicit`` and ``roots`` ask the client, ``add_tool`` and friends
change what the server lists, and ``crash`` ends the process mid-call.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import jsonschema
import mcp_types as types
from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel

from approver.testing.server_state import (
    BLOB_BYTES,
    BLOB_URI,
    HELLO_TEXT,
    HELLO_URI,
    OCTETS,
    Ctx,
    ServerState,
    b64,
    is_modern,
    log_call,
    text_result,
)

PROGRESS_INTERVAL: Final = 0.05
GATE_LIMIT: Final = 30.0
"""Seconds ``elicit`` waits at its gate for ``open_gate`` before it fails."""
"""Seconds between two progress notifications of the ``slow`` tool."""
SLOW_CANCELLED: Final = "slow: cancelled"
"""The warning-level log message ``slow`` sends to a legacy connection when its call is cancelled."""

_TOOL_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_Answer = TypeVar("_Answer", bound=BaseModel)
_ToolResult = types.CallToolResult | types.InputRequiredResult


TINY_PNG: Final = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
"""A 1x1 red PNG image, base64."""
TINY_WAV: Final = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA=="
"""A WAV file of eight silent 8 kHz mono samples, base64."""


def _obj(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


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
        _tool(
            "elicit",
            "Ask the user for a name (after open_gate, given a gate).",
            _obj({"message": _STR, "gate": _STR}),
        ),
        _tool("open_gate", "Let the calls waiting at a gate go on.", _obj({"gate": _STR}, ["gate"])),
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


def _client_offers(ctx: Ctx, capability: types.ClientCapabilities) -> bool:
    return ctx.session.check_client_capability(capability)


@dataclass(frozen=True)
class _Call:
    """One ``tools/call`` as a tool implementation sees it."""

    ctx: Ctx
    params: types.CallToolRequestParams
    args: dict[str, Any]


class ToolRunner:
    """The server's tools: lists them and runs each call against the server's state."""

    def __init__(
        self, state: ServerState, extra_tools: Sequence[types.Tool] = (), call_log: Path | None = None
    ) -> None:
        self.state = state
        self.call_log = call_log
        self.tools: dict[str, types.Tool] = {tool.name: tool for tool in builtin_tools()}
        self._builtin = frozenset(self.tools)
        self.gates: dict[str, anyio.Event] = {}
        """Events that ``elicit`` calls wait for, by name, until ``open_gate`` sets them."""
        for tool in extra_tools:
            if tool.name in self.tools:
                raise ValueError(f"tool {tool.name!r} is defined twice")
            self.tools[tool.name] = tool

    async def list_tools(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        """``tools/list``: the built-in tools, then the ones added by file or by ``add_tool``."""
        return types.ListToolsResult(tools=list(self.tools.values()))

    async def call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> _ToolResult:
        """``tools/call``: check the arguments against the tool's input schema, then run it."""
        tool = self.tools.get(params.name)
        args = params.arguments or {}
        if self.call_log is not None:
            log_call(self.call_log, params.name, args)
        if tool is None:
            return text_result(f"unknown tool: {params.name}", error=True)
        problems = [e.message for e in jsonschema.Draft202012Validator(tool.input_schema).iter_errors(args)]
        if problems:
            return text_result(f"invalid arguments for {params.name}: " + "; ".join(problems), error=True)
        if params.name not in self._builtin:
            payload = {"tool": params.name, "arguments": args}
            return text_result(
                json.dumps(payload, sort_keys=True), structured=payload if tool.output_schema else None
            )
        run: Callable[[_Call], Awaitable[_ToolResult]] = getattr(self, f"_tool_{params.name}")
        try:
            return await run(_Call(ctx, params, args))
        except MCPError as error:  # the client refused a sampling, elicitation or roots request
            return text_result(
                f"{params.name}: the client answered with an error: {error.error.message}", error=True
            )

    async def _tool_echo(self, call: _Call) -> _ToolResult:
        return text_result(call.args["text"], structured={"text": call.args["text"]})

    async def _tool_add(self, call: _Call) -> _ToolResult:
        total = call.args["a"] + call.args["b"]
        return text_result(str(total), structured={"sum": total})

    async def _tool_write_note(self, call: _Call) -> _ToolResult:
        return text_result(f"ok: wrote nothing to {call.args['path']}")

    async def _tool_delete_note(self, call: _Call) -> _ToolResult:
        return text_result(f"ok: deleted nothing at {call.args['path']}")

    async def _tool_all_content(self, call: _Call) -> _ToolResult:
        hello = types.TextResourceContents(uri=HELLO_URI, mime_type="text/plain", text=HELLO_TEXT)
        blob = types.BlobResourceContents(uri=BLOB_URI, mime_type=OCTETS, blob=b64(BLOB_BYTES))
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
        return text_result("fail: this tool always fails", error=True)

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
                await self.state.send_log(call.ctx, "warning", SLOW_CANCELLED, request_scoped=False)
            raise
        if marker is not None:
            marker.write_text("completed", "utf-8")
        return text_result(f"slept {steps * PROGRESS_INTERVAL:.2f} s")

    async def _tool_log(self, call: _Call) -> _ToolResult:
        levels: tuple[types.LoggingLevel, ...] = ("debug", "info", "warning", "error")
        sent = [level for level in levels if await self.state.send_log(call.ctx, level, f"{level} message")]
        return text_result("sent: " + ", ".join(sent), structured={"sent": sent})

    async def _tool_sample(self, call: _Call) -> _ToolResult:
        if not _client_offers(call.ctx, types.ClientCapabilities(sampling=types.SamplingCapability())):
            return text_result("the client does not offer sampling", error=True)
        message = types.SamplingMessage(role="user", content=types.TextContent(text=call.args["prompt"]))
        request = types.CreateMessageRequest(
            params=types.CreateMessageRequestParams(messages=[message], max_tokens=100)
        )
        answer = await self._ask(call, "sample", request, types.CreateMessageResult)
        if isinstance(answer, types.InputRequiredResult):
            return answer
        content = answer.content
        text = content.text if isinstance(content, types.TextContent) else f"<{content.type}>"
        return text_result(text, structured={"text": text, "model": answer.model})

    async def _tool_elicit(self, call: _Call) -> _ToolResult:
        if not _client_offers(call.ctx, types.ClientCapabilities(elicitation=types.ElicitationCapability())):
            return text_result("the client does not offer elicitation", error=True)
        if "gate" in call.args:  # ask only once a test has set the scene (other calls running)
            gate = self.gates.setdefault(call.args["gate"], anyio.Event())
            await call.ctx.session.report_progress(0, 1, "waiting at the gate")
            with anyio.fail_after(GATE_LIMIT):
                await gate.wait()
        form = types.ElicitRequestFormParams(
            message=call.args.get("message", "What is your name?"),
            requested_schema=_obj({"name": _STR}, ["name"]),
        )
        answer = await self._ask(call, "elicit", types.ElicitRequest(params=form), types.ElicitResult)
        if isinstance(answer, types.InputRequiredResult):
            return answer
        payload = {"action": answer.action, "content": answer.content}
        return text_result(json.dumps(payload, sort_keys=True), structured=payload)

    async def _tool_open_gate(self, call: _Call) -> _ToolResult:
        self.gates.setdefault(call.args["gate"], anyio.Event()).set()
        return text_result(f"opened {call.args['gate']}")

    async def _tool_roots(self, call: _Call) -> _ToolResult:
        if not _client_offers(call.ctx, types.ClientCapabilities(roots=types.RootsCapability())):
            return text_result("the client does not offer roots", error=True)
        answer = await self._ask(call, "roots", types.ListRootsRequest(), types.ListRootsResult)
        if isinstance(answer, types.InputRequiredResult):
            return answer
        uris = [str(root.uri) for root in answer.roots]
        return text_result("\n".join(uris), structured={"roots": uris})

    async def _tool_add_tool(self, call: _Call) -> _ToolResult:
        name = call.args["name"]
        if not _TOOL_NAME.fullmatch(name) or name in self.tools:
            return text_result(f"cannot add tool {name!r}: invalid or taken", error=True)
        self.tools[name] = _tool(name, f"Added at run time: {name}.", _obj({}))
        await self.state.announce(lambda peer: peer.send_tool_list_changed())
        await self.state.bus.publish(ToolsListChanged())
        return text_result(f"added tool {name}")

    async def _tool_add_resource(self, call: _Call) -> _ToolResult:
        self.state.resources[call.args["uri"]] = call.args["text"]
        await self.state.announce(lambda peer: peer.send_resource_list_changed())
        await self.state.bus.publish(ResourcesListChanged())
        return text_result(f"added resource {call.args['uri']}")

    async def _tool_touch_resource(self, call: _Call) -> _ToolResult:
        uri = call.args["uri"]
        keys = {key for key, uris in self.state.subscriptions.items() if uri in uris}
        notified = await self.state.announce(lambda peer: peer.send_resource_updated(uri), keys)
        await self.state.bus.publish(ResourceUpdated(uri=uri))
        return text_result(
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
        if not is_modern(ctx):
            metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
            return await ctx.session.send_request(request, answer_type, metadata=metadata)
        answer = (params.input_responses or {}).get(key)
        # An answer counts only with the state it was asked under: a proxy that drops it gets asked again.
        if answer is None or params.request_state != key:
            return types.InputRequiredResult(input_requests={key: request}, request_state=key)
        if isinstance(answer, answer_type):
            return answer
        return answer_type.model_validate(answer.model_dump(by_alias=True, mode="json", exclude_none=True))
