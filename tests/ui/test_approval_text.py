"""What the approval dialog says while a held call waits: the real deadline, and the agent's retries."""

from __future__ import annotations

from approver.approval.broker import ApprovalRequest
from approver.calls import Risk, RiskClass, RiskLevel, ToolRef
from approver.ui.approval_text import waiting_text

NOW = 1_000_000.0


def request() -> ApprovalRequest:
    return ApprovalRequest(
        id="r1",
        client="claude",
        session="s",
        tool=ToolRef("files", "delete_file", "files__delete_file"),
        risk=Risk(RiskClass.DESTRUCTIVE, RiskLevel.HIGH),
        description="",
        arguments=b"{}",
        received=NOW,
        deadline=NOW + 120,
        rule="default",
    )


def test_a_call_whose_agent_still_waits_shows_only_the_countdown_to_the_real_deadline() -> None:
    assert waiting_text(request(), NOW + 10) == "Times out in 1:50, then the call is denied."


def test_once_the_agent_was_told_to_call_again_the_dialog_says_so_and_counts_the_retries() -> None:
    waiting = request()
    waiting.agent.told_to_retry_at = NOW + 50

    told = waiting_text(waiting, NOW + 62)
    assert told.startswith("Times out in 0:58, then the call is denied. ")
    assert "so the agent was told 12 s ago to call again" in told
    assert "it has not called again yet" in told

    waiting.agent.retries = 2
    assert "2 identical calls joined this request since" in waiting_text(waiting, NOW + 70)
