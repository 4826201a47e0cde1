"""One client cannot hold more than its share of sessions, nor keep another client from opening one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import httpx2
import pytest

from approver.gateway.session_quota import MAX_SESSIONS_PER_CLIENT
from approver.service import Service
from approver.testing.fuzz_cases import LEGACY, MODERN, dumps, request, routing
from approver.testing.harness import running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

WAIT = 120.0
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    root = tmp_path_factory.mktemp("sessions")
    paths = write_config(root, {"test": upstream_entry()}, {"version": "1", "default": "allow"})
    async with running_service(paths) as running:
        yield running


async def initialize(http: httpx2.AsyncClient, url: str, token: str) -> httpx2.Response:
    params = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    headers = ACCEPT | {"authorization": f"Bearer {token}"}
    return await http.post(url, headers=headers, content=dumps(request("initialize", params, 0, LEGACY)))


async def test_one_client_gets_its_share_of_sessions_and_another_client_can_still_initialize(
    service: Service,
) -> None:
    greedy = service.tokens.get_or_create("greedy")
    other = service.tokens.get_or_create("other")
    with anyio.fail_after(WAIT):
        async with httpx2.AsyncClient() as http:
            opened = [await initialize(http, service.url, greedy) for _ in range(MAX_SESSIONS_PER_CLIENT)]
            refused = await initialize(http, service.url, greedy)
            welcome = await initialize(http, service.url, other)
            sessionless = await http.post(
                service.url,
                headers=ACCEPT | {"authorization": f"Bearer {greedy}"} | routing("tools/list"),
                content=dumps(request("tools/list", None, 1, MODERN)),
            )
            first = opened[0].headers["mcp-session-id"]
            closed = await http.delete(
                service.url,
                headers={
                    "authorization": f"Bearer {greedy}",
                    "mcp-session-id": first,
                    "mcp-protocol-version": LEGACY,
                },
            )
            again = await initialize(http, service.url, greedy)

    assert {answer.status_code for answer in opened} == {200}
    assert refused.status_code == 429
    message = json.loads(refused.content)["error"]["message"]
    assert message.startswith(f"too many open sessions: client 'greedy' holds {MAX_SESSIONS_PER_CLIENT}")
    assert welcome.status_code == 200 and welcome.headers["mcp-session-id"]
    assert sessionless.status_code == 200  # the 2026-07-28 era has no sessions to count
    assert closed.status_code == 200
    assert again.status_code == 200  # a closed session makes room again
