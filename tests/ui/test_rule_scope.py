"""The scoped "Always approve…" confirmation: choices, the rule shown, its history, and confirming."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from approver.approval.broker import ApprovalRequest, Resolution, Scope, Verdict
from approver.audit.log import DecisionRecord
from approver.calls import Risk, RiskClass, RiskLevel, ToolRef
from approver.config.tokens import TokenStore
from approver.policy.engine import Policy
from approver.policy.scoped import Scope as ArgScope
from approver.service import Service
from approver.testing.harness import MemoryKeyring, write_config
from approver.ui.approval import ApprovalController
from approver.ui.rule_scope import RuleScopeDialog
from approver.ui.signals import CoreSignals

WAIT_MS = 5000
POLICY = {"version": "1", "default": "require_approval", "risk_defaults": {"read": "allow"}, "tools": {}}
TOOL = ToolRef("files", "write_file", "files__write_file")


def request(path: str = "/home/me/project/notes.md", client: str = "cursor") -> ApprovalRequest:
    now = time.time()
    return ApprovalRequest(
        id="held-1",
        client=client,
        session="s1",
        tool=TOOL,
        risk=Risk(RiskClass.WRITE, RiskLevel.MEDIUM),
        description="writes a file",
        arguments=json.dumps({"path": path, "content": "hello"}, separators=(",", ":")).encode(),
        received=now,
        deadline=now + 3600,
        rule="default",
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    paths = write_config(tmp_path, {}, POLICY)
    running = Service(paths, token_store=TokenStore(paths.tokens_file, backend=MemoryKeyring()))
    for i, (client, path, decision, decided_by) in enumerate(
        [
            ("cursor", "/home/me/project/a.md", "allow", "user"),
            ("cursor", "/home/me/project/b.md", "deny", "user"),
            ("cursor", "/etc/passwd", "deny", "user"),
            ("claude", "/home/me/project/c.md", "allow", "user"),
        ]
    ):
        running.audit.record_decision(
            DecisionRecord(
                f"c{i}",
                client,
                "files",
                TOOL.name,
                "write_file",
                "write",
                "medium",
                [],
                json.dumps({"path": path, "content": "x"}).encode(),
                decision,
                decided_by,
                "default",
                "",
            )
        )
    try:
        yield running
    finally:
        running.recorder.close()


def open_dialog(qtbot: QtBot, service: Service, **options: Any) -> RuleScopeDialog:
    dialog = RuleScopeDialog(
        request(), service, policy_path=str(service.paths.policy_file), arm_delay_ms=0, **options
    )
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=WAIT_MS)
    return dialog


def fragment(dialog: RuleScopeDialog) -> dict[str, Any]:
    return dict(json.loads(dialog.rule_view.toPlainText()))


def test_it_starts_at_the_narrowest_rule_this_client_and_these_exact_arguments(
    qtbot: QtBot, service: Service
) -> None:
    dialog = open_dialog(qtbot, service)

    rule = fragment(dialog)
    assert rule["clients"] == ["cursor"]
    assert rule["when"] == {"path": {"equals": "/home/me/project/notes.md"}, "content": {"equals": "hello"}}
    assert str(service.paths.policy_file) in dialog.where.text()
    assert 'tools["files__write_file"].conditions[0]' in dialog.where.text()
    assert dialog.history.text().endswith("would have allowed 0 of the last 4 calls of this tool.")


def test_widening_to_a_folder_shows_what_the_rule_would_have_allowed_and_what_you_denied(
    qtbot: QtBot, service: Service
) -> None:
    dialog = open_dialog(qtbot, service)

    dialog.choose("path", ArgScope.PATH_UNDER, "/home/me/project")
    dialog.choose("content", ArgScope.ANY)
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=WAIT_MS)

    assert fragment(dialog)["when"] == {"path": {"path_under": "/home/me/project"}}
    assert dialog.history.text() == (
        "Over the audit log, this rule would have allowed 2 of the last 4 calls of this tool; "
        "1 of them was denied by you:"
    )
    lines = dialog.history_list.toPlainText().splitlines()
    assert len(lines) == 2 and lines[0].endswith("(you denied it)") and "b.md" in lines[0]


def test_all_clients_and_any_arguments_is_the_blanket_rule(qtbot: QtBot, service: Service) -> None:
    dialog = open_dialog(qtbot, service)
    dialog.all_clients.setChecked(True)
    dialog.any_arguments.setChecked(True)
    with qtbot.waitSignal(dialog.confirmed, timeout=WAIT_MS) as confirmed:
        qtbot.waitUntil(lambda: dialog.confirm.isEnabled(), timeout=WAIT_MS)
        dialog.confirm.click()
    [scope] = confirmed.args
    assert scope.blanket
    assert fragment(dialog)["action"] == "allow"


def test_a_relative_folder_cannot_be_confirmed_and_says_why(qtbot: QtBot, service: Service) -> None:
    dialog = open_dialog(qtbot, service)
    dialog.choose("path", ArgScope.PATH_UNDER, "project")
    assert not dialog.confirm.isEnabled()
    assert dialog.error.isVisible()
    assert "expected an absolute directory" in dialog.error.text()


def test_the_confirm_button_waits_for_the_arm_delay(qtbot: QtBot, service: Service) -> None:
    dialog = RuleScopeDialog(request(), service, policy_path="p", arm_delay_ms=60_000)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.confirm.isEnabled()
    assert dialog.cancel.isDefault() and not dialog.confirm.autoDefault()


def test_the_approval_dialog_opens_it_and_confirming_writes_the_rule_and_approves(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, service: Service
) -> None:
    detach = service.broker.attach_approver()
    signals = CoreSignals(service.broker, service.events)
    controller = ApprovalController(
        signals,
        service.broker,
        service,
        policy_path=service.paths.policy_file,
        arm_delay_ms=0,
        scoped_rules=True,
    )
    qtbot.addWidget(controller.dialog)
    try:
        arrived = asyncio.Event()
        controller.waiting_changed.connect(lambda _count: arrived.set())
        task = qloop.create_task(service.broker.submit(request()))
        qloop.run_until_complete(asyncio.wait_for(arrived.wait(), 5))
        controller.dialog.show()
        always = controller.dialog.findChild(QPushButton, "approve_always")
        qtbot.waitUntil(always.isEnabled, timeout=WAIT_MS)
        always.click()
        scope_dialog = controller.scope_dialog
        assert scope_dialog is not None and scope_dialog.isVisible()
        scope_dialog.choose("path", ArgScope.PATH_UNDER, "/home/me/project")
        scope_dialog.choose("content", ArgScope.ANY)
        qtbot.waitUntil(scope_dialog.confirm.isEnabled, timeout=WAIT_MS)
        scope_dialog.confirm.click()
        resolution: Resolution = qloop.run_until_complete(asyncio.wait_for(task, 5))
    finally:
        service.broker.deny_all("shutdown", "test over")
        signals.disconnect_core()
        detach()

    assert (resolution.verdict, resolution.scope) == (Verdict.APPROVED, Scope.ALWAYS)
    written = json.loads(service.paths.policy_file.read_text("utf-8"))
    condition = written["tools"]["files__write_file"]["conditions"][0]
    assert condition["clients"] == ["cursor"]
    assert condition["when"] == {"path": {"path_under": "/home/me/project"}}
    assert condition["origin"]["call_id"] == "held-1"
    Policy.from_file(service.paths.policy_file)
    assert controller.scope_dialog is None
