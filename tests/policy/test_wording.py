"""Policy rules said in words, for notifications."""

from __future__ import annotations

import pytest

from approver.calls import CallContext, Risk, RiskClass, RiskLevel, ToolRef
from approver.policy.engine import Policy
from approver.policy.limits import RateLimiter
from approver.policy.wording import reason_in_words, rule_in_words


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ('tools["files__delete_file"].conditions[0]', "condition 1 of the rule for files__delete_file"),
        ('tools["*__delete_*"].limits[2]', "rate limit 3 of the rule for *__delete_*"),
        ('tools["github__*"]', "the rule for github__*"),
        ("risk_defaults.destructive", "the policy's default for destructive tools"),
        ("default", "the policy's default"),
        ("pin-changed", "a changed tool definition"),
        ("something-new", "rule something-new"),
    ],
)
def test_a_rule_is_said_in_words(rule: str, words: str) -> None:
    assert rule_in_words(rule) == words


def test_a_real_denial_loses_its_rule_path_but_keeps_its_reason() -> None:
    policy = Policy.from_data(
        {
            "version": "1",
            "tools": {
                "files__delete_file": {
                    "action": "allow",
                    "conditions": [
                        {
                            "when": {"path": {"starts_with": "keep/"}},
                            "action": "deny",
                            "reason": "keep/ is protected",
                        }
                    ],
                }
            },
        }
    )
    tool = ToolRef(server="files", tool="delete_file", name="files__delete_file")
    context = CallContext(
        client="c", tool=tool, risk=Risk(RiskClass.DESTRUCTIVE, RiskLevel.HIGH), arguments={"path": "keep/x"}
    )
    decision = policy.decide(context, RateLimiter(), 0.0)
    assert decision.reason.startswith("denied by policy rule tools[")
    assert reason_in_words(decision.reason, decision.rule) == "keep/ is protected"
    assert rule_in_words(decision.rule) == "condition 1 of the rule for files__delete_file"
    assert (
        reason_in_words("nobody approved this call in time", "default") == "nobody approved this call in time"
    )
