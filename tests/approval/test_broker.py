"""The approval broker: no-approver denial, settling once, timeouts, cancellation, observers."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import anyio
import pytest

from approver.approval.broker import (
    MAX_WAITING_PER_CLIENT,
    ApprovalRequest,
    Broker,
    Resolution,
    Scope,
    Verdict,
)
from approver.calls import Risk, RiskClass, RiskLevel, ToolRef

pytestmark = pytest.mark.anyio

NOW = 1_000_000.0
WAIT = 5
"""Seconds any test may wait for a task to reach a point; a bound, never a sleep."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """A clock that only moves when a test moves it."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def request(
    request_id: str = "r1", *, deadline: float = NOW + 3600, tool: str = "delete_file"
) -> ApprovalRequest:
    """A request that stays pending for an hour by the default clock."""
    return ApprovalRequest(
        id=request_id,
        client="claude",
        session="session-1",
        tool=ToolRef(server="files", tool=tool, name=f"files__{tool}"),
        risk=Risk(RiskClass.DESTRUCTIVE, RiskLevel.HIGH),
        description=f"{tool} wants to run",
        arguments=b'{"path":"/tmp/x"}',
        received=NOW,
        deadline=deadline,
        rule="risk_defaults.destructive",
    )


Seen = list[tuple[str, Resolution | None]]


class Arrivals:
    """An observer that records what it sees and lets a test wait for the n-th arrival."""

    def __init__(self, broker: Broker) -> None:
        self.seen: Seen = []
        self._arrived = 0
        self._changed = asyncio.Event()
        broker.subscribe(self)

    def __call__(self, request: ApprovalRequest, resolution: Resolution | None) -> None:
        self.seen.append((request.id, resolution))
        if resolution is None:
            self._arrived += 1
            self._changed.set()

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(WAIT):
            while self._arrived < count:
                self._changed.clear()
                await self._changed.wait()


def attached_broker(clock: Clock | None = None) -> Broker:
    broker = Broker(timeout=60, clock=clock or Clock())
    broker.attach_approver()
    return broker


async def test_a_request_is_denied_at_once_when_no_approver_is_attached() -> None:
    broker = Broker(clock=Clock())
    seen = Arrivals(broker)

    with anyio.fail_after(WAIT):
        resolution = await broker.submit(request())

    assert resolution.verdict is Verdict.DENIED
    assert resolution.decided_by == "no-approver"
    assert "no approval window" in resolution.message
    assert "approver serve" in resolution.message
    assert broker.pending() == []
    assert seen.seen == []


async def test_a_detached_approver_leaves_requests_to_be_denied_at_once() -> None:
    broker = Broker(clock=Clock())
    detach = broker.attach_approver()
    assert broker.has_approver
    detach()

    resolution = await broker.submit(request())

    assert not broker.has_approver
    assert resolution.decided_by == "no-approver"


def test_detaching_the_same_approver_twice_does_not_detach_another() -> None:
    broker = Broker(clock=Clock())
    first = broker.attach_approver()
    broker.attach_approver()

    first()
    first()

    assert broker.has_approver


async def test_approve_settles_the_request_and_a_second_approve_returns_false() -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    task = asyncio.create_task(broker.submit(request("r1")))
    await arrivals.wait_for(1)

    assert broker.approve("r1") is True
    assert broker.approve("r1") is False
    assert broker.deny("r1", "too late") is False

    with anyio.fail_after(WAIT):
        resolution = await task
    assert resolution == Resolution(Verdict.APPROVED, "user", scope=Scope.ONCE)
    assert broker.approve("r1") is False
    assert broker.pending() == []


def test_approving_an_unknown_request_returns_false() -> None:
    assert attached_broker().approve("nobody") is False


async def test_deny_carries_the_users_message_to_the_agent() -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    task = asyncio.create_task(broker.submit(request("r1")))
    await arrivals.wait_for(1)

    assert broker.deny("r1", "use the staging database instead")

    with anyio.fail_after(WAIT):
        resolution = await task
    assert resolution.verdict is Verdict.DENIED
    assert resolution.decided_by == "user"
    assert resolution.message == "use the staging database instead"


async def test_deny_without_a_message_tells_the_agent_the_user_denied_it() -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    task = asyncio.create_task(broker.submit(request("r1")))
    await arrivals.wait_for(1)

    broker.deny("r1")

    with anyio.fail_after(WAIT):
        resolution = await task
    assert resolution.message == "denied by the user"


async def test_a_request_whose_deadline_has_passed_times_out_at_once() -> None:
    clock = Clock()
    broker = attached_broker(clock)
    arrivals = Arrivals(broker)
    clock.now = NOW + 61

    with anyio.fail_after(WAIT):
        resolution = await broker.submit(request("r1", deadline=NOW + 60))

    assert resolution.verdict is Verdict.TIMED_OUT
    assert resolution.decided_by == "timeout"
    assert arrivals.seen == [("r1", None), ("r1", resolution)]
    assert broker.pending() == []
    assert broker.approve("r1") is False


async def test_cancelling_the_waiting_task_resolves_the_request_as_cancelled() -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    task = asyncio.create_task(broker.submit(request("r1")))
    await arrivals.wait_for(1)

    task.cancel()

    with anyio.fail_after(WAIT), pytest.raises(asyncio.CancelledError):
        await task
    assert len(arrivals.seen) == 2
    ended = arrivals.seen[1][1]
    assert ended is not None
    assert ended.verdict is Verdict.CANCELLED
    assert ended.decided_by == "cancelled"
    assert broker.pending() == []
    assert broker.approve("r1") is False


async def test_observers_see_the_arrival_and_then_the_ending() -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    task = asyncio.create_task(broker.submit(request("r1")))
    await arrivals.wait_for(1)
    assert arrivals.seen == [("r1", None)]

    broker.approve("r1")

    with anyio.fail_after(WAIT):
        resolution = await task
    assert arrivals.seen == [("r1", None), ("r1", resolution)]


async def test_an_unsubscribed_observer_sees_nothing_more() -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    late: Seen = []
    unsubscribe = broker.subscribe(lambda req, res: late.append((req.id, res)))
    task = asyncio.create_task(broker.submit(request("r1")))
    await arrivals.wait_for(1)

    unsubscribe()
    unsubscribe()
    broker.approve("r1")
    with anyio.fail_after(WAIT):
        await task

    assert late == [("r1", None)]


async def test_a_raising_observer_does_not_stop_the_request_being_settled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = attached_broker()

    def broken(req: ApprovalRequest, res: Resolution | None) -> None:
        raise RuntimeError("the UI has a bug")

    broker.subscribe(broken)
    arrivals = Arrivals(broker)
    task = asyncio.create_task(broker.submit(request("r1")))
    await arrivals.wait_for(1)

    with caplog.at_level(logging.ERROR, logger="approver.approval.broker"):
        assert broker.approve("r1") is True
        with anyio.fail_after(WAIT):
            resolution = await task

    assert resolution.verdict is Verdict.APPROVED
    assert arrivals.seen == [("r1", None), ("r1", resolution)]
    assert "approval observer failed" in caplog.text


async def test_deny_all_denies_every_pending_request() -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    tasks = [asyncio.create_task(broker.submit(request(f"r{i}"))) for i in (1, 2, 3)]
    await arrivals.wait_for(3)

    assert broker.deny_all("shutdown", "approver is quitting") == 3

    with anyio.fail_after(WAIT):
        resolutions = [await task for task in tasks]
    assert resolutions == [Resolution(Verdict.DENIED, "shutdown", "approver is quitting")] * 3
    assert broker.pending() == []
    assert broker.deny_all("shutdown", "again") == 0


async def test_a_closed_broker_denies_what_waits_and_every_later_request_at_once() -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    waiting = asyncio.create_task(broker.submit(request("r1")))
    await arrivals.wait_for(1)

    assert broker.close("shutdown", "approver is quitting") == 1

    shutdown = Resolution(Verdict.DENIED, "shutdown", "approver is quitting")
    with anyio.fail_after(WAIT):
        assert await waiting == shutdown
        assert await broker.submit(request("r2")) == shutdown
    assert broker.pending() == []


async def test_pending_lists_waiting_requests_oldest_first() -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    tasks = [
        asyncio.create_task(broker.submit(request(request_id))) for request_id in ("first", "second", "third")
    ]
    await arrivals.wait_for(3)
    assert [r.id for r in broker.pending()] == ["first", "second", "third"]

    broker.approve("second")
    with anyio.fail_after(WAIT):
        await tasks[1]

    assert [r.id for r in broker.pending()] == ["first", "third"]
    broker.deny_all("shutdown", "done")
    with anyio.fail_after(WAIT):
        await asyncio.gather(*tasks)


@pytest.mark.parametrize("scope", [Scope.SESSION, Scope.ALWAYS])
async def test_the_approval_scope_is_carried_in_the_resolution(scope: Scope) -> None:
    broker = attached_broker()
    arrivals = Arrivals(broker)
    task = asyncio.create_task(broker.submit(request("r1")))
    await arrivals.wait_for(1)

    broker.approve("r1", scope)

    with anyio.fail_after(WAIT):
        resolution = await task
    assert resolution.verdict is Verdict.APPROVED
    assert resolution.scope is scope


def test_new_ids_are_unique_even_when_the_clock_stands_still() -> None:
    broker = Broker(clock=Clock())

    ids = {broker.new_id() for _ in range(100)}

    assert len(ids) == 100


async def test_an_ended_request_is_no_longer_pending_when_observers_hear_of_it() -> None:
    broker = Broker(timeout=30, clock=Clock(NOW))
    broker.attach_approver()
    pending_at_end: list[list[str]] = []

    def observe(arrived: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None:
            broker.approve(arrived.id)
        else:
            pending_at_end.append([r.id for r in broker.pending()])

    broker.subscribe(observe)
    resolution = await broker.submit(request("only"))
    assert resolution.verdict is Verdict.APPROVED
    assert pending_at_end == [[]]


def client_request(request_id: str, client: str) -> ApprovalRequest:
    return dataclasses.replace(request(request_id), client=client)


async def test_a_client_past_its_waiting_limit_is_denied_at_once_and_other_clients_still_wait() -> None:
    broker = attached_broker()
    seen = Arrivals(broker)
    async with anyio.create_task_group() as group:
        for index in range(MAX_WAITING_PER_CLIENT):
            group.start_soon(broker.submit, client_request(f"greedy-{index}", "greedy"))
        await seen.wait_for(MAX_WAITING_PER_CLIENT)

        with anyio.fail_after(WAIT):
            refused = await broker.submit(client_request("greedy-extra", "greedy"))
        group.start_soon(broker.submit, client_request("polite-1", "polite"))
        await seen.wait_for(MAX_WAITING_PER_CLIENT + 1)

        assert (refused.verdict, refused.decided_by) == (Verdict.DENIED, "limit")
        assert f"client 'greedy' already has {MAX_WAITING_PER_CLIENT} calls waiting" in refused.message
        assert [r.id for r in broker.pending()][-1] == "polite-1"
        assert "greedy-extra" not in {r.id for r in broker.pending()}
        assert broker.approve("greedy-0")
        group.start_soon(broker.submit, client_request("greedy-again", "greedy"))
        await seen.wait_for(MAX_WAITING_PER_CLIENT + 2)  # an answered call made room
        broker.close("shutdown", "test over")
