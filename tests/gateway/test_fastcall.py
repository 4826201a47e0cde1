"""The front door's fast path for 2025-era tool calls: same answers, same rows, same wire.

Real ``Service`` with a real upstream subprocess over real HTTP. Each test checks that the fast
path really answered (``FastCalls.handled``), or really did not, so an SDK upgrade that quietly
sends every call down the slow path (or a fast path that takes what it should not) fails here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from approver.gateway.fastcall import FastCalls
from approver.service import Service, client_url
from approver.testing.harness import (
    ASKING_CALLBACKS,
    legacy_client,
    running_service,
    upstream_entry,
    write_config,
)
from approver.testing.raw import RawSession, sse_messages

pytestmark = pytest.mark.anyio

TIMEOUT = 30
POLICY: dict[str, Any] = {
    "version": "1",
    "default": "deny",
    "tools": {
        "test__*": {"action": "allow"},
        "test__delete_note": {"action": "deny", "reason": "no deleting"},
    },
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    paths = write_config(tmp_path_factory.mktemp("fast"), {"test": upstream_entry("test")}, POLICY)
    async with running_service(paths) as running:
        yield running


@pytest.fixture
def token(service: Service) -> str:
    return str(service.tokens.get_or_create("fast-tester"))


def fast(service: Service) -> FastCalls:
    assert service.fast is not None
    return service.fast


def rows_of(service: Service, text: str) -> list[dict[str, Any]]:
    return [row for row in service.audit.tail(0, 100000) if text in (row.get("arguments") or "")]


def call(request_id: int, text: str, **extra: Any) -> dict[str, Any]:
    params = {"name": "test__echo", "arguments": {"text": text}} | extra
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def test_a_legacy_clients_allowed_call_is_answered_fast_and_recorded(
    service: Service, token: str
) -> None:
    before = fast(service).handled
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            await session.list_tools()
            result = await session.call_tool("test__echo", {"text": "fast-allowed"})
            denied = await session.call_tool("test__delete_note", {"name": "fast-denied"})
        await service.recorder.flush()
    assert fast(service).handled == before + 2
    assert not result.is_error and result.structured_content == {"text": "fast-allowed"}
    assert denied.is_error and "no deleting" in denied.content[0].text  # type: ignore[union-attr]
    (decision,) = rows_of(service, "fast-allowed")
    assert decision["decision"] == "allow" and decision["client"] == "fast-tester"
    outcomes = [row for row in service.audit.tail(0, 100000) if row["call_id"] == decision["call_id"]]
    assert [row["outcome"] for row in outcomes if row["kind"] == "outcome"] == ["ok"]
    assert [row["decision"] for row in rows_of(service, "fast-denied")] == ["deny"]


async def test_a_fast_answer_is_plain_json_with_its_session(service: Service, token: str) -> None:
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            raw = RawSession(http, service.url, token)
            await raw.open()
            response = await raw.post_json(call(7, "plain-json"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["mcp-session-id"] == raw.headers["mcp-session-id"]
    answer = response.json()
    assert answer["id"] == 7 and answer["result"]["structuredContent"] == {"text": "plain-json"}


async def test_progress_turns_the_answer_into_a_stream_that_ends_with_it(
    service: Service, token: str
) -> None:
    before = fast(service).handled
    message = call(3, "unused", _meta={"progressToken": "p-1"})
    message["params"] |= {"name": "test__slow", "arguments": {"seconds": 0.2}}
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            raw = RawSession(http, service.url, token)
            await raw.open()
            response = await raw.post_json(message)
    assert fast(service).handled == before + 1
    assert response.headers["content-type"] == "text/event-stream"
    messages = sse_messages(response.text)
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert progress and all(p["progressToken"] == "p-1" for p in progress)
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)
    assert messages[-1]["id"] == 3 and "result" in messages[-1]


async def test_sampling_elicitation_and_roots_during_a_fast_call_reach_the_client(
    service: Service, token: str
) -> None:
    before = fast(service).handled
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token, **ASKING_CALLBACKS) as session:
            await session.list_tools()
            sampled = await session.call_tool("test__sample", {"prompt": "5+5"})
            roots = await session.call_tool("test__roots", {})
    assert fast(service).handled == before + 2
    assert sampled.structured_content == {"text": "answer to 5+5", "model": "fake-llm"}
    assert roots.structured_content == {"roots": ["file:///work/a", "file:///work/b"]}


async def test_an_upstream_question_the_client_answers_with_an_error_fails_the_call_cleanly(
    service: Service, token: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:  # offers no sampling
            result = await session.call_tool("test__sample", {"prompt": "1+1"})
    assert result.is_error


async def test_a_cancelled_fast_call_is_answered_as_cancelled_and_recorded(
    service: Service, token: str
) -> None:
    message = call(11, "unused", _meta={"progressToken": 11})
    message["params"] |= {"name": "test__slow", "arguments": {"seconds": 20}}
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(TIMEOUT)) as http:
            raw = RawSession(http, service.url, token)
            await raw.open()
            async with http.stream(
                "POST", raw.url, content=json.dumps(message), headers=raw.headers
            ) as stream:
                lines = stream.aiter_lines()
                async for line in lines:
                    if line.startswith("data: ") and "notifications/progress" in line:
                        break  # the call is running upstream
                cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 11}}
                assert (await raw.post_json(cancel)).status_code == 202
                rest = [json.loads(line[6:]) async for line in lines if line.startswith("data: ")]
        await service.recorder.flush()
    assert rest[-1] == {"jsonrpc": "2.0", "id": 11, "error": {"code": -32800, "message": "Request cancelled"}}
    outcomes = [row["outcome"] for row in service.audit.tail(0, 100000) if row["kind"] == "outcome"]
    assert outcomes[-1] == "cancelled"


async def test_another_clients_token_cannot_use_a_session_fast_or_slow(service: Service, token: str) -> None:
    other = service.tokens.get_or_create("someone-else")
    before = fast(service).handled
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            raw = RawSession(http, service.url, token)
            await raw.open()
            response = await raw.post_json(call(5, "stolen-session"), authorization=f"Bearer {other}")
    assert response.status_code == 404
    assert fast(service).handled == before
    assert rows_of(service, "stolen-session") == []


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": ', {}, 400),  # not JSON
        (json.dumps(call(1, "wrong-type")).encode(), {"content-type": "text/plain"}, 400),
        (json.dumps(call(1, "wrong-accept")).encode(), {"accept": "application/json"}, 406),
        (json.dumps([call(1, "batch")]).encode(), {}, 400),
        (json.dumps(call(True, "bool-id")).encode(), {}, 202),  # the SDK reads it as a notification
    ],
)
async def test_what_the_fast_path_does_not_take_gets_the_sdks_answer(
    service: Service, token: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    before = fast(service).handled
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            raw = RawSession(http, service.url, token)
            await raw.open()
            response = await raw.post_raw(body, **headers)
    assert response.status_code == status
    assert fast(service).handled == before
    if status >= 400:
        assert "error" in response.json()


async def test_a_task_augmented_call_goes_to_the_sdk(service: Service, token: str) -> None:
    before = fast(service).handled
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            raw = RawSession(http, service.url, token)
            await raw.open()
            response = await raw.post_json(call(9, "task-call", task={"ttl": 1000}))
    assert fast(service).handled == before
    assert response.status_code == 200
    answer = (
        sse_messages(response.text)[-1]
        if "event-stream" in response.headers["content-type"]
        else response.json()
    )
    assert answer["id"] == 9


async def test_a_2026_client_takes_the_sdks_path(service: Service, token: str) -> None:
    before = fast(service).handled
    with anyio.fail_after(TIMEOUT):
        async with Client(client_url(service.port, token)) as client:
            result = await client.call_tool("test__echo", {"text": "modern-era"})
    assert result.structured_content == {"text": "modern-era"}
    assert fast(service).handled == before


async def test_a_call_held_on_the_fast_path_waits_for_the_person(tmp_path: Any) -> None:
    policy = {"version": "1", "default": "require_approval"}
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, policy)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("held")
            service.broker.attach_approver()
            shown: list[bytes] = []

            def approve(request: Any, resolution: Any) -> None:
                if resolution is None:
                    shown.append(request.arguments)
                    asyncio.get_running_loop().call_soon(service.broker.approve, request.id)

            service.broker.subscribe(approve)
            async with legacy_client(service.url, token) as session:
                await session.list_tools()
                result = await session.call_tool("test__echo", {"text": "held-fast"})
            await service.recorder.flush()
            (decision,) = rows_of(service, "held-fast")
            assert fast(service).handled == 1
    assert json.loads(shown[0]) == {"text": "held-fast"}
    assert result.structured_content == {"text": "held-fast"}
    assert decision["decided_by"] == "user"


async def test_a_held_fast_call_the_client_cancels_is_withdrawn_answered_and_recorded(tmp_path: Any) -> None:
    policy = {"version": "1", "default": "require_approval"}
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, policy)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("held-cancel")
            service.broker.attach_approver()
            arrived, ended = anyio.Event(), anyio.Event()

            def watch(request: Any, resolution: Any) -> None:
                (ended if resolution is not None else arrived).set()

            service.broker.subscribe(watch)
            async with httpx2.AsyncClient(timeout=httpx2.Timeout(TIMEOUT)) as http:
                raw = RawSession(http, service.url, token)
                await raw.open()
                async with anyio.create_task_group() as group:
                    answers: list[httpx2.Response] = []

                    async def held() -> None:
                        answers.append(await raw.post_json(call(21, "never-forwarded")))

                    group.start_soon(held)
                    await arrived.wait()  # waiting for a person
                    cancel = {
                        "jsonrpc": "2.0",
                        "method": "notifications/cancelled",
                        "params": {"requestId": 21},
                    }
                    assert (await raw.post_json(cancel)).status_code == 202
                await ended.wait()
            await service.recorder.flush()
            rows = rows_of(service, "never-forwarded")
            assert fast(service).handled == 1 and service.broker.pending() == []
    assert answers[0].json() == {
        "jsonrpc": "2.0",
        "id": 21,
        "error": {"code": -32800, "message": "Request cancelled"},
    }
    assert [(row["kind"], row["decision"], row["decided_by"]) for row in rows] == [
        ("decision", "deny", "cancelled")
    ]


def test_the_fast_path_knows_this_sdks_session_manager() -> None:
    # If an SDK upgrade renames what the fast path reads, it turns itself off and every call
    # takes the slow path: correct, but this test says so before the benchmarks do.
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    manager = StreamableHTTPSessionManager(app=None)  # type: ignore[arg-type]
    assert FastCalls(None, manager).enabled  # type: ignore[arg-type]


async def test_a_fast_call_keeps_its_session_from_expiring(service: Service, token: str) -> None:
    # The SDK ends a session 30 minutes after its last request; calls answered on the fast path
    # must count as requests, or a client that only calls tools loses its session mid-work.
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            raw = RawSession(http, service.url, token)
            await raw.open()
            manager = service.gateway.server.session_manager
            transport = manager._server_instances[raw.headers["mcp-session-id"]]
            assert transport.idle_scope is not None
            transport.idle_scope.deadline = anyio.current_time() + 5  # nearly expired
            response = await raw.post_json(call(21, "keeps-alive"))
            assert response.status_code == 200 and fast(service).handled
            assert transport.idle_scope.deadline > anyio.current_time() + 60


async def test_a_session_that_never_listed_has_its_first_call_registered_through_the_sdk(
    service: Service, token: str
) -> None:
    # Notifications (list changes, log messages) reach 2025-era sessions the gateway has seen
    # through the SDK; a client that calls without listing first must not miss them.
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            raw = RawSession(http, service.url, token)
            await raw.open(list_tools=False)
            before = fast(service).handled
            first = await raw.post_json(call(31, "first-unlisted"))
            assert fast(service).handled == before
            assert service.gateway.tracks(raw.headers["mcp-session-id"])
            second = await raw.post_json(call(32, "second-unlisted"))
            assert fast(service).handled == before + 1
    assert first.status_code == 200 and "first-unlisted" in first.text
    assert second.json()["result"]["structuredContent"] == {"text": "second-unlisted"}
