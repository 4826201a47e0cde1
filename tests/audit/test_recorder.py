"""The recorder: ordered audit writes on one thread, grouped commits, decisions on disk before they return."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio
import pytest

from approver.audit import recorder as recorder_module
from approver.audit.log import AuditLog, AuditWriteError, DecisionRecord, OutcomeRecord
from approver.audit.recorder import Recorder
from approver.events import AuditFailed, Event, EventHub, Recorded
from approver.testing.records import decision_record as decision
from approver.testing.records import outcome_record as outcome

TIMEOUT = 10.0
"""Seconds any wait may take; a bound, never a sleep."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class WatchedLog(AuditLog):
    """A real audit log that remembers each transaction it committed and each sync."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits: list[tuple[list[str], bool]] = []
        """Per transaction: the kinds of its rows and whether the commit waited for the disk."""
        self.synced = threading.Event()

    def append(self, records: Sequence[DecisionRecord | OutcomeRecord], *, sync: bool = True) -> list[int]:
        ids = super().append(records, sync=sync)
        kinds = ["decision" if isinstance(record, DecisionRecord) else "outcome" for record in records]
        self.commits.append((kinds, sync))
        return ids

    def sync(self) -> bool:
        done = super().sync()
        self.synced.set()
        return done


@pytest.fixture
def log(tmp_path: Path) -> Iterator[WatchedLog]:
    watched = WatchedLog(tmp_path / "audit.db")
    yield watched
    watched.close()


@pytest.mark.anyio
async def test_concurrent_decisions_share_commits_and_keep_their_order_in_the_chain(log: WatchedLog) -> None:
    recorder = Recorder(log)
    with anyio.fail_after(TIMEOUT):
        ids = await asyncio.gather(*(recorder.decision(decision(f"call-{n}")) for n in range(50)))
        await recorder.flush()
    recorder.close()

    assert ids == sorted(ids) and len(set(ids)) == 50
    assert sum(len(kinds) for kinds, _ in log.commits) == 50
    assert len(log.commits) < 50, "the queued decisions were committed one by one"
    assert [row["call_id"] for row in AuditLog(log.path, read_only=True).tail(0, 100)] == [
        f"call-{n}" for n in range(50)
    ]


@pytest.mark.anyio
async def test_every_commit_holding_a_decision_waits_for_the_disk_and_outcome_only_commits_do_not(
    log: WatchedLog,
) -> None:
    recorder = Recorder(log)
    with anyio.fail_after(TIMEOUT):
        for n in range(5):
            await recorder.decision(decision(f"call-{n}"))
            await recorder.outcome(outcome(f"call-{n}"))
    recorder.close()

    assert log.commits, "nothing was written"
    for kinds, synced in log.commits:
        assert synced == ("decision" in kinds), (kinds, synced)


@pytest.mark.anyio
async def test_an_outcome_is_readable_when_its_await_returns(log: WatchedLog) -> None:
    recorder = Recorder(log)
    with anyio.fail_after(TIMEOUT):
        await recorder.decision(decision("a"))
        row_id = await recorder.outcome(outcome("a"))
    rows = AuditLog(log.path, read_only=True).tail(0, 10)
    recorder.close()

    assert [(row["id"], row["kind"]) for row in rows][-1] == (row_id, "outcome")


@pytest.mark.anyio
async def test_outcome_rows_are_checkpointed_to_disk_once_writes_pause(log: WatchedLog) -> None:
    recorder = Recorder(log)
    with anyio.fail_after(TIMEOUT):
        await recorder.decision(decision("a"))
        await recorder.outcome(outcome("a"))
        assert await asyncio.to_thread(log.synced.wait, TIMEOUT)
    recorder.close()


@pytest.mark.anyio
async def test_one_bad_row_fails_alone_and_the_rest_of_its_group_lands(log: WatchedLog) -> None:
    events: list[Event] = []
    hub = EventHub()
    hub.subscribe(events.append)
    recorder = Recorder(log, hub)
    with anyio.fail_after(TIMEOUT):
        await recorder.decision(decision("taken"))
        results = await asyncio.gather(
            recorder.decision(decision("fresh-1")),
            recorder.decision(decision("taken")),  # the same call id twice is refused
            recorder.decision(decision("fresh-2")),
            return_exceptions=True,
        )
    recorder.close()

    assert isinstance(results[1], AuditWriteError)
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert any(isinstance(event, AuditFailed) for event in events)
    assert sum(isinstance(event, Recorded) for event in events) == 3
    assert AuditLog(log.path, read_only=True).verify().ok


@pytest.mark.anyio
async def test_flush_returns_after_every_earlier_write(log: WatchedLog) -> None:
    recorder = Recorder(log)
    with anyio.fail_after(TIMEOUT):
        pending = [asyncio.ensure_future(recorder.decision(decision(f"c{n}"))) for n in range(10)]
        await asyncio.sleep(0)  # one turn of the loop: every task submits its row
        await recorder.flush()
        rows = AuditLog(log.path, read_only=True).tail(0, 100)
        await asyncio.gather(*pending)
    recorder.close()

    assert len(rows) == 10


def test_close_finishes_queued_writes_and_closes_the_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    recorder = Recorder(log)

    async def submit() -> int:
        return await recorder.decision(decision("last"))

    row_id = asyncio.run(submit())
    recorder.close()

    with pytest.raises(AuditWriteError):
        log.record_decision(decision("after-close"))
    assert AuditLog(tmp_path / "audit.db", read_only=True).tail(0, 10)[-1]["id"] == row_id


@pytest.mark.anyio
async def test_an_outcome_queued_soon_lands_in_order_and_a_failure_is_reported(log: WatchedLog) -> None:
    events: list[Event] = []
    hub = EventHub()
    hub.subscribe(events.append)
    recorder = Recorder(log, hub)
    with anyio.fail_after(TIMEOUT):
        await recorder.decision(decision("a"))
        recorder.outcome_soon(outcome("a"))  # returns before the row is written
        await recorder.decision(decision("b"))
        recorder.outcome_soon(outcome("a"))  # the same call's outcome twice is refused
        await recorder.flush()
        await asyncio.sleep(0)  # the done-callbacks of the queued rows run on the next turn
    recorder.close()

    rows = AuditLog(log.path, read_only=True).tail(0, 10)
    assert [(row["call_id"], row["kind"]) for row in rows] == [
        ("a", "decision"),
        ("a", "outcome"),
        ("b", "decision"),
    ]
    assert [type(event).__name__ for event in events] == ["Recorded", "Recorded", "Recorded", "AuditFailed"]
    assert recorder.last_error


@pytest.mark.anyio
async def test_an_outcome_queued_soon_joins_the_next_decisions_commit(log: WatchedLog) -> None:
    # Waking the writer for each outcome row costs the event loop more than anything else per
    # call; the row rides along with the next decision's commit instead.
    recorder = Recorder(log, later_delay=TIMEOUT * 3)  # the writer never gives up waiting here
    with anyio.fail_after(TIMEOUT):
        await recorder.decision(decision("a"))
        recorder.outcome_soon(outcome("a"))
        await recorder.decision(decision("b"))
    recorder.close()

    assert log.commits == [(["decision"], True), (["outcome", "decision"], True)]


@pytest.mark.anyio
async def test_an_outcome_queued_soon_is_committed_alone_when_no_decision_follows(log: WatchedLog) -> None:
    events: list[Event] = []
    written = asyncio.Event()
    hub = EventHub()
    hub.subscribe(lambda event: (events.append(event), written.set() if len(events) == 2 else None))
    recorder = Recorder(log, hub)
    with anyio.fail_after(TIMEOUT):
        await recorder.decision(decision("a"))
        recorder.outcome_soon(outcome("a"))
        await written.wait()  # no flush, no further write: the writer commits it on its own
    recorder.close()

    assert [type(event).__name__ for event in events] == ["Recorded", "Recorded"]
    assert log.commits == [(["decision"], True), (["outcome"], False)]


@pytest.mark.anyio
async def test_an_outcome_queued_while_the_writer_waits_to_checkpoint_is_not_held_back(
    log: WatchedLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After an outcome-only commit the writer waits SYNC_DELAY to checkpoint; a row queued then
    # must wake it, not wait out the checkpoint delay (made longer than this test's bound here).
    monkeypatch.setattr(recorder_module, "SYNC_DELAY", TIMEOUT * 6)
    written = asyncio.Event()
    hub = EventHub()
    hub.subscribe(lambda event: written.set() if isinstance(event, Recorded) else None)
    recorder = Recorder(log, hub, later_delay=0.0)  # outcome rows never wait for company
    with anyio.fail_after(TIMEOUT):
        recorder.outcome_soon(outcome("first"))
        await written.wait()
        written.clear()
        recorder.outcome_soon(outcome("second"))
        await written.wait()
    recorder.close()

    assert log.commits == [(["outcome"], False), (["outcome"], False)]
