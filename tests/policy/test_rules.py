"""A policy as a list of rules: names as decisions give them, origins, removal and replacement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from approver.errors import ConfigError
from approver.policy.engine import Policy
from approver.policy.rules import find_rule, list_rules, remove_rule, replace_rule, with_rule_removed

ORIGIN = {"via": "dialog", "at": "2026-12-05T10:00:00Z", "call_id": "c-1", "client": "cursor", "tool": "a/b"}
DATA: dict[str, Any] = {
    "version": "1",
    "default": "require_approval",
    "risk_defaults": {"read": "allow"},
    "risk_overrides": {"x__*": {"class": "read"}},
    "tools": {
        "a/b": {
            "action": "deny",
            "origin": ORIGIN,
            "conditions": [{"clients": ["cursor"], "when": {"p": {"path_under": "/w"}}, "action": "allow"}],
            "limits": [{"max": 3, "window": "minute"}],
        }
    },
}


def test_every_rule_is_listed_under_the_name_decisions_give_it() -> None:
    rules = list_rules(DATA)
    assert [(r.name, r.pointer, r.depth) for r in rules] == [
        ('tools["a/b"]', "/tools/a~1b", 0),
        ('tools["a/b"].conditions[0]', "/tools/a~1b/conditions/0", 1),
        ('tools["a/b"].limits[0]', "/tools/a~1b/limits/0", 1),
        ("risk_defaults.read", "/risk_defaults/read", 0),
        ('risk_overrides["x__*"]', "/risk_overrides/x__*", 0),
        ("default", "/default", 0),
    ]
    assert rules[0].origin == "dialog on 2026-12-05 10:00 for call c-1 (a/b by cursor)"
    assert rules[1].origin == "file"
    assert rules[1].summary == 'allow for cursor when p path_under "/w"'
    assert rules[2].summary == "at most 3 per minute (tool)"


def test_removing_the_last_condition_leaves_a_valid_entry_and_version_stays(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(DATA), "utf-8")

    remove_rule(path, find_rule(DATA, 'tools["a/b"].conditions[0]').pointer)
    remove_rule(path, "/risk_defaults/read")

    data = json.loads(path.read_text("utf-8"))
    assert "conditions" not in data["tools"]["a/b"]
    assert data["risk_defaults"] == {}
    Policy.from_data(data)
    with pytest.raises(ConfigError, match="cannot be removed"):
        with_rule_removed(DATA, "/version")


def test_a_replacement_that_makes_the_policy_invalid_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(DATA), "utf-8")
    before = path.read_text("utf-8")

    with pytest.raises(ConfigError):
        replace_rule(path, "/tools/a~1b/conditions/0", {"when": {}, "action": "allow"})
    assert path.read_text("utf-8") == before

    replace_rule(path, "/default", "deny")
    assert json.loads(path.read_text("utf-8"))["default"] == "deny"


def test_a_rule_gone_from_the_file_is_an_error_that_says_so(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(DATA), "utf-8")
    with pytest.raises(ConfigError, match="no such rule"):
        remove_rule(path, "/tools/a~1b/conditions/4")
