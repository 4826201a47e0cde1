"""The Rules window over a real policy file and audit log: list, origins, matches, edit and remove."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from approver.audit.log import DecisionRecord
from approver.config.tokens import TokenStore
from approver.service import Service
from approver.testing.harness import MemoryKeyring, write_config
from approver.ui.rules_window import RulesWindow

WAIT_MS = 10_000
ORIGIN = {
    "via": "dialog",
    "at": "2026-12-05T10:00:00Z",
    "call_id": "c-7",
    "client": "cursor",
    "tool": "git__git_add",
}
CONDITION = 'tools["git__git_add"].conditions[0]'
POLICY: dict[str, Any] = {
    "version": "1",
    "default": "deny",
    "risk_defaults": {"read": "allow", "write": "require_approval"},
    "tools": {
        "git__git_add": {
            "action": "require_approval",
            "conditions": [
                {
                    "clients": ["cursor"],
                    "when": {"files": {"equals": ["a"]}},
                    "action": "allow",
                    "origin": ORIGIN,
                }
            ],
        }
    },
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    paths = write_config(tmp_path, {}, POLICY)
    running = Service(paths, token_store=TokenStore(paths.tokens_file, backend=MemoryKeyring()))
    for i, (client, files, decision, decided_by, rule) in enumerate(
        [
            ("cursor", ["a"], "allow", "policy", CONDITION),
            ("cursor", ["a"], "allow", "policy", CONDITION),
            ("claude", ["a"], "allow", "user", 'tools["git__git_add"]'),
        ]
    ):
        running.audit.record_decision(
            DecisionRecord(
                f"c{i}",
                client,
                "git",
                "git__git_add",
                "git_add",
                "write",
                "low",
                [],
                json.dumps({"files": files}).encode(),
                decision,
                decided_by,
                rule,
                "",
            )
        )
    try:
        yield running
    finally:
        running.recorder.close()


@pytest.fixture
def window(qtbot: QtBot, service: Service) -> RulesWindow:
    shown = RulesWindow(service)
    qtbot.addWidget(shown)
    shown.show()
    qtbot.waitUntil(lambda: not shown.busy(), timeout=WAIT_MS)
    return shown


def row(window: RulesWindow, name: str) -> list[str]:
    assert window.select(name)
    item = window.tree.currentItem()
    assert item is not None
    return [item.text(column) for column in range(4)]


def settled(qtbot: QtBot, window: RulesWindow) -> None:
    qtbot.waitUntil(lambda: window.save_button.isEnabled() or "not" in window.message.text(), timeout=WAIT_MS)


def test_every_rule_is_listed_with_where_it_came_from_and_its_matches(window: RulesWindow) -> None:
    assert row(window, CONDITION) == [
        CONDITION,
        'allow for cursor when files equals ["a"]',
        "dialog on 2026-12-05 10:00 for call c-7 (git__git_add by cursor)",
        "2",
    ]
    assert row(window, 'tools["git__git_add"]')[2:] == ["file", "1"]
    assert row(window, "default")[1] == "deny everything else"
    assert not window.remove_button.isEnabled(), "the default can be edited, not removed"


def test_removing_a_rule_shows_what_would_change_then_writes_the_file_and_applies_it(
    qtbot: QtBot, window: RulesWindow, service: Service
) -> None:
    window.select(CONDITION)
    window.start_remove()
    settled(qtbot, window)

    report = window.report.toPlainText()
    assert "allowed -> held: 2 (newly held for approval)" in report
    window.save()

    data = json.loads(service.paths.policy_file.read_text("utf-8"))
    assert "conditions" not in data["tools"]["git__git_add"]
    assert "conditions" not in service.policy.policy.data["tools"]["git__git_add"]
    assert window.message.text() == f"Removed {CONDITION}; the policy is in force now."
    assert not window.select(CONDITION)


def test_an_edit_is_checked_against_the_log_before_it_can_be_saved(
    qtbot: QtBot, window: RulesWindow, service: Service
) -> None:
    window.select(CONDITION)
    window.start_edit()
    edited = dict(POLICY["tools"]["git__git_add"]["conditions"][0], clients=["claude"])
    window.editor.setPlainText(json.dumps(edited))
    assert not window.save_button.isEnabled()

    window.check()
    settled(qtbot, window)
    assert "allowed -> held: 2" in window.report.toPlainText()
    assert "held -> allowed: 1" in window.report.toPlainText()
    window.editor.setPlainText(json.dumps(edited) + " ")
    assert not window.save_button.isEnabled(), "a text changed after the check must be checked again"
    window.check()
    settled(qtbot, window)
    window.save()

    condition = json.loads(service.paths.policy_file.read_text("utf-8"))["tools"]["git__git_add"][
        "conditions"
    ][0]
    assert condition["clients"] == ["claude"]


def test_a_broken_edit_says_why_and_saves_nothing(window: RulesWindow, service: Service) -> None:
    before = service.paths.policy_file.read_text("utf-8")
    window.select(CONDITION)
    window.start_edit()

    window.editor.setPlainText("{not json")
    window.check()
    assert window.message.text().startswith("That is not JSON")
    window.editor.setPlainText('{"action": "maybe", "clients": ["x"]}')
    window.check()
    assert window.message.text().startswith("The policy would not be valid")
    assert "/tools/git__git_add/conditions/0/action" in window.message.text()
    assert not window.save_button.isEnabled()
    assert service.paths.policy_file.read_text("utf-8") == before


def test_a_file_changed_by_hand_meanwhile_is_not_overwritten(
    qtbot: QtBot, window: RulesWindow, service: Service
) -> None:
    window.select(CONDITION)
    window.start_remove()
    settled(qtbot, window)
    by_hand = json.loads(json.dumps(POLICY))
    by_hand["tools"]["git__git_add"]["conditions"][0]["clients"] = ["someone-else"]
    service.paths.policy_file.write_text(json.dumps(by_hand), "utf-8")

    window.save()

    assert "the file changed meanwhile" in window.message.text()
    assert json.loads(service.paths.policy_file.read_text("utf-8")) == by_hand
