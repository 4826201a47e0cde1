"""The package's own MCP test server, driven as a real subprocess over stdio and HTTP on both eras."""

from __future__ import annotations

import base64
import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import mcp_types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.client.session import ClientRequestContext, IncomingMessage
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged
from pydantic import FileUrl

from approver.testing import free_port, http_test_server, server_command
from approver.testing.server import main
from approver.testing.server_state import INSTRUCTIONS, RESOURCE_NOT_FOUND
from approver.testing.server_tools import SLOW_CANCELLED

pytestmark = pytest.mark.anyio

TIMEOUT = 30
"""Seconds any one test may take, subprocess start-up included."""

_Note = TypeVar("_Note", bound=types.ServerNotification)


async def answer_sampling(
    context: ClientRequestContext, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    prompt = params.messages[0].content
    assert isinstance(prompt, types.TextContent)
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(text=f"answer to {prompt.text}"), model="fake-llm"
    )


async def answer_elicitation(
    context: ClientRequestContext, params: types.ElicitRequestParams
) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def answer_roots(context: ClientRequestContext) -> types.ListRootsResult:
    return types.ListRootsResult(
        roots=[types.Root(uri=FileUrl("file:///work/a")), types.Root(uri=FileUrl("file:///work/b"))]
    )


ASKING_CALLBACKS: dict[str, Any] = {
    "sampling_callback": answer_sampling,
    "elicitation_callback": answer_elicitation,
    "list_roots_callback": answer_roots,
}


class Inbox:
    """The server notifications a client received, in arrival order; pass it as ``message_handler``."""

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[IncomingMessage](100)

    def __enter__(self) -> Inbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._send.close()
        self._receive.close()

    async def __call__(self, message: IncomingMessage) -> None:
        await self._send.send(message)

    async def next(self, kind: type[_Note]) -> _Note:
        """The next notification of ``kind``, skipping others."""
        async for message in self._receive:
            if isinstance(message, kind):
                return message
        raise AssertionError(f"the inbox closed before a {kind.__name__} arrived")


@asynccontextmanager
async def legacy_stdio(
    tmp_path: Path, *, tools_file: Path | None = None, **callbacks: Any
) -> AsyncIterator[tuple[ClientSession, Inbox]]:
    """An initialized 2025-11-25 session with a fresh server subprocess, and its notifications."""
    argv = server_command(tools_file=tools_file)
    params = StdioServerParameters(command=argv[0], args=argv[1:])
    with (tmp_path / "server-stderr.txt").open("w") as errlog, Inbox() as inbox:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, message_handler=inbox, **callbacks) as session,
        ):
            await session.initialize()
            yield session, inbox


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


# -- helpers -------------------------------------------------------------------------------------


def test_server_command_runs_the_server_module_with_this_interpreter() -> None:
    argv = server_command("files", "http", 8123)
    assert argv[0] == sys.executable
    assert argv[1:3] == ["-m", "approver.testing.server"]
    assert argv[3:] == ["--transport", "http", "--name", "files", "--port", "8123"]


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert port > 0


# -- 2025-11-25 over stdio -------------------------------------------------------------------------


async def test_stdio_server_announces_its_name_version_instructions_and_list_changed(tmp_path: Path) -> None:
    argv = server_command("files")
    params = StdioServerParameters(command=argv[0], args=argv[1:])
    with anyio.fail_after(TIMEOUT), (tmp_path / "stderr.txt").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            pong = await session.send_ping()
    assert (init.server_info.name, init.server_info.version) == ("files", "0.1.0")
    assert init.instructions == INSTRUCTIONS
    assert init.capabilities.tools is not None and init.capabilities.tools.list_changed
    assert init.capabilities.resources is not None and init.capabilities.resources.subscribe
    assert init.capabilities.logging is not None and init.capabilities.completions is not None
    assert isinstance(pong, types.EmptyResult)


async def test_tools_list_carries_annotations_and_output_schemas(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) >= {"echo", "add", "write_note", "delete_note", "all_content", "fail", "crash", "slow"}
    assert set(tools) >= {"log", "sample", "elicit", "roots", "add_tool", "add_resource", "touch_resource"}
    echo = tools["echo"]
    assert echo.annotations == types.ToolAnnotations(title="Echo", read_only_hint=True)
    assert echo.output_schema is not None and echo.output_schema["required"] == ["text"]
    assert tools["write_note"].annotations == types.ToolAnnotations(destructive_hint=False)
    assert tools["delete_note"].annotations == types.ToolAnnotations(destructive_hint=True)


async def test_echo_add_and_the_note_tools_answer_without_touching_files(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            echo = await session.call_tool("echo", {"text": "hi"})
            total = await session.call_tool("add", {"a": 2, "b": 0.5})
            written = await session.call_tool("write_note", {"path": str(note), "text": "x"})
            deleted = await session.call_tool("delete_note", {"path": str(note)})
    assert (text_of(echo), echo.structured_content) == ("hi", {"text": "hi"})
    assert total.structured_content == {"sum": 2.5}
    assert text_of(written).startswith("ok") and text_of(deleted).startswith("ok")
    assert not note.exists()


async def test_all_content_returns_one_block_of_every_content_type(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            result = await session.call_tool("all_content", {})
    text, image, audio, link, embedded_text, embedded_blob = result.content
    assert isinstance(text, types.TextContent)
    assert isinstance(image, types.ImageContent) and base64.b64decode(image.data).startswith(b"\x89PNG")
    assert isinstance(audio, types.AudioContent) and base64.b64decode(audio.data).startswith(b"RIFF")
    assert isinstance(link, types.ResourceLink) and link.uri == "test://static/hello"
    assert isinstance(embedded_text, types.EmbeddedResource)
    assert isinstance(embedded_text.resource, types.TextResourceContents)
    assert isinstance(embedded_blob, types.EmbeddedResource)
    assert isinstance(embedded_blob.resource, types.BlobResourceContents)


async def test_fail_and_bad_arguments_are_tool_errors_not_protocol_errors(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            failed = await session.call_tool("fail", {})
            bad = await session.call_tool("add", {"a": "one", "b": 2})
    assert failed.is_error and "fails" in text_of(failed)
    assert bad.is_error and "invalid arguments" in text_of(bad)


async def test_crash_ends_the_stdio_connection_mid_call(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            with pytest.raises(MCPError) as raised:
                await session.call_tool("crash", {})
    assert raised.value.error.code == types.CONNECTION_CLOSED


async def test_slow_reports_progress_and_records_completion(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    steps: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append((progress, total))

    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            arguments = {"seconds": 0.15, "marker_file": str(marker)}
            await session.call_tool("slow", arguments, progress_callback=on_progress)
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert marker.read_text() == "completed"


async def test_cancelling_slow_stops_it_and_records_cancelled(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    progressed = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progressed.set()

    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, inbox):
            async with anyio.create_task_group() as group:
                arguments = {"seconds": 60, "marker_file": str(marker)}
                group.start_soon(lambda: session.call_tool("slow", arguments, progress_callback=on_progress))
                await progressed.wait()
                group.cancel_scope.cancel()
            log = await inbox.next(types.LoggingMessageNotification)
    assert log.params.data == SLOW_CANCELLED
    assert marker.read_text() == "cancelled"


async def test_log_sends_levels_at_or_above_the_level_the_client_set(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, inbox):
            everything = await session.call_tool("log", {})
            first = await inbox.next(types.LoggingMessageNotification)
            level = types.SetLevelRequest(params=types.SetLevelRequestParams(level="warning"))
            await session.send_request(level, types.EmptyResult)
            filtered = await session.call_tool("log", {})
    assert everything.structured_content == {"sent": ["debug", "info", "warning", "error"]}
    assert (first.params.level, first.params.logger) == ("debug", "test")
    assert filtered.structured_content == {"sent": ["warning", "error"]}


async def test_sample_elicit_and_roots_ask_the_client_mid_call(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path, **ASKING_CALLBACKS) as (session, _):
            sampled = await session.call_tool("sample", {"prompt": "2+2"})
            elicited = await session.call_tool("elicit", {})
            roots = await session.call_tool("roots", {})
    assert sampled.structured_content == {"text": "answer to 2+2", "model": "fake-llm"}
    assert elicited.structured_content == {"action": "accept", "content": {"name": "Ada"}}
    assert roots.structured_content == {"roots": ["file:///work/a", "file:///work/b"]}


async def test_asking_a_client_without_the_capability_is_a_tool_error(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            sampled = await session.call_tool("sample", {"prompt": "2+2"})
    assert sampled.is_error and "sampling" in text_of(sampled)


async def test_a_client_refusing_to_sample_turns_into_a_tool_error(tmp_path: Path) -> None:
    async def refuse(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.ErrorData:
        return types.ErrorData(code=types.INVALID_REQUEST, message="denied by the user")

    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path, sampling_callback=refuse) as (session, _):
            sampled = await session.call_tool("sample", {"prompt": "2+2"})
    assert sampled.is_error and "denied by the user" in text_of(sampled)


async def test_add_tool_lists_the_tool_and_notifies_list_changed(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, inbox):
            await session.call_tool("add_tool", {"name": "fresh"})
            await inbox.next(types.ToolListChangedNotification)
            names = [tool.name for tool in (await session.list_tools()).tools]
            called = await session.call_tool("fresh", {"x": 1})
    assert names[-1] == "fresh"
    assert json.loads(text_of(called)) == {"tool": "fresh", "arguments": {"x": 1}}


async def test_add_resource_lists_it_and_notifies_resource_list_changed(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, inbox):
            await session.call_tool("add_resource", {"uri": "test://extra/one", "text": "one"})
            await inbox.next(types.ResourceListChangedNotification)
            uris = [str(r.uri) for r in (await session.list_resources()).resources]
            read = await session.read_resource("test://extra/one")
    assert uris == ["test://static/hello", "test://static/blob", "test://extra/one"]
    assert read.contents == [
        types.TextResourceContents(uri="test://extra/one", mime_type="text/plain", text="one")
    ]


async def test_touch_resource_notifies_only_while_subscribed(tmp_path: Path) -> None:
    uri = "test://static/hello"
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, inbox):
            await session.send_request(
                types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri)), types.EmptyResult
            )
            subscribed = await session.call_tool("touch_resource", {"uri": uri})
            updated = await inbox.next(types.ResourceUpdatedNotification)
            await session.send_request(
                types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri)), types.EmptyResult
            )
            unsubscribed = await session.call_tool("touch_resource", {"uri": uri})
    assert updated.params.uri == uri
    assert subscribed.structured_content == {"notified": 1}
    assert unsubscribed.structured_content == {"notified": 0}


async def test_resources_templates_and_reads(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            templates = await session.list_resource_templates()
            hello = await session.read_resource("test://static/hello")
            blob = await session.read_resource("test://static/blob")
            item = await session.read_resource("test://items/42")
            with pytest.raises(MCPError) as missing:
                await session.read_resource("test://nowhere")
    assert [t.uri_template for t in templates.resource_templates] == ["test://items/{id}"]
    assert (
        isinstance(hello.contents[0], types.TextResourceContents)
        and hello.contents[0].text == "Hello, world!"
    )
    assert isinstance(blob.contents[0], types.BlobResourceContents)
    assert base64.b64decode(blob.contents[0].blob) == bytes(range(16))
    assert isinstance(item.contents[0], types.TextResourceContents) and item.contents[0].text == "Item 42"
    assert missing.value.error.code == RESOURCE_NOT_FOUND


async def test_greet_prompt_is_listed_and_rendered(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            prompts = (await session.list_prompts()).prompts
            rendered = await session.get_prompt("greet", {"name": "Bo"})
            with pytest.raises(MCPError):
                await session.get_prompt("greet", {})
    assert [(p.name, [(a.name, a.required) for a in p.arguments or []]) for p in prompts] == [
        ("greet", [("name", True)])
    ]
    content = rendered.messages[0].content
    assert isinstance(content, types.TextContent) and "Bo" in content.text


async def test_completion_offers_matching_names_and_item_ids(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path) as (session, _):
            names = await session.complete(
                types.PromptReference(name="greet"), {"name": "name", "value": "al"}
            )
            template = types.ResourceTemplateReference(uri="test://items/{id}")
            ids = await session.complete(template, {"name": "id", "value": "1"})
    assert names.completion.values == ["alice", "alina"]
    assert ids.completion.values == ["1", "10"]


async def test_tools_file_adds_tools_that_echo_their_arguments(tmp_path: Path) -> None:
    tools_file = tmp_path / "tools.json"
    extra = {"name": "git_push", "inputSchema": {"type": "object"}, "annotations": {"destructiveHint": True}}
    tools_file.write_text(json.dumps([extra]))
    with anyio.fail_after(TIMEOUT):
        async with legacy_stdio(tmp_path, tools_file=tools_file) as (session, _):
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            pushed = await session.call_tool("git_push", {"force": True})
    assert tools["git_push"].annotations == types.ToolAnnotations(destructive_hint=True)
    assert json.loads(text_of(pushed)) == {"tool": "git_push", "arguments": {"force": True}}


def test_a_tools_file_reusing_a_builtin_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(json.dumps([{"name": "echo", "inputSchema": {"type": "object"}}]))
    with pytest.raises(SystemExit):
        main(["--tools-file", str(tools_file)])
    assert "'echo' is defined twice" in capsys.readouterr().err


# -- 2026-07-28 and 2025-11-25 over HTTP ---------------------------------------------------------


async def test_http_2026_client_lists_tools_and_calls_echo() -> None:
    with anyio.fail_after(TIMEOUT):
        async with http_test_server("web") as server, Client(server.url) as client:
            tools = [tool.name for tool in (await client.list_tools()).tools]
            echo = await client.call_tool("echo", {"text": "over http"})
            version, info, instructions = client.protocol_version, client.server_info, client.instructions
    assert version == "2026-07-28"
    assert info is not None and info.name == "web"
    assert instructions == INSTRUCTIONS
    assert "echo" in tools
    assert echo.structured_content == {"text": "over http"}


async def test_http_2026_listen_delivers_tools_list_changed_and_resource_updates() -> None:
    uri = "test://static/hello"
    with anyio.fail_after(TIMEOUT):
        async with http_test_server() as server, Client(server.url) as client:
            async with client.listen(tools_list_changed=True, resource_subscriptions=[uri]) as events:
                await client.call_tool("add_tool", {"name": "late"})
                first = await events.__anext__()
                await client.call_tool("touch_resource", {"uri": uri})
                second = await events.__anext__()
            names = [tool.name for tool in (await client.list_tools()).tools]
    assert first == ToolsListChanged()
    assert second == ResourceUpdated(uri=uri)
    assert "late" in names


async def test_http_2026_sample_elicit_and_roots_use_input_required_rounds() -> None:
    with anyio.fail_after(TIMEOUT):
        async with http_test_server() as server, Client(server.url, **ASKING_CALLBACKS) as client:
            first_round = await client.session.call_tool("roots", {}, allow_input_required=True)
            sampled = await client.call_tool("sample", {"prompt": "2+2"})
            elicited = await client.call_tool("elicit", {})
            roots = await client.call_tool("roots", {})
    assert isinstance(first_round, types.InputRequiredResult)
    assert first_round.input_requests is not None and list(first_round.input_requests) == ["roots"]
    assert first_round.request_state not in (None, "roots")  # sealed by the server
    assert sampled.structured_content == {"text": "answer to 2+2", "model": "fake-llm"}
    assert elicited.structured_content == {"action": "accept", "content": {"name": "Ada"}}
    assert roots.structured_content == {"roots": ["file:///work/a", "file:///work/b"]}


async def test_http_2026_log_sends_only_the_levels_the_request_opted_into() -> None:
    levels: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        levels.append(params.level)

    with anyio.fail_after(TIMEOUT):
        async with http_test_server() as server:
            async with Client(server.url, logging_callback=on_log, log_level="warning") as client:
                opted_in = await client.call_tool("log", {})
            async with Client(server.url) as client:
                silent = await client.call_tool("log", {})
    assert opted_in.structured_content == {"sent": ["warning", "error"]}
    assert levels == ["warning", "error"]
    assert silent.structured_content == {"sent": []}


async def test_http_legacy_client_gets_sampling_progress_and_prompts() -> None:
    steps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(progress)

    with anyio.fail_after(TIMEOUT):
        async with (
            http_test_server() as server,
            Client(server.url, mode="legacy", **ASKING_CALLBACKS) as client,
        ):
            sampled = await client.call_tool("sample", {"prompt": "legacy"})
            await client.call_tool("slow", {"seconds": 0.1}, progress_callback=on_progress)
            rendered = await client.get_prompt("greet", {"name": "Cy"})
            version = client.protocol_version
    assert version == "2025-11-25"
    assert sampled.structured_content == {"text": "answer to legacy", "model": "fake-llm"}
    assert steps == [1, 2]
    assert rendered.description == "Greet Cy"


async def test_http_server_exits_with_code_3_when_crash_is_called() -> None:
    with anyio.fail_after(TIMEOUT):
        async with http_test_server() as server:
            # Whether the call or the transport reports the lost connection is the client's business.
            with pytest.raises(Exception):  # noqa: B017
                async with Client(server.url) as client:
                    await client.call_tool("crash", {})
            code = await server.process.wait()
    assert code == 3


async def test_http_legacy_sessions_all_hear_of_a_tool_another_session_added() -> None:
    with anyio.fail_after(TIMEOUT):
        async with http_test_server() as server:
            with Inbox() as inbox:
                async with (
                    Client(server.url, mode="legacy", message_handler=inbox) as listener,
                    Client(server.url, mode="legacy") as other,
                ):
                    await listener.list_tools()
                    await other.call_tool("add_tool", {"name": "shared"})
                    await inbox.next(types.ToolListChangedNotification)
                    names = [tool.name for tool in (await listener.list_tools()).tools]
    assert "shared" in names


async def test_stdio_2026_client_gets_sampling_answered_through_input_required(tmp_path: Path) -> None:
    argv = server_command()
    params = StdioServerParameters(command=argv[0], args=argv[1:])
    with anyio.fail_after(TIMEOUT), (tmp_path / "stderr.txt").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), **ASKING_CALLBACKS) as client:
            sampled = await client.call_tool("sample", {"prompt": "stdio"})
            version = client.protocol_version
    assert version == "2026-07-28"
    assert sampled.structured_content == {"text": "answer to stdio", "model": "fake-llm"}
