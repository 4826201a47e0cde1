"""What the audit log learns from one call: the upstream's error text, and a person's time apart
from the upstream's."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import anyio
import pytest

from approver.approval.broker import ApprovalRequest, Resolution, Scope
from approver.audit.log import AuditLog
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 30
POLICY = {"version": "1", "default": "allow", "tools": {"test__echo": {"action": "require_approval"}}}
PERSON_SECONDS = 1.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_an_upstream_error_result_keeps_its_text_in_the_outcome_row(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("tester")
            async with legacy_client(service.url, token) as session:
                result = await session.call_tool("test__fail", {})
            await service.recorder.flush()
    assert result.is_error
    with AuditLog(paths.audit_db, read_only=True) as log:
        [call] = log.query(limit=1)
    assert call["outcome"] == "error"
    assert call["error"] == "fail: this tool always fails"


async def test_a_persons_time_is_in_the_reason_and_not_in_the_upstreams_duration(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            detach = service.broker.attach_approver()
            token = service.tokens.get_or_create("tester")

            async def person() -> None:
                arrived: asyncio.Future[ApprovalRequest] = asyncio.get_running_loop().create_future()

                def watch(request: ApprovalRequest, resolution: Resolution | None) -> None:
                    if resolution is None and not arrived.done():
                        arrived.set_result(request)

                unsubscribe = service.broker.subscribe(watch)
                request = await arrived
                unsubscribe()
                await asyncio.sleep(PERSON_SECONDS)  # the person reads the call before approving
                service.broker.approve(request.id, Scope.ONCE)

            approving = asyncio.create_task(person())
            async with legacy_client(service.url, token) as session:
                result = await session.call_tool("test__echo", {"text": "hi"})
            await approving
            await service.recorder.flush()
            detach()
    assert not result.is_error
    with AuditLog(paths.audit_db, read_only=True) as log:
        [call] = log.query(limit=1)
    found = re.fullmatch(r"approved by the user; waited (\d+\.\d) s for a person", call["reason"])
    assert found is not None, call["reason"]
    waited = float(found.group(1))
    assert waited >= PERSON_SECONDS - 0.05
    assert call["duration_ms"] < waited * 1000
