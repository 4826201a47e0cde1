"""A call that times out or is withdrawn is announced and listed, linked to its audit row."""

from __future__ import annotations

import time

from pytestqt.qtbot import QtBot

from approver.approval.broker import ApprovalRequest, Resolution, Verdict
from approver.audit.log import DecisionRecord
from approver.calls import Risk, RiskClass, RiskLevel, ToolRef
from approver.events import Recorded
from approver.ui.missed import MissedCalls


def request(call_id: str) -> ApprovalRequest:
    now = time.time()
    return ApprovalRequest(
        id=call_id, client="cursor", session="s", tool=ToolRef("files", "delete_file", "files__delete_file"),
        risk=Risk(RiskClass.DESTRUCTIVE, RiskLevel.HIGH), description="", arguments=b'{"path":"draft.txt"}',
        received=now, deadline=now + 1, rule="default", argument_order=("path",),
    )  # fmt: skip


def decision(call_id: str) -> DecisionRecord:
    return DecisionRecord(
        call_id=call_id, client="cursor", server="files", tool="files__delete_file",
        upstream_tool="delete_file",
        risk_class="destructive", risk_level="high", risk_reasons=[], arguments=b"{}", decision="deny",
        decided_by="timeout", rule="default", reason="approval timed out",
    )  # fmt: skip


def test_a_timed_out_call_is_announced_listed_and_linked_to_its_audit_row(qtbot: QtBot) -> None:
    said: list[tuple[str, str]] = []
    missed = MissedCalls(lambda title, body: said.append((title, body)))
    qtbot.addWidget(missed)
    opened: list[int] = []
    missed.open_row.connect(opened.append)
    missed.ended(request("r1"), Resolution(Verdict.TIMED_OUT, "timeout", "approval timed out"))
    assert said == [
        (
            "Missed: files__delete_file",
            "cursor wants to delete draft.txt, but nobody answered in time, so it was denied.",
        )
    ]
    assert missed.list.count() == 1 and "nobody answered in time" in missed.list.item(0).text()
    missed.recorded(Recorded(42, decision("r1")))
    assert missed.list.item(0).text().endswith("audit row 42: open it")
    missed.list.itemActivated.emit(missed.list.item(0))
    assert opened == [42]


def test_answers_pauses_and_quitting_are_not_missed_calls_but_withdrawals_are(qtbot: QtBot) -> None:
    said: list[tuple[str, str]] = []
    missed = MissedCalls(lambda title, body: said.append((title, body)))
    qtbot.addWidget(missed)
    for ending in (
        Resolution(Verdict.DENIED, "user", "no"),
        Resolution(Verdict.APPROVED, "user"),
        Resolution(Verdict.DENIED, "paused", "paused"),
        Resolution(Verdict.DENIED, "shutdown", "quitting"),
    ):
        missed.ended(request("x"), ending)
    assert said == [] and missed.list.count() == 0 and not missed.empty.isHidden()
    missed.ended(request("y"), Resolution(Verdict.CANCELLED, "cancelled", "the client went away"))
    assert len(said) == 1 and "the client withdrew it" in said[0][1]
