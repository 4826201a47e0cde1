"""Session grants belong to the client that was given them: attacks with borrowed session keys.

Real ``Service``, real upstream subprocess, real HTTP. Alice is given "approve for this session";
Bob then presents Alice's session id, or the key her sessionless grant used to be stored under,
and must be asked like anyone else. An approver stands in for the person: it approves Alice's
calls for her session and denies everything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from approver.approval.broker import ApprovalRequest, Resolution, Scope
from approver.gateway.grants import GrantKey, Grants
from approver.service import Service, client_url
from approver.testing.harness import running_service, upstream_entry, write_config
from approver.testing.raw import RawSession, answer_of, post_modern

pytestmark = pytest.mark.anyio

TIMEOUT = 30
POLICY: dict[str, Any] = {
    "version": "1",
    "default": "deny",
    "tools": {"test__echo": {"action": "allow"}, "test__delete_note": {"action": "require_approval"}},
}
SESSION_GRANT = "allowed for this session by the user"
TRUSTED = {"alice", "carol"}
"""Clients whose calls the stand-in person approves for the session."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    paths = write_config(tmp_path_factory.mktemp("grants"), {"test": upstream_entry("test")}, POLICY)
    async with running_service(paths) as running:
        yield running


@pytest.fixture
def asked(service: Service) -> Iterator[list[ApprovalRequest]]:
    """Every request the person was asked; trusted clients' are approved for the session, others denied."""
    seen: list[ApprovalRequest] = []

    def answer(request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is not None:
            return
        seen.append(request)
        loop = asyncio.get_running_loop()
        if request.client in TRUSTED:
            loop.call_soon(service.broker.approve, request.id, Scope.SESSION)
        else:
            loop.call_soon(service.broker.deny, request.id, "not yours")

    detach = service.broker.attach_approver()
    unsubscribe = service.broker.subscribe(answer)
    yield seen
    unsubscribe()
    detach()


def decision_of(service: Service, marker: str) -> dict[str, Any]:
    rows = [
        row
        for row in service.audit.tail(0, 100000)
        if row["kind"] == "decision" and marker in (row.get("arguments") or "")
    ]
    assert len(rows) == 1, rows
    return rows[0]


def delete(marker: str) -> dict[str, Any]:
    return {"name": "test__delete_note", "arguments": {"path": f"/notes/{marker}"}}


async def test_a_2026_request_with_another_clients_session_id_is_asked_not_granted(
    service: Service, asked: list[ApprovalRequest]
) -> None:
    alice, bob = service.tokens.get_or_create("alice"), service.tokens.get_or_create("bob")
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
            session = RawSession(http, service.url, alice)
            await session.open()
            first = answer_of(
                await session.post_json(
                    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": delete("a1")}
                )
            )
            again = answer_of(
                await session.post_json(
                    {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": delete("a2")}
                )
            )
            borrowed = await post_modern(
                http,
                service.url,
                bob,
                "tools/call",
                delete("b1"),
                name="test__delete_note",
                headers={"mcp-session-id": session.session_id},
            )
            legacy = await http.post(
                service.url,
                json={"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": delete("b2")},
                headers=session.headers | {"authorization": f"Bearer {bob}"},
            )
    assert not first["result"].get("isError") and not again["result"].get("isError")
    assert [request.client for request in asked] == ["alice", "bob"]  # Alice once, then her grant
    assert decision_of(service, "a2")["reason"] == SESSION_GRANT
    bobs = answer_of(borrowed)["result"]
    assert bobs["isError"] and "not yours" in bobs["content"][0]["text"]
    row = decision_of(service, "b1")
    assert (row["client"], row["decision"], row["decided_by"]) == ("bob", "deny", "user")
    assert SESSION_GRANT not in row["reason"]
    assert legacy.status_code == 404  # a 2025-era session belongs to the token that opened it
    assert not [row for row in service.audit.tail(0, 100000) if "b2" in (row.get("arguments") or "")]


async def test_a_sessionless_grant_cannot_be_borrowed_by_naming_its_client(
    service: Service, asked: list[ApprovalRequest]
) -> None:
    alice, mallory = service.tokens.get_or_create("alice"), service.tokens.get_or_create("mallory")
    with anyio.fail_after(TIMEOUT):
        async with Client(client_url(service.port, alice)) as client:
            granted = await client.call_tool("test__delete_note", {"path": "/notes/c1"})
        async with Client(client_url(service.port, alice)) as client:  # a new connection, same token
            covered = await client.call_tool("test__delete_note", {"path": "/notes/c2"})
        async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
            forged = [
                await post_modern(
                    http,
                    service.url,
                    mallory,
                    "tools/call",
                    delete(f"m{i}"),
                    name="test__delete_note",
                    request_id=i,
                    headers={"mcp-session-id": key},
                )
                for i, key in enumerate(["client:alice", "alice", "local"])
            ]
    assert not granted.is_error and not covered.is_error
    assert [request.client for request in asked] == ["alice", "mallory", "mallory", "mallory"]
    assert decision_of(service, "c2")["reason"] == SESSION_GRANT
    for i, response in enumerate(forged):
        assert answer_of(response)["result"]["isError"]
        row = decision_of(service, f"m{i}")
        assert (row["client"], row["decision"], row["decided_by"]) == ("mallory", "deny", "user")


async def test_a_replaced_token_starts_without_the_old_tokens_grants(
    service: Service, asked: list[ApprovalRequest]
) -> None:
    token = service.tokens.get_or_create("carol")
    with anyio.fail_after(TIMEOUT):
        async with Client(client_url(service.port, token)) as client:
            await client.call_tool("test__delete_note", {"path": "/notes/t1"})
            await client.call_tool("test__delete_note", {"path": "/notes/t2"})
        service.tokens.revoke("carol")
        fresh = service.tokens.get_or_create("carol")
        async with Client(client_url(service.port, fresh)) as client:
            await client.call_tool("test__delete_note", {"path": "/notes/t3"})
    assert [request.client for request in asked] == ["carol", "carol"]
    assert decision_of(service, "t3")["reason"].startswith("approved by the user; waited ")


def test_a_grant_covers_only_its_principal_session_and_subject() -> None:
    grants = Grants()
    grants.add(GrantKey("alice#1", "s1", "test__x"))
    assert grants.covers(GrantKey("alice#1", "s1", "test__x"))
    for other in (
        GrantKey("alice#2", "s1", "test__x"),
        GrantKey("bob#1", "s1", "test__x"),
        GrantKey("alice#1", None, "test__x"),
        GrantKey("alice#1", "s2", "test__x"),
        GrantKey("alice#1", "s1", "test__y"),
    ):
        assert not grants.covers(other)


def test_the_oldest_grant_is_forgotten_past_the_limit() -> None:
    grants = Grants(limit=2)
    keys = [GrantKey("a", None, f"t{i}") for i in range(3)]
    for key in keys:
        grants.add(key)
    assert len(grants) == 2
    assert not grants.covers(keys[0]) and grants.covers(keys[2])
