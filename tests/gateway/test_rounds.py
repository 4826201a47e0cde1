"""An upstream's questions during a call reach only the client whose call asked.

Real ``Service``, one stdio test server shared by two clients, real HTTP. Alice's call elicits
only once Bob's call is running on the same upstream; the upstream's request does not say which
call it belongs to, so approver must refuse it rather than hand it to Bob (who would happily
confirm whatever it asks). With one client's calls alone on the upstream, the question reaches
that client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client

from approver.service import Service, client_url
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 30
POLICY: dict[str, Any] = {"version": "1", "default": "deny", "tools": {"test__*": {"action": "allow"}}}
CONFIRM = "Confirm transfer of 5000 EUR from Alice's account"

Call = Callable[..., Awaitable[types.CallToolResult]]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    paths = write_config(tmp_path_factory.mktemp("rounds"), {"test": upstream_entry("test")}, POLICY)
    async with running_service(paths) as running:
        yield running


class Person:
    """A client's user who confirms whatever an elicitation asks, and remembers being asked."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked: list[str] = []

    async def elicited(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": self.name})


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def signal(event: anyio.Event) -> Callable[[float, float | None, str | None], Awaitable[None]]:
    async def progress(progress: float, total: float | None, message: str | None) -> None:
        event.set()

    return progress


async def elicit_while_another_call_runs(alice_call: Call, bob_call: Call, gate: str) -> types.CallToolResult:
    """Alice's call starts first and asks only once Bob's call runs on the same upstream."""
    alice_waiting, bob_running, alice_done = anyio.Event(), anyio.Event(), anyio.Event()
    results: list[types.CallToolResult] = []

    async def alice() -> None:
        ask = {"message": CONFIRM, "gate": gate}
        results.append(await alice_call("test__elicit", ask, progress_callback=signal(alice_waiting)))
        alice_done.set()

    async def bob() -> None:
        await bob_call("test__slow", {"seconds": 20}, progress_callback=signal(bob_running))

    async with anyio.create_task_group() as group:
        group.start_soon(alice)
        await alice_waiting.wait()
        group.start_soon(bob)
        await bob_running.wait()
        await bob_call("test__open_gate", {"gate": gate})
        await alice_done.wait()
        group.cancel_scope.cancel()
    return results[0]


async def test_an_elicitation_while_two_2025_clients_calls_run_reaches_neither_and_is_refused(
    service: Service, request: pytest.FixtureRequest
) -> None:
    alice, bob = Person("alice"), Person("bob")
    with anyio.fail_after(TIMEOUT):
        async with (
            legacy_client(
                service.url, service.tokens.get_or_create("alice"), elicitation_callback=alice.elicited
            ) as a,
            legacy_client(
                service.url, service.tokens.get_or_create("bob"), elicitation_callback=bob.elicited
            ) as b,
        ):
            result = await elicit_while_another_call_runs(a.call_tool, b.call_tool, request.node.name)
            alone = await a.call_tool("test__elicit", {"message": CONFIRM})
    assert bob.asked == []
    assert result.is_error and "cannot tell which of them" in text_of(result)
    assert alice.asked == [CONFIRM]  # only when her call ran alone
    assert not alone.is_error and '"name": "alice"' in text_of(alone)


async def test_an_elicitation_while_two_2026_clients_calls_run_reaches_neither_and_is_refused(
    service: Service, request: pytest.FixtureRequest
) -> None:
    alice, bob = Person("alice"), Person("bob")
    with anyio.fail_after(TIMEOUT):
        async with (
            Client(
                client_url(service.port, service.tokens.get_or_create("alice")),
                elicitation_callback=alice.elicited,
            ) as a,
            Client(
                client_url(service.port, service.tokens.get_or_create("bob")),
                elicitation_callback=bob.elicited,
            ) as b,
        ):
            result = await elicit_while_another_call_runs(a.call_tool, b.call_tool, request.node.name)
            alone = await a.call_tool("test__elicit", {"message": CONFIRM})
    assert bob.asked == []
    assert result.is_error and "cannot tell which of them" in text_of(result)
    assert alice.asked == [CONFIRM]
    assert not alone.is_error and '"name": "alice"' in text_of(alone)


async def test_an_elicitation_while_only_the_same_clients_calls_run_reaches_that_client(
    service: Service, request: pytest.FixtureRequest
) -> None:
    alice = Person("alice")
    token = service.tokens.get_or_create("alice")
    with anyio.fail_after(TIMEOUT):
        async with (
            legacy_client(service.url, token, elicitation_callback=alice.elicited) as a,
            legacy_client(service.url, token, elicitation_callback=alice.elicited) as also_a,
        ):
            result = await elicit_while_another_call_runs(a.call_tool, also_a.call_tool, request.node.name)
    assert not result.is_error
    assert alice.asked == [CONFIRM]
