"""The hook door: agents' own tool calls behind the front door's checks, decided like MCP calls,
and never reachable as MCP tools."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest

from approver.approval.broker import ApprovalRequest, Resolution, Scope
from approver.service import Service
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 30
POLICY: dict[str, Any] = {
    "version": "1",
    "default": "require_approval",
    "risk_defaults": {"read": "allow"},
    "risk_overrides": {"claude-code__Glob": {"level": "high"}},
    "tools": {"test__*": {"action": "allow"}, "claude-code__*": {"clients": ["nightly"], "action": "deny"}},
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(
        write_config(tmp_path, {"test": upstream_entry("test")}, POLICY), approval_timeout=60
    ) as running:
        yield running


def body(tool: str, tool_input: dict[str, Any], session: str = "s1") -> bytes:
    return json.dumps(
        {
            "session_id": session,
            "cwd": "/p",
            "hook_event_name": "PreToolUse",
            "tool_name": tool,
            "tool_input": tool_input,
        }
    ).encode()


async def post(
    service: Service, data: bytes, *, token: str | None, budget: str = "20", **headers: str
) -> httpx2.Response:
    sent = {"x-approver-hook-budget": budget, **headers}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        return await http.post(
            f"http://127.0.0.1:{service.port}/hooks/claude-code", content=data, headers=sent
        )


def decision_of(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    output: dict[str, Any] = response.json()["hookSpecificOutput"]
    return output


async def test_the_hook_door_has_the_front_doors_checks(service: Service) -> None:
    token = service.tokens.get_or_create("claude-code")
    data = body("Read", {"file_path": "/p/a"})
    with anyio.fail_after(TIMEOUT):
        assert (await post(service, data, token=None)).status_code == 401
        assert (await post(service, data, token="forged")).status_code == 401
        foreign = await post(service, data, token=token, origin="https://evil.example")
        assert foreign.status_code == 403
        misdirected = await post(service, data, token=token, host="evil.example")
        assert misdirected.status_code == 421
        assert decision_of(await post(service, data, token=token))["permissionDecision"] == "allow"
    assert [row["client"] for row in service.audit.tail(0, 100) if row["kind"] == "decision"] == [
        "claude-code"
    ]


async def test_an_unknown_agent_or_method_is_refused(service: Service) -> None:
    token = service.tokens.get_or_create("claude-code")
    headers = {"authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{service.port}/hooks"
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
            assert (await http.post(f"{base}/other-agent", content=b"{}", headers=headers)).status_code == 404
            assert (await http.get(f"{base}/claude-code", headers=headers)).status_code == 405


async def test_the_agents_own_tools_are_neither_listed_nor_callable_over_mcp(service: Service) -> None:
    token = service.tokens.get_or_create("cursor")
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            result = await session.call_tool("claude-code__Bash", {"command": "rm -rf /"})
    assert not any(name.startswith("claude-code__") for name in names)
    assert result.is_error
    text = " ".join(block.text for block in result.content if isinstance(block, types.TextContent))
    assert "unknown tool 'claude-code__Bash'" in text
    assert all(row["tool"] != "claude-code__Bash" for row in service.audit.tail(0, 100))


async def test_rules_for_clients_and_risk_overrides_apply_to_the_agents_tools(service: Service) -> None:
    nightly = service.tokens.get_or_create("nightly")
    with anyio.fail_after(TIMEOUT):
        said = decision_of(await post(service, body("Read", {"file_path": "/p/a"}), token=nightly))
    assert said["permissionDecision"] == "deny"
    assert 'tools["claude-code__*"]' in said["permissionDecisionReason"]
    token = service.tokens.get_or_create("claude-code")
    with anyio.fail_after(TIMEOUT):
        decision_of(await post(service, body("Glob", {"pattern": "*.py"}), token=token))
    glob = next(row for row in service.audit.tail(0, 100) if row["tool"] == "claude-code__Glob")
    assert glob["risk_level"] == "high" and "overridden by policy" in glob["risk_reasons"]


async def test_approve_for_this_session_lasts_for_the_agents_session_only(service: Service) -> None:
    token = service.tokens.get_or_create("claude-code")
    arrived: asyncio.Queue[ApprovalRequest] = asyncio.Queue()

    def seen(request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None:
            arrived.put_nowait(request)

    detach = service.broker.attach_approver()
    unsubscribe = service.broker.subscribe(seen)
    try:
        with anyio.fail_after(TIMEOUT):
            first = asyncio.create_task(post(service, body("Bash", {"command": "make"}, "one"), token=token))
            request = await arrived.get()
            assert request.session == "one"
            assert service.broker.approve(request.id, Scope.SESSION)
            assert decision_of(await first)["permissionDecision"] == "allow"
            same = decision_of(
                await post(service, body("Bash", {"command": "make test"}, "one"), token=token)
            )
            assert same["permissionDecision"] == "allow"
            other = asyncio.create_task(post(service, body("Bash", {"command": "make"}, "two"), token=token))
            again = await arrived.get()
            assert again.session == "two"
            assert service.broker.deny(again.id, "not now")
            assert decision_of(await other)["permissionDecision"] == "deny"
    finally:
        unsubscribe()
        detach()


async def test_while_paused_every_hook_call_is_denied(service: Service) -> None:
    token = service.tokens.get_or_create("claude-code")
    service.pause()
    with anyio.fail_after(TIMEOUT):
        said = decision_of(await post(service, body("Read", {"file_path": "/p/a"}), token=token))
    service.resume()
    assert said["permissionDecision"] == "deny" and "paused" in said["permissionDecisionReason"]


async def test_a_payload_approver_cannot_read_is_answered_ask(service: Service) -> None:
    token = service.tokens.get_or_create("claude-code")
    with anyio.fail_after(TIMEOUT):
        said = decision_of(await post(service, b'{"tool_name": 5}', token=token))
    assert said["permissionDecision"] == "ask"
