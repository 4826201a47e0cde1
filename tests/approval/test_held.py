"""Held calls: patience, retries that join the pending decision, single-use decisions after it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import pytest

from approver.approval.broker import ApprovalRequest, Broker, Resolution, Scope, Verdict
from approver.approval.held import Held, HeldCalls, Waited, held_decision
from approver.approval.kept import CallKey, KeptDecisions
from approver.calls import Action, Risk, RiskClass, RiskLevel, ToolRef

pytestmark = pytest.mark.anyio

NOW = 1_000_000.0
WAIT = 5
"""Seconds any test may wait for a task to reach a point; a bound, never a sleep."""
SOON = 0.01
"""A patience that runs out at once."""

KEY = CallKey.of("claude", "files__delete_file", b'{"path":"/tmp/x"}')


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """A clock that only moves when a test moves it."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Dialog:
    """Stands where the approval dialog is: sees arrivals and endings, and answers through the broker."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.arrived: list[ApprovalRequest] = []
        self.ended: list[tuple[str, Verdict]] = []
        self._changed = asyncio.Event()
        broker.attach_approver()
        broker.subscribe(self._seen)

    def _seen(self, request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None:
            self.arrived.append(request)
        else:
            self.ended.append((request.id, resolution.verdict))
        self._changed.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(WAIT):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


async def settled(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds: a few turns, bounded (the broker's task ends)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def setup(clock: Clock | None = None, *, timeout: float = 3600) -> tuple[HeldCalls, Dialog, Clock]:
    clock = clock or Clock()
    broker = Broker(timeout=timeout, clock=clock)
    held = HeldCalls(broker, KeptDecisions(clock), clock)
    dialog = Dialog(broker)
    held.on_agent_change(lambda request: dialog._changed.set())
    return held, dialog, clock


def maker(request_id: str, clock: Clock, timeout: float = 3600) -> Callable[[], ApprovalRequest]:
    def make() -> ApprovalRequest:
        return ApprovalRequest(
            id=request_id,
            client=KEY.principal,
            session="s1",
            tool=ToolRef("files", "delete_file", KEY.tool),
            risk=Risk(RiskClass.DESTRUCTIVE, RiskLevel.HIGH),
            description="deletes a file",
            arguments=b'{"path":"/tmp/x"}',
            received=clock(),
            deadline=clock() + timeout,
            rule="risk_defaults.destructive",
        )

    return make


async def told(held: HeldCalls, request_id: str, clock: Clock) -> Held:
    with anyio.fail_after(WAIT):
        result = await held.decide(KEY, maker(request_id, clock), SOON)
    assert result.waited is Waited.TOLD_TO_RETRY
    return result


async def test_a_call_that_reaches_its_patience_is_told_to_retry_and_stays_in_the_dialog() -> None:
    held, dialog, clock = setup()

    result = await told(held, "a", clock)

    assert result.original_id == "a"
    assert [r.id for r in dialog.broker.pending()] == ["a"]
    assert dialog.ended == []
    assert dialog.arrived[0].agent.told_to_retry_at == NOW


async def test_a_retry_joins_the_pending_decision_and_gets_the_approval() -> None:
    held, dialog, clock = setup()
    await told(held, "a", clock)

    retry = asyncio.create_task(held.decide(KEY, maker("b", clock), WAIT))
    await dialog.wait_until(lambda: dialog.arrived[0].agent.retries == 1)
    assert dialog.broker.approve("a")
    with anyio.fail_after(WAIT):
        result = await retry

    assert (result.waited, result.joined, result.original_id) == (Waited.DECIDED, True, "a")
    assert result.resolution is not None and result.resolution.verdict is Verdict.APPROVED
    assert [r.id for r in dialog.arrived] == ["a"], "the retry opened no second dialog"
    assert len(held.kept) == 0, "the waiting retry used the approval"


async def test_an_approval_given_while_nobody_waits_runs_the_next_identical_call_once() -> None:
    held, dialog, clock = setup()
    await told(held, "a", clock)
    dialog.broker.approve("a")
    await settled(lambda: len(held.kept) == 1)

    first = await held.decide(KEY, maker("b", clock), SOON)
    second = await held.decide(KEY, maker("c", clock), SOON)

    assert first.waited is Waited.DECIDED and first.joined and first.original_id == "a"
    assert second.waited is Waited.TOLD_TO_RETRY and second.original_id == "c"
    assert [r.id for r in dialog.arrived] == ["a", "c"]


async def test_another_client_tool_or_argument_neither_joins_nor_uses_the_decision() -> None:
    held, dialog, clock = setup()
    await told(held, "a", clock)
    dialog.broker.approve("a")
    await settled(lambda: len(held.kept) == 1)

    for i, key in enumerate(
        [
            CallKey.of("cursor", KEY.tool, b'{"path":"/tmp/x"}'),
            CallKey.of(KEY.principal, "files__write_file", b'{"path":"/tmp/x"}'),
            CallKey.of(KEY.principal, KEY.tool, b'{"path":"/tmp/y"}'),
        ]
    ):
        result = await held.decide(key, maker(f"other{i}", clock), SOON)
        assert result.waited is Waited.TOLD_TO_RETRY and result.original_id == f"other{i}"
    assert len(held.kept) == 1


async def test_a_kept_approval_expires_after_ten_minutes() -> None:
    held, dialog, clock = setup()
    await told(held, "a", clock)
    dialog.broker.approve("a")
    await settled(lambda: len(held.kept) == 1)

    clock.now += 601
    result = await held.decide(KEY, maker("b", clock), SOON)

    assert result.waited is Waited.TOLD_TO_RETRY and result.original_id == "b"


async def test_the_retry_gets_the_persons_denial_message_after_the_dialog_closed() -> None:
    held, dialog, clock = setup()
    await told(held, "a", clock)
    dialog.broker.deny("a", "not that file")
    await settled(lambda: len(held.kept) == 1)

    result = await held.decide(KEY, maker("b", clock), SOON)
    decision, decided_by, message = held_decision(result, "rule", "", clock())

    assert (decision.action, decided_by) == (Action.DENY, "user")
    assert message == "not that file (held call a)"


async def test_the_retry_learns_that_nobody_approved_in_time() -> None:
    clock = Clock()
    held, dialog, _ = setup(clock)
    with anyio.fail_after(WAIT):
        result = await held.decide(KEY, maker("a", clock, timeout=SOON), SOON / 10)
    await dialog.wait_until(lambda: dialog.ended == [("a", Verdict.TIMED_OUT)])
    if result.waited is Waited.TOLD_TO_RETRY:
        result = await held.decide(KEY, maker("b", clock), SOON)

    decision, decided_by, message = held_decision(result, "rule", "", clock())
    assert (decision.action, decided_by) == (Action.DENY, "timeout")
    assert message.startswith("approval timed out")


async def test_cancelling_a_call_nobody_was_told_to_retry_withdraws_it() -> None:
    held, dialog, clock = setup()
    waiting = asyncio.create_task(held.decide(KEY, maker("a", clock), WAIT))
    await dialog.wait_until(lambda: len(dialog.arrived) == 1)

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    assert dialog.ended == [("a", Verdict.CANCELLED)]
    assert dialog.broker.pending() == []
    assert len(held.kept) == 0


async def test_cancelling_a_retry_leaves_the_decision_pending_for_the_next_one() -> None:
    held, dialog, clock = setup()
    await told(held, "a", clock)
    retry = asyncio.create_task(held.decide(KEY, maker("b", clock), WAIT))
    await dialog.wait_until(lambda: dialog.arrived[0].agent.retries == 1)

    retry.cancel()
    with pytest.raises(asyncio.CancelledError):
        await retry

    assert [r.id for r in dialog.broker.pending()] == ["a"]


async def test_a_client_that_leaves_before_being_told_withdraws_its_call() -> None:
    held, dialog, clock = setup()
    gone = asyncio.Event()
    waiting = asyncio.create_task(held.decide(KEY, maker("a", clock), WAIT, gone))
    await dialog.wait_until(lambda: len(dialog.arrived) == 1)

    gone.set()
    with anyio.fail_after(WAIT):
        result = await waiting

    assert result.waited is Waited.GONE
    assert dialog.ended == [("a", Verdict.CANCELLED)]


async def test_without_patience_a_call_waits_for_the_person_however_long() -> None:
    held, dialog, clock = setup()
    waiting = asyncio.create_task(held.decide(KEY, maker("a", clock), None))
    await dialog.wait_until(lambda: len(dialog.arrived) == 1)

    dialog.broker.approve("a", Scope.SESSION)
    with anyio.fail_after(WAIT):
        result = await waiting

    assert (result.waited, result.joined) == (Waited.DECIDED, False)
    assert result.resolution == Resolution(Verdict.APPROVED, "user", scope=Scope.SESSION)


async def test_of_two_identical_calls_waiting_one_gets_the_approval_and_the_other_asks_again() -> None:
    held, dialog, clock = setup()
    first = asyncio.create_task(held.decide(KEY, maker("a", clock), WAIT))
    await dialog.wait_until(lambda: len(dialog.arrived) == 1)
    second = asyncio.create_task(held.decide(KEY, maker("b", clock), WAIT))
    await asyncio.sleep(0)  # let the second attach (no waiting: one turn of the loop)

    dialog.broker.approve("a")
    await dialog.wait_until(lambda: len(dialog.arrived) == 2)

    assert first.done() and (await first).waited is Waited.DECIDED
    assert [r.id for r in dialog.broker.pending()] == ["b"]
    dialog.broker.deny("b")
    with anyio.fail_after(WAIT):
        assert (await second).resolution == Resolution(Verdict.DENIED, "user", "denied by the user")


async def test_a_pause_or_shutdown_is_not_kept_for_the_retry() -> None:
    held, dialog, clock = setup()
    await told(held, "a", clock)

    dialog.broker.deny_all("paused", "approver was paused")
    await settled(lambda: held.pending(KEY) is None)

    assert len(held.kept) == 0
    result = await held.decide(KEY, maker("b", clock), SOON)
    assert result.waited is Waited.TOLD_TO_RETRY and result.original_id == "b"


def test_the_agent_told_to_retry_reads_what_to_do_and_the_deadline() -> None:
    result = Held(Waited.TOLD_TO_RETRY, "a-1", NOW + 70)

    decision, decided_by, message = held_decision(result, "risk_defaults.write", "", NOW)

    assert (decision.action, decided_by) == (Action.DENY, "held")
    assert "Call this tool again with exactly the same arguments" in message
    assert "held call a-1" in message
    assert "within 70 s" in message
    assert "nothing has run yet" in message
