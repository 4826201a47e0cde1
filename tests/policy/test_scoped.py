"""Scoped "Always approve…" rules: the choices offered, the JSON written, and what it decides after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from approver.calls import Action, CallContext, Risk, RiskClass, RiskLevel, ToolRef
from approver.errors import ConfigError
from approver.policy.editing import load_policy_data, write_policy
from approver.policy.engine import Policy
from approver.policy.limits import RateLimiter
from approver.policy.scoped import ArgumentChoice, RuleScope, Scope, choices_for, origin, with_scoped_rule

TOOL = ToolRef("files", "write_file", "files__write_file")
WRITE = Risk(RiskClass.WRITE, RiskLevel.MEDIUM)
ORIGIN = {
    "via": "dialog",
    "at": "2026-12-05T10:00:00Z",
    "call_id": "c-1",
    "client": "cursor",
    "tool": TOOL.name,
}
BASE: dict[str, Any] = {
    "version": "1",
    "default": "deny",
    "risk_defaults": {"read": "allow", "write": "require_approval"},
    "tools": {},
}


def decide(
    data: dict[str, Any], arguments: dict[str, Any], client: str = "cursor", tool: ToolRef = TOOL
) -> Action:
    ctx = CallContext(client, tool, WRITE, arguments)
    return Policy.from_data(data).decide(ctx, RateLimiter(), 0.0).action


def under_home(client: str | None = "cursor") -> RuleScope:
    return RuleScope(client, (ArgumentChoice("path", Scope.PATH_UNDER, "/home/me/project"),))


def test_each_argument_is_offered_the_matches_that_fit_its_value() -> None:
    found = choices_for(
        {
            "path": "/home/me/project/a.py",
            "url": "https://docs.example.com/x",
            "command": "git status --short",
            "count": 3,
        }
    )
    assert [c.describe() for c in found["path"]] == [
        "any value",
        "exactly /home/me/project/a.py",
        "a path under /home/me/project",
        "a path matching /home/me/project/*.py",
    ]
    assert found["url"][-1] == ArgumentChoice("url", Scope.URL_HOST, "docs.example.com")
    assert found["command"][-1] == ArgumentChoice("command", Scope.COMMAND_PREFIX, "git status")
    assert [c.scope for c in found["count"]] == [Scope.ANY, Scope.EXACT]


def test_a_rule_for_this_client_under_a_folder_allows_only_that(tmp_path: Path) -> None:
    draft = with_scoped_rule(BASE, TOOL, WRITE, "cursor", under_home(), ORIGIN)

    assert draft.rule == 'tools["files__write_file"].conditions[0]'
    assert draft.fragment == {
        "clients": ["cursor"],
        "when": {"path": {"path_under": "/home/me/project"}},
        "action": "allow",
        "origin": ORIGIN,
    }
    assert draft.data["tools"]["files__write_file"]["action"] == "require_approval"
    assert decide(draft.data, {"path": "/home/me/project/a"}) is Action.ALLOW
    assert decide(draft.data, {"path": "/home/me/project/../../../etc/passwd"}) is Action.REQUIRE_APPROVAL
    assert decide(draft.data, {"path": "/home/me/project/a"}, client="nightly") is Action.REQUIRE_APPROVAL
    path = tmp_path / "policy.json"
    write_policy(path, draft.data)
    assert Policy.from_file(path).data == draft.data


def test_all_clients_and_any_arguments_is_the_old_blanket_allow() -> None:
    draft = with_scoped_rule(BASE, TOOL, WRITE, "cursor", RuleScope(None), ORIGIN)
    assert draft.rule == 'tools["files__write_file"]'
    assert draft.data["tools"]["files__write_file"] == {"action": "allow", "origin": ORIGIN}
    assert decide(draft.data, {"path": "/etc/passwd"}, client="anyone") is Action.ALLOW


def test_a_rule_goes_after_the_conditions_an_entry_already_has() -> None:
    data = {
        **BASE,
        "tools": {
            "files__write_file": {
                "action": "require_approval",
                "conditions": [{"when": {"path": {"ends_with": ".env"}}, "action": "deny"}],
            }
        },
    }
    draft = with_scoped_rule(data, TOOL, WRITE, "cursor", under_home(), ORIGIN)
    assert draft.rule == 'tools["files__write_file"].conditions[1]'
    assert decide(draft.data, {"path": "/home/me/project/.env"}) is Action.DENY


def test_a_tool_decided_by_a_glob_gets_an_entry_that_keeps_the_globs_guards_and_bucket() -> None:
    data = {
        **BASE,
        "tools": {
            "files__*": {
                "action": "require_approval",
                "conditions": [{"when": {"path": {"ends_with": ".env"}}, "action": "deny"}],
                "limits": [{"max": 2, "window": "minute"}],
            }
        },
    }
    draft = with_scoped_rule(data, TOOL, WRITE, "cursor", under_home(), ORIGIN)
    entry = draft.data["tools"]["files__write_file"]
    assert entry["limits"] == [{"max": 2, "window": "minute", "counter": 'tools["files__*"].limits[0]'}]
    assert decide(draft.data, {"path": "/home/me/project/.env"}) is Action.DENY
    limiter, ok = RateLimiter(), {"path": "/home/me/project/a"}
    before = Policy.from_data(data).decide(CallContext("cursor", TOOL, WRITE, ok), limiter, 0.0)
    after = Policy.from_data(draft.data)
    decisions = [after.decide(CallContext("cursor", TOOL, WRITE, ok), limiter, 0.0).action for _ in range(2)]
    assert before.action is Action.REQUIRE_APPROVAL
    assert decisions == [Action.ALLOW, Action.DENY], "the call counted before the rule still counts"


def test_an_entry_only_for_other_clients_cannot_take_the_rule() -> None:
    data = {**BASE, "tools": {"files__write_file": {"action": "deny", "clients": ["nightly"]}}}
    with pytest.raises(ConfigError, match="applies only to the clients nightly"):
        with_scoped_rule(data, TOOL, WRITE, "cursor", under_home(), ORIGIN)


def test_an_exact_value_and_a_command_prefix_become_their_operators() -> None:
    shell = ToolRef("shell", "run", "shell__run")
    scope = RuleScope(
        None,
        (
            ArgumentChoice("command", Scope.COMMAND_PREFIX, "git status"),
            ArgumentChoice("cwd", Scope.EXACT, "/repo"),
            ArgumentChoice("env", Scope.ANY),
        ),
    )
    draft = with_scoped_rule(BASE, shell, WRITE, "cursor", scope, ORIGIN)
    assert draft.fragment["when"] == {"command": {"command_prefix": "git status"}, "cwd": {"equals": "/repo"}}
    assert "clients" not in draft.fragment
    assert decide(draft.data, {"command": "git status -s", "cwd": "/repo"}, tool=shell) is Action.ALLOW
    assert (
        decide(draft.data, {"command": "git status; rm -rf /", "cwd": "/repo"}, tool=shell)
        is Action.REQUIRE_APPROVAL
    )


def test_a_new_policy_file_starts_from_the_default_policy(tmp_path: Path) -> None:
    data = load_policy_data(tmp_path / "policy.json")
    draft = with_scoped_rule(data, TOOL, WRITE, "cursor", under_home(), origin("c-9", TOOL, "cursor"))
    assert draft.data["default"] == "require_approval"
    assert draft.fragment["origin"]["call_id"] == "c-9"
    assert draft.fragment["origin"]["at"].endswith("Z")
