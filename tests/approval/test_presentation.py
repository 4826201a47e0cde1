"""The queue's order, ages, risk words and which approvals each call is offered."""

from __future__ import annotations

import dataclasses
import time

from approver.approval.broker import ApprovalRequest
from approver.approval.presentation import LOOKS, age_text, most_severe, offers, queue_order, risk_words
from approver.calls import Risk, RiskClass, RiskLevel, ToolRef


def waiting(name: str, level: RiskLevel, risk_class: RiskClass, received: float) -> ApprovalRequest:
    return ApprovalRequest(
        id=name,
        client="agent",
        session="s",
        tool=ToolRef("srv", name, f"srv__{name}"),
        risk=Risk(risk_class, level),
        description="",
        arguments=b"{}",
        received=received,
        deadline=received + 120,
        rule="default",
    )


def test_the_most_severe_call_comes_first_then_the_oldest() -> None:
    now = time.time()
    calls = [
        waiting("git_add", RiskLevel.MEDIUM, RiskClass.WRITE, now - 50),
        waiting("read", RiskLevel.LOW, RiskClass.READ, now - 60),
        waiting("shell_new", RiskLevel.HIGH, RiskClass.EXECUTE, now - 1),
        waiting("shell_old", RiskLevel.HIGH, RiskClass.EXECUTE, now - 30),
        waiting("transfer", RiskLevel.CRITICAL, RiskClass.FINANCIAL, now),
        waiting("delete", RiskLevel.HIGH, RiskClass.DESTRUCTIVE, now),
    ]
    assert [call.id for call in queue_order(calls)] == [
        "transfer", "delete", "shell_old", "shell_new", "git_add", "read"
    ]  # fmt: skip
    assert most_severe(calls) is RiskLevel.CRITICAL
    assert most_severe([]) is None


def test_every_level_has_its_own_colour_symbol_and_word() -> None:
    assert len({look.background for look in LOOKS.values()}) == 4
    assert len({look.symbol for look in LOOKS.values()}) == 4
    assert risk_words(Risk(RiskClass.FINANCIAL, RiskLevel.CRITICAL)) == "CRITICAL risk · financial"


def test_ages_read_as_seconds_minutes_and_hours() -> None:
    assert [age_text(s) for s in (0, 59.9, 60, 3599, 3900)] == ["0 s", "59 s", "1 min", "59 min", "1 h 5 min"]


def test_a_low_risk_call_is_offered_every_approval_on_the_bar() -> None:
    offered = offers(waiting("git_add", RiskLevel.MEDIUM, RiskClass.WRITE, 0))
    assert (offered.session, offered.always, offered.behind_more, offered.why) == (True, True, False, "")


def test_critical_destructive_and_financial_calls_keep_broader_approvals_behind_more() -> None:
    for level, risk_class in [
        (RiskLevel.CRITICAL, RiskClass.WRITE),
        (RiskLevel.HIGH, RiskClass.DESTRUCTIVE),
        (RiskLevel.MEDIUM, RiskClass.FINANCIAL),
    ]:
        offered = offers(waiting("x", level, risk_class, 0))
        assert (offered.session, offered.always, offered.behind_more) == (True, True, True)
        assert "More…" in offered.why


def test_a_quarantined_tool_is_offered_approve_once_and_deny_only_and_says_why() -> None:
    changed = dataclasses.replace(waiting("x", RiskLevel.LOW, RiskClass.READ, 0), pin_change="--- a\n+++ b")
    offered = offers(changed)
    assert (offered.session, offered.always) == (False, False)
    assert "definition changed" in offered.why and "Servers" in offered.why
