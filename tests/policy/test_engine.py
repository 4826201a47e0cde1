"""The policy engine: format, precedence, conditions, rate limits and the always-allow writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from approver.calls import (
    Action,
    CallContext,
    Decision,
    RequestKind,
    RequestRef,
    Risk,
    RiskClass,
    RiskLevel,
    ToolRef,
)
from approver.errors import ConfigError
from approver.policy.editing import add_allow_rule, policy_rule_for_always_allow
from approver.policy.engine import DEFAULT_POLICY_DATA, Policy
from approver.policy.limits import RateLimiter

POLICYLAYER_EXAMPLE = (
    '{"version": "1", "default": "deny", "tools": {"close_session": {"limits": [{"counter": '
    '"close_session_rate", "window": "minute", "max": 30, "scope": "grant"}]}}}'
)


def tool(name: str, upstream: str | None = None) -> ToolRef:
    """A ToolRef of a server whose prefix is its name: ``server__tool`` (``upstream``: the upstream name)."""
    server, _, bare = name.partition("__")
    return ToolRef(server=server, tool=upstream or bare, name=name, prefix=server)


def unprefixed(name: str, server: str = "sessions") -> ToolRef:
    """A tool of a server with ``"prefix": ""``: clients see its upstream name unchanged."""
    return ToolRef(server=server, tool=name, name=name, prefix="")


CLOSE_SESSION = unprefixed("close_session")
"""PolicyLayer names tools bare: its example is for a server whose names are exposed as they are."""


def call(
    name: str | ToolRef,
    arguments: dict[str, Any] | None = None,
    *,
    client: str = "claude",
    risk: RiskClass = RiskClass.OTHER,
) -> CallContext:
    ref = tool(name) if isinstance(name, str) else name
    return CallContext(client, ref, Risk(risk, RiskLevel.MEDIUM), arguments or {})


def policy(tools: dict[str, Any] | None = None, **top: Any) -> Policy:
    return Policy.from_data({"version": "1", **top, "tools": tools or {}})


def decide(p: Policy, ctx: CallContext, limiter: RateLimiter | None = None, now: float = 0.0) -> Decision:
    return p.decide(ctx, limiter or RateLimiter(), now)


# The PolicyLayer example


def test_policylayer_example_is_accepted_as_written(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(POLICYLAYER_EXAMPLE, encoding="utf-8")
    p = Policy.from_file(path)
    assert p.data == json.loads(POLICYLAYER_EXAMPLE)
    assert p.source == str(path)
    assert p.tool_patterns == ("close_session",)


def test_policylayer_example_allows_close_session_of_a_server_exposed_without_prefix() -> None:
    p = Policy.from_data(json.loads(POLICYLAYER_EXAMPLE))
    decision = decide(p, call(CLOSE_SESSION))
    assert decision == Decision(
        Action.ALLOW, 'tools["close_session"]', 'allowed by policy rule tools["close_session"]'
    )


def test_policylayer_example_denies_every_other_tool() -> None:
    p = Policy.from_data(json.loads(POLICYLAYER_EXAMPLE))
    decision = decide(p, call("sessions__open_session", risk=RiskClass.READ))
    assert decision.action is Action.DENY
    assert decision.rule == "default"


def test_rate_limit_denies_the_31st_call_in_a_minute_from_the_same_client() -> None:
    p = Policy.from_data(json.loads(POLICYLAYER_EXAMPLE))
    limiter = RateLimiter()
    for second in range(30):
        assert decide(p, call(CLOSE_SESSION), limiter, now=1000.0 + second).action is Action.ALLOW
    decision = decide(p, call(CLOSE_SESSION), limiter, now=1048.0)
    assert decision.action is Action.DENY
    assert decision.rule == 'tools["close_session"].limits[0]'
    assert decision.reason == "rate limit close_session_rate: 30 calls per minute per client; retry in 12 s"
    assert decision.retry_after == pytest.approx(12.0)


def test_rate_limit_under_grant_scope_still_allows_another_client() -> None:
    p = Policy.from_data(json.loads(POLICYLAYER_EXAMPLE))
    limiter = RateLimiter()
    for _ in range(30):
        decide(p, call(CLOSE_SESSION, client="claude"), limiter, now=5.0)
    assert decide(p, call(CLOSE_SESSION, client="claude"), limiter, now=6.0).action is Action.DENY
    assert decide(p, call(CLOSE_SESSION, client="cursor"), limiter, now=6.0).action is Action.ALLOW


def test_rate_limit_allows_again_once_the_oldest_call_leaves_the_window() -> None:
    p = Policy.from_data(json.loads(POLICYLAYER_EXAMPLE))
    limiter = RateLimiter()
    for second in range(30):
        decide(p, call(CLOSE_SESSION), limiter, now=float(second))
    assert decide(p, call(CLOSE_SESSION), limiter, now=59.9).action is Action.DENY
    assert decide(p, call(CLOSE_SESSION), limiter, now=60.0).action is Action.ALLOW
    assert decide(p, call(CLOSE_SESSION), limiter, now=60.5).action is Action.DENY


# Precedence among tools entries


@pytest.mark.parametrize("exact_first", [True, False])
def test_an_exact_name_beats_any_glob_wherever_it_is_written(exact_first: bool) -> None:
    entries = [("github__get_issue", {"action": "allow"}), ("github__*", {"action": "deny"})]
    p = policy(dict(entries if exact_first else entries[::-1]))
    decision = decide(p, call("github__get_issue"))
    assert (decision.action, decision.rule) == (Action.ALLOW, 'tools["github__get_issue"]')


def test_the_glob_with_more_literal_characters_wins() -> None:
    p = policy(
        {
            "*": {"action": "allow"},
            "[gh]ithub__delete_*": {"action": "allow"},
            "github__delete_*": {"action": "deny"},
            "github__*": {"action": "require_approval"},
        }
    )
    assert decide(p, call("github__delete_repo")).rule == 'tools["github__delete_*"]'
    assert decide(p, call("github__create_issue")).rule == 'tools["github__*"]'
    assert decide(p, call("slack__post")).rule == 'tools["*"]'


@pytest.mark.parametrize("first", ["github__*", "*ete_repo"])
def test_globs_with_equally_many_literal_characters_go_to_the_first_written(first: str) -> None:
    actions = {"github__*": "deny", "*ete_repo": "require_approval"}
    second = next(pattern for pattern in actions if pattern != first)
    p = policy({first: {"action": actions[first]}, second: {"action": actions[second]}})
    decision = decide(p, call("github__delete_repo"))
    assert decision.rule == f'tools["{first}"]'
    assert decision.action is Action(actions[first])


def test_exposed_name_beats_server_qualified_name_and_the_bare_name_matches_nothing() -> None:
    ref = ToolRef(server="github", tool="delete_repo", name="gh__delete_repo", prefix="gh")
    entries = {
        "delete_repo": {"action": "allow"},
        "github__delete_repo": {"action": "require_approval"},
        "gh__delete_repo": {"action": "deny"},
    }
    assert decide(policy(entries), call(ref)).action is Action.DENY
    del entries["gh__delete_repo"]
    assert decide(policy(entries), call(ref)).action is Action.REQUIRE_APPROVAL
    del entries["github__delete_repo"]
    assert decide(policy(entries), call(ref)).rule == "default"


def test_a_glob_without_a_server_is_matched_against_the_whole_exposed_name() -> None:
    p = policy({"delete_*": {"action": "deny"}}, default="allow")
    assert decide(p, call("fs__delete_file")).action is Action.ALLOW
    assert decide(p, call(unprefixed("delete_file"))).action is Action.DENY
    on_any_server = policy({"*__delete_*": {"action": "deny"}}, default="allow")
    assert decide(on_any_server, call("fs__delete_file")).action is Action.DENY
    assert decide(on_any_server, call(unprefixed("delete_file"))).action is Action.DENY
    assert decide(on_any_server, call("fs__read_file")).action is Action.ALLOW


def test_a_tool_named_like_another_servers_tool_never_falls_under_that_servers_rules() -> None:
    p = policy(
        {
            "*": {"action": "deny"},
            "trusted__*": {"action": "allow"},
            "trusted__send_email": {"action": "allow"},
            "tr*__send_*": {"action": "allow"},
        }
    )
    hostile = [
        tool("evil__trusted__send_email"),
        unprefixed("trusted__send_email", server="evil"),
        unprefixed("trusted__send_money", server="evil"),
        ToolRef(server="evil", tool="send_email", name="trusted__send_email-1a2b3c4d", prefix=""),
    ]
    for ref in hostile:
        decision = decide(p, call(ref))
        assert (decision.action, decision.rule) == (Action.DENY, 'tools["*"]'), ref
    assert decide(p, call("trusted__send_email")).action is Action.ALLOW


def test_a_server_qualified_rule_matches_by_server_name_or_prefix_whatever_the_tool_is_called() -> None:
    p = policy({"github__*": {"action": "allow"}, "gh__read_*": {"action": "require_approval"}})
    renamed = ToolRef(server="github", tool="read.file", name="gh__read_file-3d6b9878", prefix="gh")
    assert decide(p, call(renamed)).rule == 'tools["gh__read_*"]'
    assert decide(p, call(ToolRef("github", "x", "gh__x", "gh"))).rule == 'tools["github__*"]'
    assert decide(p, call(ToolRef("github", "x", "x", ""))).rule == 'tools["github__*"]'
    assert decide(p, call(ToolRef("my__hub", "x", "x", ""))).rule == "default"
    assert decide(
        policy({"my__hub__x": {"action": "allow"}}), call(ToolRef("my__hub", "x", "x", ""))
    ).rule == ('tools["my__hub__x"]')


def test_an_entry_without_action_allows_the_tool() -> None:
    p = policy({"github__*": {"description": "all of GitHub"}}, default="deny")
    assert decide(p, call("github__delete_repo")).action is Action.ALLOW


def test_a_deny_reason_names_the_rule_and_adds_the_entry_reason() -> None:
    p = policy({"*__delete_*": {"action": "deny", "reason": "agents never delete"}})
    decision = decide(p, call("fs__delete_file"))
    assert decision.action is Action.DENY
    assert decision.reason == 'denied by policy rule tools["*__delete_*"]: agents never delete'


def test_a_tools_entry_beats_risk_defaults_and_default() -> None:
    p = policy({"fs__read_file": {"action": "deny"}}, default="allow", risk_defaults={"read": "allow"})
    assert decide(p, call("fs__read_file", risk=RiskClass.READ)).action is Action.DENY


# Conditions

WRITE_POLICY = {
    "filesystem__write_file": {
        "action": "require_approval",
        "conditions": [{"when": {"path": {"path_under": "/home/me/project"}}, "action": "allow"}],
    }
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/home/me/project/src/main.py", Action.ALLOW),
        ("/home/me/project", Action.ALLOW),
        ("/home/me/project/./a//b.txt", Action.ALLOW),
        ("/home/me/project/../../etc/passwd", Action.REQUIRE_APPROVAL),
        ("/home/me/project/../project-evil/x", Action.REQUIRE_APPROVAL),
        ("/home/me/projectile/x", Action.REQUIRE_APPROVAL),
        ("project/x", Action.REQUIRE_APPROVAL),
        ("/home/me/project/x\x00.txt", Action.REQUIRE_APPROVAL),
        (["/home/me/project/x"], Action.REQUIRE_APPROVAL),
    ],
)
def test_write_file_is_allowed_only_under_the_project_directory(path: Any, expected: Action) -> None:
    decision = decide(policy(WRITE_POLICY), call("filesystem__write_file", {"path": path}))
    assert decision.action is expected


def test_a_holding_condition_is_named_in_the_decision() -> None:
    decision = decide(policy(WRITE_POLICY), call("filesystem__write_file", {"path": "/home/me/project/a"}))
    assert decision.rule == 'tools["filesystem__write_file"].conditions[0]'
    assert decision.reason == 'allowed by policy rule tools["filesystem__write_file"].conditions[0]'


PAYMENT_POLICY = {
    "stripe__create_payment": {
        "action": "require_approval",
        "reason": "a person approves payments",
        "conditions": [
            {"when": {"amount": {"gt": 10000}}, "action": "deny", "reason": "over 100.00 USD"},
        ],
    }
}


def test_a_payment_over_10000_is_denied_with_the_condition_reason() -> None:
    decision = decide(policy(PAYMENT_POLICY), call("stripe__create_payment", {"amount": 10001}))
    assert decision.action is Action.DENY
    assert decision.reason == (
        'denied by policy rule tools["stripe__create_payment"].conditions[0]: over 100.00 USD'
    )


@pytest.mark.parametrize("amount", [10000, 99.5, "20000", None])
def test_a_payment_not_over_10000_falls_back_to_the_entry_action(amount: Any) -> None:
    decision = decide(policy(PAYMENT_POLICY), call("stripe__create_payment", {"amount": amount}))
    assert decision.action is Action.REQUIRE_APPROVAL
    assert decision.reason == 'approval required by policy rule tools["stripe__create_payment"]: ' + (
        "a person approves payments"
    )


def test_the_first_condition_that_holds_decides() -> None:
    p = policy(
        {
            "git__push": {
                "action": "allow",
                "conditions": [
                    {"when": {"remote": {"equals": "origin"}, "force": {"equals": True}}, "action": "deny"},
                    {"when": {"force": {"equals": True}}, "action": "require_approval"},
                    {"when": {"force": {"exists": True}}, "action": "deny"},
                ],
            }
        }
    )
    assert decide(p, call("git__push", {"remote": "fork", "force": True})).rule == (
        'tools["git__push"].conditions[1]'
    )
    assert decide(p, call("git__push", {"remote": "origin", "force": True})).action is Action.DENY
    assert decide(p, call("git__push", {"remote": "origin"})).action is Action.ALLOW


def test_a_json_pointer_reaches_nested_arguments_and_list_items() -> None:
    p = policy(
        {
            "fs__delete": {
                "conditions": [
                    {"when": {"/options/force": {"equals": True}}, "action": "deny"},
                    {"when": {"/paths/1": {"starts_with": "/etc"}}, "action": "deny"},
                    {"when": {"/a~1b/c~0d": {"exists": True}}, "action": "deny"},
                ]
            }
        }
    )
    assert decide(p, call("fs__delete", {"options": {"force": True}})).action is Action.DENY
    assert decide(p, call("fs__delete", {"options": {"force": 1}})).action is Action.ALLOW
    assert decide(p, call("fs__delete", {"paths": ["/tmp/a", "/etc/b"]})).action is Action.DENY
    assert decide(p, call("fs__delete", {"paths": ["/etc/a"]})).action is Action.ALLOW
    assert decide(p, call("fs__delete", {"a/b": {"c~d": 0}})).action is Action.DENY


@pytest.mark.parametrize(
    ("test", "value", "holds"),
    [
        ({"equals": 3}, 3.0, True),
        ({"equals": 1}, True, False),
        ({"equals": {"a": [1, "x"]}}, {"a": [1, "x"]}, True),
        ({"not_equals": "main"}, "dev", True),
        ({"not_equals": "main"}, "main", False),
        ({"in": ["a", "b"]}, "b", True),
        ({"in": [0]}, False, False),
        ({"not_in": ["a", "b"]}, "c", True),
        ({"not_in": ["a", "b"]}, "a", False),
        ({"starts_with": "/tmp/"}, "/tmp/x", True),
        ({"starts_with": "/tmp/"}, 5, False),
        ({"ends_with": ".py"}, "a.py", True),
        ({"ends_with": ".py"}, "a.pyc", False),
        ({"contains": "rm -rf"}, "sudo rm -rf /", True),
        ({"contains": "prod"}, ["dev", "prod"], True),
        ({"contains": "prod"}, ["production"], False),
        ({"matches": "[a-z]+"}, "abc", True),
        ({"matches": "[a-z]+"}, "abc1", False),
        ({"glob": "*.md"}, "README.md", True),
        ({"glob": "*.md"}, "README.txt", False),
        ({"gt": 5}, 6, True),
        ({"gt": 5}, 5, False),
        ({"gte": 5}, 5, True),
        ({"lt": 5}, 4.9, True),
        ({"lt": 5}, "4", False),
        ({"lte": 5}, 5, True),
        ({"lte": 5}, True, False),
        ({"max_length": 3}, "abc", True),
        ({"max_length": 3}, "abcd", False),
        ({"max_length": 1}, [1, 2], False),
        ({"exists": True}, None, True),
        ({"exists": False}, "", False),
        ({"path_under": ["/srv", "/tmp"]}, "/tmp/../srv/a", True),
        ({"path_under": "/"}, "/anything", True),
        ({"gt": 0, "lt": 10}, 5, True),
        ({"gt": 0, "lt": 10}, 10, False),
    ],
)
def test_each_operator_holds_exactly_when_documented(test: dict[str, Any], value: Any, holds: bool) -> None:
    p = policy({"t__x": {"conditions": [{"when": {"arg": test}, "action": "deny"}]}})
    assert (decide(p, call("t__x", {"arg": value})).action is Action.DENY) is holds


@pytest.mark.parametrize(
    "test",
    [{"not_equals": 1}, {"not_in": [1]}, {"exists": True}, {"max_length": 10}, {"exists": False, "lt": 1}],
)
def test_a_missing_argument_fails_every_test_but_exists_false(test: dict[str, Any]) -> None:
    p = policy(
        {
            "t__x": {
                "conditions": [
                    {"when": {"arg": test}, "action": "deny"},
                    {"when": {"arg": {"exists": False}}, "action": "require_approval"},
                ]
            }
        }
    )
    assert decide(p, call("t__x", {"other": 1})).action is Action.REQUIRE_APPROVAL


# Risk defaults, overrides and the default


def test_risk_defaults_decide_when_no_tools_entry_matches() -> None:
    p = policy(risk_defaults={"read": "allow", "destructive": "require_approval"}, default="deny")
    decision = decide(p, call("fs__remove", risk=RiskClass.DESTRUCTIVE))
    assert decision.action is Action.REQUIRE_APPROVAL
    assert decision.rule == "risk_defaults.destructive"
    assert decision.reason.startswith("approval required by policy rule risk_defaults.destructive")
    assert decide(p, call("fs__read", risk=RiskClass.READ)).action is Action.ALLOW


def test_default_decides_when_no_entry_or_risk_default_applies() -> None:
    p = policy(risk_defaults={"read": "allow"}, default="require_approval")
    decision = decide(p, call("fs__write", risk=RiskClass.WRITE))
    assert (decision.action, decision.rule) == (Action.REQUIRE_APPROVAL, "default")


def test_default_is_deny_when_the_file_does_not_say() -> None:
    assert decide(policy(), call("fs__read", risk=RiskClass.READ)).action is Action.DENY


def test_risk_overrides_correct_the_class_before_risk_defaults_apply() -> None:
    p = policy(
        risk_defaults={"read": "allow", "financial": "deny"},
        risk_overrides={"stripe__*": {"class": "financial"}, "stripe__list_*": {"level": "low"}},
    )
    assert decide(p, call("stripe__refund", risk=RiskClass.READ)).rule == "risk_defaults.financial"
    assert decide(p, call("stripe__list_charges", risk=RiskClass.READ)).action is Action.ALLOW


def test_apply_overrides_changes_class_and_level_and_says_why() -> None:
    p = policy(risk_overrides={"notes__*": {"class": "read", "level": "low"}})
    risk = Risk(RiskClass.DESTRUCTIVE, RiskLevel.HIGH, ("name says delete",))
    corrected = p.apply_overrides(tool("notes__purge"), risk)
    assert (corrected.risk_class, corrected.level) == (RiskClass.READ, RiskLevel.LOW)
    assert corrected.reasons == ("name says delete", 'overridden by policy risk_overrides["notes__*"]')
    assert p.apply_overrides(tool("mail__purge"), risk) is risk


def test_the_default_policy_allows_reads_and_asks_for_everything_else() -> None:
    p = Policy.default()
    assert decide(p, call("fs__read", risk=RiskClass.READ)).action is Action.ALLOW
    for risk in set(RiskClass) - {RiskClass.READ}:
        decision = decide(p, call("fs__x", risk=risk))
        assert (decision.action, decision.rule) == (Action.REQUIRE_APPROVAL, f"risk_defaults.{risk.value}")
    assert p.data["default"] == "require_approval"


# Resource reads, prompts and completion


def read(uri: str, server: str = "fs") -> RequestRef:
    return RequestRef(RequestKind.RESOURCE, server, uri)


def test_reads_prompts_and_completions_without_a_rule_get_the_default() -> None:
    p = policy(default="deny", risk_defaults={"read": "allow"})
    for request in (
        read("file:///home/me/x"),
        RequestRef(RequestKind.PROMPT, "fs", "greet", "fs__greet", "fs"),
        RequestRef(RequestKind.COMPLETION, "fs", "greet", "fs__greet", "fs"),
    ):
        decision = p.decide_request(request)
        assert (decision.action, decision.rule) == (Action.DENY, "default")
    assert "no resources rule applies" in p.decide_request(read("file:///x")).reason


def test_the_most_specific_resources_rule_decides_and_may_name_the_server() -> None:
    p = policy(
        default="deny",
        resources={
            "*": {"action": "require_approval"},
            "file:///home/me/*": {"action": "allow"},
            "fs__file:///home/me/.ssh/*": {"action": "deny", "reason": "keys"},
            "docs__*": {"action": "allow"},
        },
    )
    assert p.decide_request(read("file:///home/me/a.txt")).action is Action.ALLOW
    denied = p.decide_request(read("file:///home/me/.ssh/id_rsa"))
    assert (denied.action, denied.reason) == (
        Action.DENY,
        'denied by policy rule resources["fs__file:///home/me/.ssh/*"]: keys',
    )
    assert p.decide_request(read("file:///home/me/.ssh/id_rsa", server="backup")).action is Action.ALLOW
    assert p.decide_request(read("file:///etc/passwd")).action is Action.REQUIRE_APPROVAL
    assert p.decide_request(read("file:///etc/passwd", server="docs")).rule == 'resources["docs__*"]'


def test_prompt_rules_name_prompts_like_tool_rules_and_completion_rules_name_servers() -> None:
    p = policy(
        default="deny",
        prompts={"fs__*": {"action": "allow"}, "greet": {"action": "allow"}},
        completion={"f*": {"action": "allow"}},
    )
    assert p.decide_request(RequestRef(RequestKind.PROMPT, "fs", "x", "fs__x", "fs")).action is Action.ALLOW
    hostile = RequestRef(RequestKind.PROMPT, "evil", "fs__x", "evil__fs__x", "evil")
    assert p.decide_request(hostile).rule == "default"
    assert (
        p.decide_request(RequestRef(RequestKind.PROMPT, "evil", "greet", "evil__greet", "evil")).rule
        == "default"
    )
    assert (
        p.decide_request(RequestRef(RequestKind.COMPLETION, "fs", "file:///{+path}")).action is Action.ALLOW
    )
    assert p.decide_request(RequestRef(RequestKind.COMPLETION, "docs", "x")).action is Action.DENY


def test_the_default_policy_lets_reads_prompts_and_completions_through() -> None:
    p = Policy.default()
    for kind in RequestKind:
        assert p.decide_request(RequestRef(kind, "fs", "file:///x")).action is Action.ALLOW


def test_a_resources_rule_needs_an_action() -> None:
    with pytest.raises(ConfigError) as caught:
        policy(resources={"*": {"reason": "no action"}})
    assert caught.value.pointer == "/resources/*"


# Invalid files


@pytest.mark.parametrize(
    ("text", "pointer", "expected"),
    [
        ('{"version": "1", "tools": {"x": {"action": "maybe"}}}', "/tools/x/action", "expected one of allow"),
        ('{"default": "deny"}', "/", "'version' is required"),
        ('{"version": "1", "tool": {}}', "/", "unknown key"),
        ('{"version": "1", "tools": {"x": {"limits": [{"max": 3, "window": "week"}]}}}', "/window", "minute"),
        (
            '{"version": "1", "tools": {"x": {"conditions": [{"when": {"p": {"matches": "(a"}}, '
            '"action": "deny"}]}}}',
            "/tools/x/conditions/0/when/p/matches",
            "invalid regular expression",
        ),
        (
            '{"version": "1", "tools": {"x": {"conditions": [{"when": {"p": {"equal": 1}}, '
            '"action": "deny"}]}}}',
            "/tools/x/conditions/0/when/p",
            "unknown key",
        ),
        (
            '{"version": "1", "tools": {"x": {"conditions": [{"when": {"p": {"path_under": "tmp"}}, '
            '"action": "allow"}]}}}',
            "/tools/x/conditions/0/when/p/path_under",
            "expected an absolute directory",
        ),
        ('{"version": "1", "tools": {"x": {"action": "deny",}}}', "", "not valid JSON"),
    ],
)
def test_an_invalid_file_names_the_file_the_pointer_and_what_was_expected(
    tmp_path: Path, text: str, pointer: str, expected: str
) -> None:
    path = tmp_path / "policy.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Policy.from_file(path)
    assert caught.value.file == str(path)
    assert caught.value.pointer.endswith(pointer)
    assert expected in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_limits_that_share_a_counter_must_agree() -> None:
    limit = {"counter": "writes", "window": "minute", "max": 10}
    with pytest.raises(ConfigError) as caught:
        policy({"a": {"limits": [limit]}, "b": {"limits": [{**limit, "max": 20}]}})
    assert caught.value.pointer == "/tools/b/limits/0"
    assert "/tools/a/limits/0" in caught.value.message


# Limits


def limited(scope: str, max_calls: int = 1, **entry: Any) -> Policy:
    return policy({"*": {"limits": [{"max": max_calls, "window": "hour", "scope": scope}], **entry}})


def test_a_global_limit_is_shared_by_all_tools_and_clients() -> None:
    p, limiter = limited("global"), RateLimiter()
    assert decide(p, call("a__x", client="one"), limiter).action is Action.ALLOW
    decision = decide(p, call("b__y", client="two"), limiter)
    assert decision.action is Action.DENY
    assert "1 call per hour in total" in decision.reason


def test_a_server_limit_is_shared_by_the_tools_of_one_server() -> None:
    p, limiter = limited("server"), RateLimiter()
    assert decide(p, call("a__x"), limiter).action is Action.ALLOW
    assert decide(p, call("a__y"), limiter).action is Action.DENY
    assert decide(p, call("b__x"), limiter).action is Action.ALLOW


def test_a_limit_is_per_tool_by_default() -> None:
    p, limiter = policy({"*": {"limits": [{"max": 1, "window": "day"}]}}), RateLimiter()
    assert decide(p, call("a__x", client="one"), limiter).action is Action.ALLOW
    assert decide(p, call("a__x", client="two"), limiter).action is Action.DENY
    assert decide(p, call("a__y", client="one"), limiter).action is Action.ALLOW


def test_a_client_limit_counts_each_client_across_tools() -> None:
    p, limiter = limited("client"), RateLimiter()
    assert decide(p, call("a__x", client="one"), limiter).action is Action.ALLOW
    assert decide(p, call("b__y", client="one"), limiter).action is Action.DENY
    assert decide(p, call("a__x", client="two"), limiter).action is Action.ALLOW


def test_a_named_counter_is_shared_across_entries() -> None:
    limit = {"counter": "writes", "window": "minute", "max": 2, "scope": "global"}
    p, limiter = policy({"fs__write": {"limits": [limit]}, "git__commit": {"limits": [limit]}}), RateLimiter()
    assert decide(p, call("fs__write"), limiter).action is Action.ALLOW
    assert decide(p, call("git__commit"), limiter).action is Action.ALLOW
    assert decide(p, call("fs__write"), limiter).reason.startswith("rate limit writes: 2 calls per minute")


def test_a_window_can_be_a_number_of_seconds() -> None:
    p, limiter = policy({"a__x": {"limits": [{"max": 1, "window": 90}]}}), RateLimiter()
    assert decide(p, call("a__x"), limiter, now=0.0).action is Action.ALLOW
    decision = decide(p, call("a__x"), limiter, now=89.5)
    assert decision.reason == 'rate limit tools["a__x"].limits[0]: 1 call per 90 s per tool; retry in 1 s'
    assert decision.retry_after == pytest.approx(0.5)
    assert decide(p, call("a__x"), limiter, now=90.0).action is Action.ALLOW


def test_calls_denied_by_a_limit_do_not_count() -> None:
    p, limiter = policy({"a__x": {"limits": [{"max": 2, "window": 10, "counter": "c"}]}}), RateLimiter()
    decide(p, call("a__x"), limiter, now=0.0)
    decide(p, call("a__x"), limiter, now=1.0)
    for now in (2.0, 5.0, 9.0):
        assert decide(p, call("a__x"), limiter, now=now).action is Action.DENY
    assert limiter.count(("c", "a__x"), 10, now=9.0) == 2
    assert decide(p, call("a__x"), limiter, now=10.0).action is Action.ALLOW


def test_calls_denied_by_a_condition_do_not_count() -> None:
    entry = {
        "limits": [{"max": 1, "window": "minute", "counter": "c"}],
        "conditions": [{"when": {"force": {"equals": True}}, "action": "deny"}],
    }
    p, limiter = policy({"a__x": entry}), RateLimiter()
    assert decide(p, call("a__x", {"force": True}), limiter).action is Action.DENY
    assert decide(p, call("a__x", {"force": False}), limiter).action is Action.ALLOW
    assert limiter.count(("c", "a__x"), 60, now=0.0) == 1


def test_a_call_that_needs_approval_counts_against_the_limit() -> None:
    p, limiter = limited("tool", action="require_approval"), RateLimiter()
    assert decide(p, call("a__x"), limiter).action is Action.REQUIRE_APPROVAL
    assert decide(p, call("a__x"), limiter).action is Action.DENY


def test_a_call_counts_in_every_bucket_it_passed_only_when_all_pass() -> None:
    limits = [
        {"max": 5, "window": "minute", "counter": "wide", "scope": "global"},
        {"max": 1, "window": "minute", "counter": "narrow"},
    ]
    p, limiter = policy({"a__*": {"limits": limits}}), RateLimiter()
    decide(p, call("a__x"), limiter)
    assert decide(p, call("a__x"), limiter).rule == 'tools["a__*"].limits[1]'
    assert limiter.count(("wide", ""), 60, now=0.0) == 1
    assert decide(p, call("a__y"), limiter).action is Action.ALLOW
    assert limiter.count(("wide", ""), 60, now=0.0) == 2


def test_the_limiter_keeps_counting_across_a_policy_reload(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(POLICYLAYER_EXAMPLE, encoding="utf-8")
    limiter = RateLimiter()
    for _ in range(30):
        decide(Policy.from_file(path), call(unprefixed("close_session", "s")), limiter, now=1.0)
    path.write_text(POLICYLAYER_EXAMPLE.replace('"deny"', '"allow"'), encoding="utf-8")
    reloaded = Policy.from_file(path)
    assert decide(reloaded, call("s__other"), limiter, now=2.0).action is Action.ALLOW
    assert decide(reloaded, call(unprefixed("close_session", "s")), limiter, now=2.0).action is Action.DENY


def test_a_reload_that_lowers_max_waits_until_enough_calls_have_left_the_window() -> None:
    limiter = RateLimiter()
    for now in (0.0, 10.0, 20.0):
        decide(
            policy({"a__x": {"limits": [{"max": 3, "window": 60, "counter": "c"}]}}),
            call("a__x"),
            limiter,
            now,
        )
    lowered = policy({"a__x": {"limits": [{"max": 2, "window": 60, "counter": "c"}]}})
    assert decide(lowered, call("a__x"), limiter, now=30.0).retry_after == pytest.approx(40.0)


def test_decide_without_arguments_ignores_limits_and_sees_no_arguments() -> None:
    p = policy(
        {
            "a__x": {
                "limits": [{"max": 1, "window": "day"}],
                "conditions": [{"when": {"path": {"exists": False}}, "action": "require_approval"}],
            }
        }
    )
    limiter = RateLimiter()
    decide(p, call("a__x", {"path": "/x"}), limiter)
    assert decide(p, call("a__x", {"path": "/x"}), limiter).action is Action.DENY
    decision = p.decide_without_arguments(call("a__x", {"path": "/x"}))
    assert (decision.action, decision.rule) == (Action.REQUIRE_APPROVAL, 'tools["a__x"].conditions[0]')


# Always allow


def test_policy_rule_for_always_allow_uses_the_exposed_name() -> None:
    ref = ToolRef(server="github", tool="delete_repo", name="gh__delete_repo", prefix="gh")
    assert policy_rule_for_always_allow(ref) == {"gh__delete_repo": {"action": "allow"}}


def test_always_allow_names_the_server_of_an_unprefixed_tool_so_no_other_server_can_take_it() -> None:
    ref = ToolRef(server="fs", tool="read*file", name="read_file-1a2b3c4d", prefix="")
    rule = policy_rule_for_always_allow(ref)
    assert rule == {"fs__read[*]file": {"action": "allow"}}
    p = policy(rule)
    assert decide(p, call(ref)).action is Action.ALLOW
    for other in (
        ToolRef(server="evil", tool="read*file", name="read_file-1a2b3c4d", prefix=""),
        ToolRef(server="fs", tool="read_xfile", name="read_xfile", prefix=""),
    ):
        assert decide(p, call(other)).rule == "default"


def test_add_allow_rule_creates_a_valid_file_from_the_default_policy(tmp_path: Path) -> None:
    path = tmp_path / "config" / "policy.json"
    add_allow_rule(path, tool("fs__write_file"))
    written = Policy.from_file(path)
    assert written.data["tools"] == {"fs__write_file": {"action": "allow"}}
    assert written.data["risk_defaults"] == DEFAULT_POLICY_DATA["risk_defaults"]
    assert decide(written, call("fs__write_file", risk=RiskClass.WRITE)).action is Action.ALLOW
    assert decide(written, call("fs__delete", risk=RiskClass.WRITE)).action is Action.REQUIRE_APPROVAL
    assert [p.name for p in path.parent.iterdir()] == ["policy.json"]


def test_add_allow_rule_keeps_other_keys_in_their_order(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    original = {
        "description": "mine",
        "version": "1",
        "tools": {"b__*": {"action": "deny"}, "a__x": {"action": "deny"}},
        "default": "deny",
    }
    path.write_text(json.dumps(original), encoding="utf-8")
    add_allow_rule(path, tool("c__y"))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data) == ["description", "version", "tools", "default"]
    assert list(data["tools"]) == ["b__*", "a__x", "c__y"]
    assert data["tools"]["c__y"] == {"action": "allow"}


def test_add_allow_rule_keeps_the_guards_of_an_existing_entry(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"version": "1", "tools": PAYMENT_POLICY}), encoding="utf-8")
    add_allow_rule(path, tool("stripe__create_payment"))
    p = Policy.from_file(path)
    assert decide(p, call("stripe__create_payment", {"amount": 5})).action is Action.ALLOW
    assert decide(p, call("stripe__create_payment", {"amount": 50000})).action is Action.DENY


def test_add_allow_rule_leaves_an_invalid_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{"version": "2"}', encoding="utf-8")
    with pytest.raises(ConfigError):
        add_allow_rule(path, tool("a__x"))
    assert path.read_text(encoding="utf-8") == '{"version": "2"}'
    assert [p.name for p in tmp_path.iterdir()] == ["policy.json"]


# Rules per client


def test_an_entry_for_some_clients_is_absent_for_the_others() -> None:
    p = policy(
        {
            "git__*": {"action": "allow", "clients": ["nightly-*"]},
            "*": {"action": "deny", "clients": ["nightly-*"]},
        },
        risk_defaults={"other": "require_approval"},
    )
    assert decide(p, call("git__log", client="nightly-batch")).action is Action.ALLOW
    assert decide(p, call("files__read", client="nightly-batch")).action is Action.DENY
    cursor = decide(p, call("git__log", client="cursor"))
    assert cursor.action is Action.REQUIRE_APPROVAL
    assert cursor.rule == "risk_defaults.other"


def test_a_condition_for_one_client_applies_to_that_client_only() -> None:
    p = policy(
        {
            "files__write": {
                "action": "require_approval",
                "conditions": [
                    {"clients": ["cursor"], "when": {"path": {"path_under": "/work"}}, "action": "allow"},
                    {"clients": ["nightly"], "action": "deny"},
                ],
            }
        }
    )
    assert decide(p, call("files__write", {"path": "/work/a"}, client="cursor")).action is Action.ALLOW
    assert (
        decide(p, call("files__write", {"path": "/etc/a"}, client="cursor")).action is Action.REQUIRE_APPROVAL
    )
    assert (
        decide(p, call("files__write", {"path": "/work/a"}, client="claude")).action
        is Action.REQUIRE_APPROVAL
    )
    denied = decide(p, call("files__write", {"path": "/work/a"}, client="nightly"))
    assert (denied.action, denied.rule) == (Action.DENY, 'tools["files__write"].conditions[1]')


def test_a_condition_needs_a_when_or_clients() -> None:
    with pytest.raises(ConfigError) as raised:
        policy({"x": {"conditions": [{"action": "allow"}]}})
    assert raised.value.pointer == "/tools/x/conditions/0"


def test_client_patterns_lists_every_client_the_policy_names() -> None:
    p = policy(
        {
            "a": {"clients": ["cursor"], "conditions": [{"clients": ["nightly-*", "x"], "action": "deny"}]},
            "b": {"action": "deny"},
        }
    )
    assert p.client_patterns() == [
        ('tools["a"]', "cursor"),
        ('tools["a"].conditions[0]', "nightly-*"),
        ('tools["a"].conditions[0]', "x"),
    ]


def test_argument_paths_are_what_the_deciding_entry_reads_for_this_client() -> None:
    p = policy(
        {
            "files__write": {
                "conditions": [
                    {"when": {"path": {"path_under": "/w"}, "/opts/0": {"equals": 1}}, "action": "deny"},
                    {"clients": ["cursor"], "when": {"mode": {"equals": "x"}}, "action": "deny"},
                ]
            },
            "files__read": {"action": "allow"},
        }
    )
    assert p.argument_paths(call("files__write", client="claude")) == (("path",), ("opts", "0"))
    assert p.argument_paths(call("files__write", client="cursor")) == (("path",), ("opts", "0"), ("mode",))
    assert p.argument_paths(call("files__read")) is None
    assert p.argument_paths(call("other__tool")) is None


def test_origin_metadata_is_accepted_and_changes_no_decision() -> None:
    origin = {"via": "dialog", "at": "2026-12-05T10:00:00Z", "call_id": "abc-1", "client": "c", "tool": "t"}
    p = policy(
        {
            "t": {
                "action": "deny",
                "origin": origin,
                "conditions": [{"clients": ["c"], "action": "allow", "origin": origin}],
            }
        }
    )
    assert decide(p, call(tool("t", "t"), client="c")).action is Action.ALLOW


def test_review_result_marks_what_the_entry_allows_or_asks_about_but_not_a_denial() -> None:
    p = policy(
        {
            "github__get_file": {
                "action": "allow",
                "review_result": True,
                "conditions": [
                    {"when": {"path": {"equals": "/secret"}}, "action": "deny"},
                    {"when": {"path": {"equals": "/ask"}}, "action": "require_approval"},
                ],
            }
        }
    )
    assert decide(p, call("github__get_file", {"path": "/a"})).review_result
    assert decide(p, call("github__get_file", {"path": "/ask"})).review_result
    assert not decide(p, call("github__get_file", {"path": "/secret"})).review_result
    assert not decide(p, call("github__other")).review_result
