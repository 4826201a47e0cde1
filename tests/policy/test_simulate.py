"""Replaying a real audit log against a candidate policy: changes, unknowns, skips and rule previews."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from approver.audit.log import ARGUMENTS_CAP, AuditLog, DecisionRecord
from approver.audit.redact import Redactor
from approver.policy.engine import Policy
from approver.policy.simulate import (
    LoggedCall,
    Unknown,
    Was,
    logged_calls,
    preview_rule,
    simulate,
    simulate_log,
)


def record(
    log: AuditLog,
    tool: str,
    arguments: dict[str, Any],
    *,
    client: str = "cursor",
    decision: str = "allow",
    decided_by: str = "policy",
    rule: str = "risk_defaults.read",
    risk_class: str = "read",
) -> None:
    server, _, bare = tool.partition("__")
    number = log.last_id + 1
    log.record_decision(
        DecisionRecord(
            call_id=f"c{number}",
            client=client,
            server=server,
            tool=tool,
            upstream_tool=bare,
            risk_class=risk_class,
            risk_level="low",
            risk_reasons=[],
            arguments=json.dumps(arguments).encode(),
            decision=decision,
            decided_by=decided_by,
            rule=rule,
            reason="",
        )
    )


def policy(tools: dict[str, Any], **top: Any) -> Policy:
    return Policy.from_data(
        {
            "version": "1",
            "default": "deny",
            "risk_defaults": {"read": "allow", "write": "require_approval"},
            **top,
            "tools": tools,
        }
    )


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    with AuditLog(tmp_path / "audit.db", Redactor()) as opened:
        record(opened, "files__read_file", {"path": "/home/me/a.txt"})
        record(opened, "files__read_file", {"path": "/etc/passwd"}, client="nightly")
        record(
            opened,
            "files__write_file",
            {"path": "/home/me/b", "content": "x"},
            decision="allow",
            decided_by="user",
            rule="risk_defaults.write",
            risk_class="write",
        )
        record(
            opened,
            "files__write_file",
            {"path": "/etc/hosts", "content": "x"},
            decision="deny",
            decided_by="user",
            rule="risk_defaults.write",
            risk_class="write",
        )
        record(
            opened,
            "files__write_file",
            {"path": "/home/me/big", "content": "x" * (ARGUMENTS_CAP + 10)},
            decision="allow",
            decided_by="user",
            rule="risk_defaults.write",
            risk_class="write",
        )
        record(
            opened, "web__fetch", {"url": "https://example.org", "token": "ghp_" + "a" * 36}, decision="allow"
        )
        record(
            opened,
            "files__write_file",
            {"path": "/home/me/c", "content": "x"},
            decision="deny",
            decided_by="held",
            rule="risk_defaults.write",
            risk_class="write",
        )
        record(
            opened, "files__read_file", {"path": "/x"}, decision="deny", decided_by="paused", rule="paused"
        )
        record(
            opened,
            "files__read_file",
            {"path": "/y"},
            decision="deny",
            decided_by="policy",
            rule='tools["files__read_file"].limits[0]',
        )
    return AuditLog(tmp_path / "audit.db", read_only=True)


def calls(log: AuditLog) -> list[LoggedCall]:
    return list(logged_calls(log.replay()))


def test_what_happened_is_read_back_from_each_row(log: AuditLog) -> None:
    found = [call.was() for call in calls(log)]
    assert found == [
        Was.ALLOWED,
        Was.ALLOWED,
        Was.HELD,
        Was.HELD,
        Was.HELD,
        Was.ALLOWED,
        "told to call again (its retry is replayed)",
        "denied while paused",
        "denied by a rate limit",
    ]


def test_a_candidate_that_denies_reads_outside_home_moves_those_calls_from_allowed_to_denied(
    log: AuditLog,
) -> None:
    candidate = policy(
        {
            "files__read_file": {
                "action": "deny",
                "conditions": [{"when": {"path": {"path_under": "/home"}}, "action": "allow"}],
            }
        }
    )

    result = simulate_log(log, candidate)

    change = result.changes[("allowed", "denied")]
    assert change.count == 1 and change.examples[0].arguments == '{"path":"/etc/passwd"}'
    assert result.skipped == {
        "told to call again (its retry is replayed)": 1,
        "denied while paused": 1,
        "denied by a rate limit": 1,
    }
    assert result.replayed == 6 and result.changed == 1


def test_arguments_the_log_clipped_or_redacted_are_unknown_when_the_rule_reads_them(log: AuditLog) -> None:
    candidate = policy(
        {
            "files__write_file": {
                "action": "require_approval",
                "conditions": [{"when": {"path": {"path_under": "/home/me"}}, "action": "allow"}],
            },
            "web__fetch": {
                "action": "deny",
                "conditions": [{"when": {"token": {"equals": "x"}}, "action": "allow"}],
            },
        },
        risk_defaults={"read": "allow", "write": "require_approval"},
    )

    result = simulate_log(log, candidate)

    assert result.changes[("held", "allowed")].count == 1  # /home/me/b; /etc/hosts stays held
    assert {why: change.count for why, change in result.unknown.items()} == {
        "its arguments were clipped in the log": 1,
        "the rule reads an argument the log stored redacted": 1,
    }


def test_a_redacted_argument_the_rule_does_not_read_does_not_make_a_call_unknown(log: AuditLog) -> None:
    candidate = policy(
        {
            "web__fetch": {
                "action": "deny",
                "conditions": [{"when": {"url": {"url_host": "example.org"}}, "action": "allow"}],
            }
        }
    )
    result = simulate_log(log, candidate)
    assert result.unknown == {}
    assert ("allowed", "denied") not in result.changes


def test_reading_only_the_arguments_needed_gives_the_same_answer_as_reading_all(log: AuditLog) -> None:
    candidate = policy(
        {
            "files__*": {
                "action": "require_approval",
                "conditions": [{"when": {"path": {"glob": "/home/*"}}, "action": "allow"}],
            }
        }
    )
    both = simulate_log(log, candidate), simulate(calls(log), candidate)
    assert [(r.replayed, r.unchanged, r.skipped) for r in both] == [
        (both[1].replayed, both[1].unchanged, both[1].skipped)
    ] * 2
    assert {k: v.count for k, v in both[0].changes.items()} == {
        k: v.count for k, v in both[1].changes.items()
    }


def test_a_rule_for_one_client_changes_only_that_clients_calls(log: AuditLog) -> None:
    candidate = policy({"files__read_file": {"action": "deny", "clients": ["nightly"]}})
    result = simulate_log(log, candidate)
    [example] = result.changes[("allowed", "denied")].examples
    assert example.client == "nightly"


def test_a_rule_preview_counts_what_the_rule_would_have_decided_and_what_you_denied(log: AuditLog) -> None:
    rule = 'tools["files__write_file"].conditions[0]'
    candidate = policy(
        {
            "files__write_file": {
                "action": "require_approval",
                "conditions": [
                    {"clients": ["cursor"], "when": {"path": {"path_under": "/"}}, "action": "allow"}
                ],
            }
        }
    )
    recent = list(logged_calls(log.replay(tool="files__write_file", newest=200)))

    preview = preview_rule(recent, candidate, rule)

    assert [call.arguments is not None for call in recent] == [True] * 4
    assert preview.calls == 3, "the request told to call again is not a call of its own"
    paths = [json.loads(call.arguments or "{}")["path"] for call in preview.matched]
    assert paths == ["/etc/hosts", "/home/me/b"], "the calls you denied come first"
    assert [call.decided_by for call in preview.denied_by_you] == ["user"]
    assert preview.unknown == 1
    assert preview.summary() == (
        "would have allowed 2 of the last 3 calls of this tool; 1 of them was denied by you; "
        "1 more cannot be judged (arguments redacted or clipped in the log)"
    )


def test_replay_reads_the_newest_calls_first_and_stops_at_the_count(log: AuditLog) -> None:
    newest = [call.id for call in logged_calls(log.replay(newest=3, page=2))]
    assert newest == [9, 8, 7]
    assert [call.id for call in logged_calls(log.replay(page=4))] == list(range(1, 10))


def test_an_unknown_says_why() -> None:
    assert Unknown("x").why == "x"
