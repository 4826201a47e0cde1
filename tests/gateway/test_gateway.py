"""The gateway end to end: real upstream subprocesses, real HTTP on 127.0.0.1, both protocol eras."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client
from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged

from approver.approval.broker import ApprovalRequest, Resolution
from approver.service import Service, client_url
from approver.testing.harness import (
    ASKING_CALLBACKS,
    legacy_client,
    running_service,
    upstream_entry,
    write_config,
)
from approver.testing.server_tools import SLOW_CANCELLED

pytestmark = pytest.mark.anyio

TIMEOUT = 30

POLICY: dict[str, Any] = {
    "version": "1",
    "default": "deny",
    "risk_defaults": {"read": "allow"},
    "tools": {
        "test__*": {"action": "allow"},
        "test__delete_note": {"action": "require_approval"},
        "test__write_note": {
            "action": "require_approval",
            "conditions": [{"when": {"path": {"path_under": ["/home/me/project"]}}, "action": "allow"}],
        },
        "test__slow": {
            "conditions": [{"when": {"seconds": {"gt": 5}}, "action": "deny", "reason": "too slow"}]
        },
        "test__add": {"limits": [{"max": 3, "window": "minute", "scope": "client"}]},
        "time__*": {"action": "allow"},
    },
    "resources": {"*": {"action": "allow"}},
    "prompts": {"*": {"action": "allow"}},
    "completion": {"*": {"action": "allow"}},
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    root = tmp_path_factory.mktemp("gateway")
    servers = {
        # Tools added at run time must be listed at once here (list changes are under test); by
        # default they would wait for the user's acceptance (tests/gateway/test_catalog.py).
        "test": {**upstream_entry("test"), "quarantine_new_tools": False},
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]},
    }
    paths = write_config(root, servers, POLICY)
    async with running_service(paths) as running:
        yield running


@pytest.fixture
def token(service: Service) -> str:
    return str(service.tokens.get_or_create("tester"))


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def audit_rows(service: Service, call_tool: str) -> list[dict[str, Any]]:
    return [row for row in service.audit.tail(0, 100000) if row["tool"] == call_tool]


# -- tools ---------------------------------------------------------------------------------------


async def test_tools_of_every_upstream_are_listed_under_server_prefixes(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            names = [tool.name for tool in (await session.list_tools()).tools]
    assert "test__echo" in names and "test__delete_note" in names
    assert "time__get_current_time" in names
    assert all(len(name) <= 64 for name in names)


async def test_an_allowed_call_keeps_structured_content_output_schema_and_annotations(
    service: Service, token: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            result = await session.call_tool("test__echo", {"text": "hello"})
    echo = tools["test__echo"]
    assert echo.output_schema is not None and echo.output_schema["required"] == ["text"]
    assert echo.annotations is not None and echo.annotations.read_only_hint is True
    assert not result.is_error
    assert result.structured_content == {"text": "hello"}


async def test_a_2026_client_calls_through_a_url_with_an_embedded_token(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with Client(client_url(service.port, token)) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool("test__echo", {"text": "modern"})
    assert "test__echo" in names
    assert result.structured_content == {"text": "modern"}


async def test_a_2026_call_finds_its_tools_schema_without_a_whole_tools_list(service: Service) -> None:
    # The SDK checks a 2026-era call's Mcp-Param headers against the tool's input schema; without
    # this lookup it ran a full tools/list per call (a seventh of the gateway's CPU under load).
    lookup = service.gateway.server.get_tool_input_schema
    assert lookup is not None
    schema = lookup("test__echo")
    assert schema is not None and schema["required"] == ["text"]
    assert lookup("test__no_such_tool") is None


async def test_every_content_type_passes_through_unchanged(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            result = await session.call_tool("test__all_content", {})
    kinds = [block.type for block in result.content]
    assert kinds == ["text", "image", "audio", "resource_link", "resource", "resource"]


async def test_a_tool_error_from_the_upstream_reaches_the_client_as_a_tool_error(
    service: Service, token: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            result = await session.call_tool("test__fail", {})
    assert result.is_error and "always fails" in text_of(result)


async def test_a_third_party_server_from_pypi_works_through_the_gateway(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            result = await session.call_tool("time__get_current_time", {"timezone": "UTC"})
    assert not result.is_error
    assert json.loads(text_of(result))["timezone"] == "UTC"


async def test_an_unknown_tool_is_a_tool_error_that_says_so(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            result = await session.call_tool("nope__missing", {})
    assert result.is_error and "unknown tool" in text_of(result)


# -- decisions -----------------------------------------------------------------------------------


async def test_a_call_denied_by_a_condition_never_reaches_the_upstream(
    service: Service, token: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            result = await session.call_tool("test__slow", {"seconds": 10, "marker_file": str(marker)})
    assert result.is_error and "too slow" in text_of(result)
    assert not marker.exists()
    decision = audit_rows(service, "test__slow")[-1]
    assert decision["kind"] == "decision" and decision["decision"] == "deny"
    assert decision["rule"] == 'tools["test__slow"].conditions[0]'


async def test_headless_a_call_needing_approval_is_denied_with_a_reason(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            result = await session.call_tool("test__delete_note", {"path": "/tmp/x"})
    assert result.is_error
    assert "needs a person's approval" in text_of(result)


async def test_a_condition_allows_writes_only_under_the_project(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            inside = await session.call_tool(
                "test__write_note", {"path": "/home/me/project/a.md", "text": "x"}
            )
            escape = await session.call_tool(
                "test__write_note", {"path": "/home/me/project/../.ssh/k", "text": "x"}
            )
    assert not inside.is_error
    assert escape.is_error and "approval" in text_of(escape)


async def test_the_rate_limit_denies_the_fourth_call_with_a_retry_hint(service: Service) -> None:
    token = service.tokens.get_or_create("limited")
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            results = [await session.call_tool("test__add", {"a": 1, "b": i}) for i in range(4)]
        other = service.tokens.get_or_create("other-client")
        async with legacy_client(service.url, other) as session:
            fresh = await session.call_tool("test__add", {"a": 1, "b": 1})
    assert [r.is_error for r in results] == [False, False, False, True]
    assert "retry in" in text_of(results[3])
    assert not fresh.is_error


async def test_an_approved_call_forwards_exactly_the_arguments_that_were_shown(service: Service) -> None:
    token = service.tokens.get_or_create("approving")
    shown: list[bytes] = []
    detach = service.broker.attach_approver()

    def approve(request: Any, resolution: Resolution | None) -> None:
        if resolution is None:
            shown.append(request.arguments)
            asyncio.get_running_loop().call_soon(service.broker.approve, request.id)

    unsubscribe = service.broker.subscribe(approve)
    try:
        with anyio.fail_after(TIMEOUT):
            async with legacy_client(service.url, token) as session:
                result = await session.call_tool("test__delete_note", {"path": "/tmp/ü", "z": [1, 2]})
    finally:
        unsubscribe()
        detach()
    assert not result.is_error
    assert json.loads(shown[0]) == {"path": "/tmp/ü", "z": [1, 2]}
    decision = [r for r in audit_rows(service, "test__delete_note") if r["kind"] == "decision"][-1]
    assert decision["decision"] == "allow" and decision["decided_by"] == "user"


async def test_a_denial_by_the_user_sends_their_message_to_the_agent(service: Service) -> None:
    token = service.tokens.get_or_create("denying")
    detach = service.broker.attach_approver()

    def deny(request: Any, resolution: Resolution | None) -> None:
        if resolution is None:
            asyncio.get_running_loop().call_soon(service.broker.deny, request.id, "not my notes")

    unsubscribe = service.broker.subscribe(deny)
    try:
        with anyio.fail_after(TIMEOUT):
            async with legacy_client(service.url, token) as session:
                result = await session.call_tool("test__delete_note", {"path": "/tmp/y"})
    finally:
        unsubscribe()
        detach()
    assert result.is_error and "not my notes" in text_of(result)


async def test_every_forwarded_call_has_its_decision_row_before_its_outcome(
    service: Service, token: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            await session.call_tool("test__echo", {"text": "audited"})
    rows = [row for row in service.audit.tail(0, 100000)]
    by_call: dict[str, list[str]] = {}
    for row in rows:
        by_call.setdefault(row["call_id"], []).append(row["kind"])
    assert all(kinds[0] == "decision" for kinds in by_call.values())
    assert any(kinds == ["decision", "outcome"] for kinds in by_call.values())
    assert service.audit.verify().ok


# -- resources, prompts, completion, logging, progress ------------------------------------------


async def test_resources_are_listed_read_and_templated_through_the_gateway(
    service: Service, token: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            listed = [str(r.uri) for r in (await session.list_resources()).resources]
            templates = [t.uri_template for t in (await session.list_resource_templates()).resource_templates]
            hello = await session.read_resource("test://static/hello")
            item = await session.read_resource("test://items/7")
    assert "test://static/hello" in listed and "test://items/{id}" in templates
    assert isinstance(hello.contents[0], types.TextResourceContents)
    assert "7" in item.contents[0].model_dump_json()


async def test_a_subscribed_legacy_client_gets_resource_updates(service: Service, token: str) -> None:
    received: list[types.ServerNotification] = []
    updated = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            received.append(message)
            updated.set()

    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token, message_handler=on_message) as session:
            await session.send_request(
                types.SubscribeRequest(params=types.SubscribeRequestParams(uri="test://static/hello")),
                types.EmptyResult,
            )
            await session.call_tool("test__touch_resource", {"uri": "test://static/hello"})
            await updated.wait()
    assert str(received[0].params.uri) == "test://static/hello"


async def test_a_2026_client_listening_gets_resource_updates_and_tool_list_changes(
    service: Service, token: str
) -> None:
    uri = "test://static/blob"
    with anyio.fail_after(TIMEOUT):
        async with Client(client_url(service.port, token)) as client:
            async with client.listen(tools_list_changed=True, resource_subscriptions=[uri]) as events:
                await client.call_tool("test__touch_resource", {"uri": uri})
                first = await events.__anext__()
                await client.call_tool("test__add_tool", {"name": "late_modern"})
                second = await events.__anext__()
            names = [tool.name for tool in (await client.list_tools()).tools]
    assert first == ResourceUpdated(uri=uri)
    assert second == ToolsListChanged()
    assert "test__late_modern" in names


async def test_a_legacy_client_is_told_when_an_upstream_adds_a_tool(service: Service, token: str) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token, message_handler=on_message) as session:
            await session.list_tools()
            await session.call_tool("test__add_tool", {"name": "late_legacy"})
            await changed.wait()
            names = [tool.name for tool in (await session.list_tools()).tools]
    assert "test__late_legacy" in names


async def test_prompts_and_completion_pass_through_under_exposed_names(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            prompts = [p.name for p in (await session.list_prompts()).prompts]
            prompt = await session.get_prompt("test__greet", {"name": "Ada"})
            names = await session.complete(
                types.PromptReference(name="test__greet"), {"name": "name", "value": "al"}
            )
            ids = await session.complete(
                types.ResourceTemplateReference(uri="test://items/{id}"), {"name": "id", "value": "1"}
            )
    assert "test__greet" in prompts
    assert "Ada" in prompt.messages[0].model_dump_json()
    assert names.completion.values == ["alice", "alina"]
    assert set(ids.completion.values) == {"1", "10"}


async def test_log_messages_reach_a_legacy_client_that_set_a_level(service: Service, token: str) -> None:
    levels: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        levels.append(params.level)

    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token, logging_callback=on_log) as session:
            await session.send_request(
                types.SetLevelRequest(params=types.SetLevelRequestParams(level="warning")), types.EmptyResult
            )
            result = await session.call_tool("test__log", {})
    assert result.structured_content == {"sent": ["warning", "error"]}
    assert levels == ["warning", "error"]


async def test_progress_notifications_of_a_long_call_reach_the_client(service: Service, token: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            result = await session.call_tool("test__slow", {"seconds": 0.2}, progress_callback=on_progress)
    assert not result.is_error
    assert progress and progress == sorted(progress)


async def test_cancelling_a_call_cancels_it_upstream_and_records_cancelled(
    service: Service, token: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    started, upstream_stopped = anyio.Event(), anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        if params.data == SLOW_CANCELLED:
            upstream_stopped.set()

    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token, logging_callback=on_log) as session:
            await session.send_request(
                types.SetLevelRequest(params=types.SetLevelRequestParams(level="debug")), types.EmptyResult
            )
            async with anyio.create_task_group() as group:

                async def call() -> None:
                    await session.call_tool(
                        "test__slow",
                        {"seconds": 5, "marker_file": str(marker)},
                        progress_callback=on_progress,
                    )

                group.start_soon(call)
                await started.wait()
                group.cancel_scope.cancel()
            await upstream_stopped.wait()
        await service.recorder.flush()
    outcomes = [r["outcome"] for r in audit_rows(service, "test__slow") if r["kind"] == "outcome"]
    assert marker.read_text() == "cancelled"
    assert outcomes[-1] == "cancelled"


async def test_ping_is_answered(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            result = await session.send_ping()
    assert isinstance(result, types.EmptyResult)


# -- server-to-client requests during a call -----------------------------------------------------


async def test_sampling_elicitation_and_roots_reach_the_legacy_client_that_made_the_call(
    service: Service, token: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token, **ASKING_CALLBACKS) as session:
            sampled = await session.call_tool("test__sample", {"prompt": "2+2"})
            elicited = await session.call_tool("test__elicit", {})
            roots = await session.call_tool("test__roots", {})
    assert sampled.structured_content == {"text": "answer to 2+2", "model": "fake-llm"}
    assert elicited.structured_content == {"action": "accept", "content": {"name": "Ada"}}
    assert roots.structured_content == {"roots": ["file:///work/a", "file:///work/b"]}


async def test_sampling_elicitation_and_roots_reach_a_2026_client_in_input_rounds(
    service: Service, token: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with Client(client_url(service.port, token), **ASKING_CALLBACKS) as client:
            first = await client.session.call_tool("test__roots", {}, allow_input_required=True)
            sampled = await client.call_tool("test__sample", {"prompt": "3+3"})
            elicited = await client.call_tool("test__elicit", {})
            roots = await client.call_tool("test__roots", {})
    assert isinstance(first, types.InputRequiredResult)
    assert sampled.structured_content == {"text": "answer to 3+3", "model": "fake-llm"}
    assert elicited.structured_content == {"action": "accept", "content": {"name": "Ada"}}
    assert roots.structured_content == {"roots": ["file:///work/a", "file:///work/b"]}


# -- the front door ------------------------------------------------------------------------------


def _initialize_body() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "x", "version": "1"},
        },
    }


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "evil.example:80"}, 421),
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "http://localhost:1"}, 403),
        ({"authorization": "Bearer wrong"}, 401),
        ({"authorization": ""}, 401),
    ],
)
async def test_the_front_door_rejects_foreign_hosts_origins_and_tokens(
    service: Service, token: str, headers: dict[str, str], status: int
) -> None:
    sent = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"} | headers
    before = len(service.audit.tail(0, 100000))
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            response = await http.post(service.url, json=_initialize_body(), headers=sent)
    assert response.status_code == status
    assert len(service.audit.tail(0, 100000)) == before


async def test_a_valid_token_opens_the_door(service: Service, token: str) -> None:
    headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            response = await http.post(service.url, json=_initialize_body(), headers=headers)
    assert response.status_code == 200


async def test_the_client_name_from_the_token_is_recorded_with_the_call(service: Service) -> None:
    token = service.tokens.get_or_create("named-client")
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            await session.call_tool("test__echo", {"text": "who"})
    decision = [r for r in audit_rows(service, "test__echo") if r["kind"] == "decision"][-1]
    assert decision["client"] == "named-client"


async def test_an_approval_request_names_the_tools_its_name_looks_like(tmp_path: Path) -> None:
    def tools_file(name: str) -> str:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps([{"name": name, "inputSchema": {"type": "object"}}]), "utf-8")
        return str(path)

    servers = {
        "mail": upstream_entry("mail", "--tools-file", tools_file("send_email")),
        "evil": upstream_entry("evil", "--tools-file", tools_file("\u0455end_email")),
    }
    policy = {"version": "1", "default": "require_approval"}
    paths = write_config(tmp_path, servers, policy)
    seen: list[ApprovalRequest] = []
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            service.broker.attach_approver()

            def deny(request: ApprovalRequest, resolution: Resolution | None) -> None:
                if resolution is None:
                    seen.append(request)
                    service.broker.deny(request.id)

            service.broker.subscribe(deny)
            exposed = next(e.ref.name for e in service.catalog.tools() if e.ref.tool == "\u0455end_email")
            async with legacy_client(service.url, service.tokens.get_or_create("c")) as session:
                result = await session.call_tool(exposed, {})
    assert result.is_error
    assert seen[0].lookalikes == (
        "send_email (mail) vs \u0455end_email (evil): U+0455 CYRILLIC SMALL LETTER DZE at position 0",
    )


async def test_a_remote_server_waiting_for_sign_in_lists_a_stand_in_tool_that_says_what_to_do(
    tmp_path: Path,
) -> None:
    from approver.testing.oauth_server import running_oauth_server

    with running_oauth_server(tmp_path / "events.jsonl") as base:
        paths = write_config(tmp_path, {"gh": {"type": "http", "url": f"{base}/mcp"}}, POLICY)
        with anyio.fail_after(TIMEOUT):
            async with running_service(paths) as service:
                token = service.tokens.get_or_create("agent")
                async with legacy_client(service.url, token) as session:
                    tools = (await session.list_tools()).tools
                    result = await session.call_tool("gh__sign_in_needed", {})
    assert [tool.name for tool in tools] == ["gh__sign_in_needed"]
    assert "approver login gh" in (tools[0].description or "")
    assert result.is_error
    text = result.content[0].text if isinstance(result.content[0], types.TextContent) else ""
    assert "needs sign-in (not signed in yet)" in text and "approver login gh" in text


async def test_a_call_whose_sign_in_was_revoked_meanwhile_is_told_to_sign_in_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from approver.testing.browser import write_browser_script
    from approver.testing.oauth_server import running_oauth_server
    from approver.upstream.oauth.browser import open_in_browser
    from approver.upstream.status import UpstreamState

    monkeypatch.setenv("BROWSER", str(write_browser_script(tmp_path)))

    async def show(url: str) -> None:
        assert await open_in_browser(url)

    with running_oauth_server(tmp_path / "events.jsonl") as base:
        paths = write_config(
            tmp_path, {"gh": {"type": "http", "url": f"{base}/mcp", "prefix": "test"}}, POLICY
        )
        with anyio.fail_after(TIMEOUT):
            async with running_service(paths) as service:
                await service.sign_in("gh", show)
                await service.upstreams["gh"].wait_for_state(UpstreamState.READY)
                async with legacy_client(service.url, service.tokens.get_or_create("agent")) as session:
                    assert not (await session.call_tool("test__echo", {"text": "hi"})).is_error
                    async with httpx2.AsyncClient() as client:
                        await client.post(f"{base}/test/revoke")
                    result = await session.call_tool("test__echo", {"text": "again"})
    text = result.content[0].text if isinstance(result.content[0], types.TextContent) else ""
    assert result.is_error and "needs sign-in (the sign-in has expired or was revoked)" in text, text
    assert "approver login gh" in text
