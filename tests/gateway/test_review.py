"""After the decision: a person's edit runs instead of the call as made, and a result a rule holds
for review reaches the agent only once a person passes it on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest

from approver.approval.broker import Scope
from approver.approval.editing import encode_arguments
from approver.audit.log import AuditLog
from approver.service import Service
from approver.testing.harness import Desk, legacy_client, running_service, upstream_entry, write_config
from approver.testing.held_scenario import read_call_log

pytestmark = pytest.mark.anyio

TIMEOUT = 30
POLICY: dict[str, Any] = {
    "version": "1",
    "default": "deny",
    "tools": {
        "test__write_note": {"action": "require_approval"},
        "test__echo": {"action": "allow", "review_result": True},
        "test__add": {"action": "require_approval", "review_result": True},
    },
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    servers = {"test": upstream_entry("test", "--call-log", str(tmp_path / "calls.jsonl"))}
    async with running_service(write_config(tmp_path, servers, POLICY), approval_timeout=60) as running:
        yield running


@pytest.fixture
async def desk(service: Service) -> AsyncIterator[Desk]:
    sitting = Desk(service, TIMEOUT)
    yield sitting
    sitting.leave()


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def rows_of(service: Service, tool: str) -> list[dict[str, Any]]:
    return [row for row in service.audit.tail(0, 10_000) if row["tool"] == tool]


async def test_an_edited_call_runs_with_the_edit_and_the_log_keeps_both_argument_sets(
    service: Service, desk: Desk
) -> None:
    token = service.tokens.get_or_create("agent")
    edited = encode_arguments({"path": "/home/me/notes/safe.md", "text": "hello"})
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            call = asyncio.create_task(
                session.call_tool("test__write_note", {"path": "/etc/passwd", "text": "hello"})
            )
            request = await desk.next()
            assert desk.broker.approve(request.id, arguments=edited)
            result = await call

    assert not result.is_error
    assert read_call_log(service.paths.config_dir.parent / "calls.jsonl") == [
        {"tool": "write_note", "arguments": {"path": "/home/me/notes/safe.md", "text": "hello"}}
    ]
    note, answer = text_of(result).split("\n", 1)
    assert note.startswith("approver: the user edited this call's arguments before approving it")
    assert '"path":"/home/me/notes/safe.md"' in note
    assert answer == "ok: wrote nothing to /home/me/notes/safe.md"
    await service.recorder.flush()
    decision, edit, outcome = rows_of(service, "test__write_note")
    assert (decision["kind"], edit["kind"], outcome["kind"]) == ("decision", "edit", "outcome")
    assert json.loads(decision["arguments"])["path"] == "/etc/passwd"
    assert json.loads(edit["arguments"])["path"] == "/home/me/notes/safe.md"
    assert decision["reason"].startswith("approved by the user with edited arguments")
    assert edit["decided_by"] == "user" and edit["call_id"] == decision["call_id"]
    assert edit["args_sha256"] != decision["args_sha256"]
    details = service.audit.call(decision["id"])
    assert details is not None and details["edit_id"] == edit["id"]
    with AuditLog(service.paths.audit_db, read_only=True) as log:
        assert log.verify().ok


async def test_an_edit_that_breaks_the_tools_schema_is_denied_and_nothing_runs(
    service: Service, desk: Desk
) -> None:
    token = service.tokens.get_or_create("agent")
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            call = asyncio.create_task(session.call_tool("test__write_note", {"path": "/a", "text": "x"}))
            request = await desk.next()
            assert desk.broker.approve(request.id, arguments=encode_arguments({"path": 42, "text": "x"}))
            result = await call

    assert result.is_error and "do not fit the tool's input schema" in text_of(result)
    assert read_call_log(service.paths.config_dir.parent / "calls.jsonl") == []
    [decision] = rows_of(service, "test__write_note")
    assert (decision["decision"], decided_by := decision["decided_by"]) == ("deny", "error"), decided_by


async def test_an_edit_is_approved_once_never_for_a_session() -> None:
    from approver.approval.broker import Broker

    with pytest.raises(ValueError, match="approved once"):
        Broker().approve("r1", Scope.SESSION, arguments=b"{}")


async def test_a_reviewed_result_reaches_the_agent_only_after_the_person_passes_it_on(
    service: Service, desk: Desk
) -> None:
    token = service.tokens.get_or_create("agent")
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            call = asyncio.create_task(session.call_tool("test__echo", {"text": "secret plans"}))
            review = await desk.next()
            assert review.result is not None and "secret plans" in review.result
            assert not call.done()
            assert desk.broker.approve(review.id)
            result = await call

    assert not result.is_error and text_of(result) == "secret plans"
    await service.recorder.flush()
    kinds = [(row["kind"], row["decision"], row["decided_by"]) for row in rows_of(service, "test__echo")]
    assert kinds == [("decision", "allow", "policy"), ("outcome", None, None), ("review", "allow", "user")]


async def test_a_withheld_result_gives_the_agent_the_persons_message_and_the_call_still_ran(
    service: Service, desk: Desk
) -> None:
    token = service.tokens.get_or_create("agent")
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            call = asyncio.create_task(session.call_tool("test__add", {"a": 2, "b": 3}))
            asked = await desk.next()
            assert asked.result is None
            assert desk.broker.approve(asked.id)
            review = await desk.next()
            assert review.result is not None and review.result.startswith("5")
            assert desk.broker.deny(review.id, "not for you")
            result = await call

    assert result.is_error
    assert text_of(result) == "approver withheld this call's result: not for you. The call itself did run."
    assert read_call_log(service.paths.config_dir.parent / "calls.jsonl") == [
        {"tool": "add", "arguments": {"a": 2, "b": 3}}
    ]
    await service.recorder.flush()
    review_row = rows_of(service, "test__add")[-1]
    assert (review_row["kind"], review_row["decision"], review_row["reason"]) == (
        "review",
        "deny",
        "not for you",
    )


async def test_without_an_approval_window_a_result_held_for_review_is_withheld(service: Service) -> None:
    token = service.tokens.get_or_create("agent")
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            result = await session.call_tool("test__echo", {"text": "hi"})
    assert result.is_error and text_of(result).startswith("approver withheld this call's result")
    await service.recorder.flush()
    assert rows_of(service, "test__echo")[-1]["decided_by"] == "no-approver"
