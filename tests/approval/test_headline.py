"""The headline says what a call will do, from its risk class and key arguments."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from approver.approval.broker import ApprovalRequest
from approver.approval.headline import format_amount, headline, quote
from approver.calls import Risk, RiskClass, RiskLevel, ToolRef


def request(
    tool: str,
    arguments: dict[str, Any],
    risk_class: RiskClass,
    level: RiskLevel = RiskLevel.HIGH,
    *,
    client: str = "cursor",
    schema: dict[str, Any] | None = None,
) -> ApprovalRequest:
    now = time.time()
    return ApprovalRequest(
        id="r1",
        client=client,
        session="s",
        tool=ToolRef("srv", tool, f"srv__{tool}"),
        risk=Risk(risk_class, level),
        description="",
        arguments=json.dumps(arguments, sort_keys=True).encode(),
        received=now,
        deadline=now + 60,
        rule="default",
        input_schema=schema or {},
        argument_order=tuple(arguments),
    )


@pytest.mark.parametrize(
    ("tool", "arguments", "risk_class", "sentence"),
    [
        ("write_file", {"path": "/home/me/notes/todo.md", "content": "x" * 51_200}, RiskClass.WRITE,
         "cursor wants to write 50 KB to /home/me/notes/todo.md"),
        ("run_command", {"command": "rm -rf build && make"}, RiskClass.EXECUTE,
         "cursor wants to run `rm -rf build && make`"),
        ("transfer", {"amount": 25000.0, "currency": "EUR", "from_account": "DE11", "to_iban": "DE89 3704"},
         RiskClass.FINANCIAL, "cursor wants to transfer 25,000.00 EUR to DE89 3704"),
        ("create_refund", {"amount_cents": 2500, "charge": "ch_1"}, RiskClass.FINANCIAL,
         "cursor wants to refund 2,500 (minor units)"),
        ("delete_repository", {"owner": "me", "repo": "site"}, RiskClass.DESTRUCTIVE,
         "cursor wants to delete repository me/site"),
        ("git_add", {"repo_path": "/src/site", "files": ["a.py", "b.py"]}, RiskClass.WRITE,
         "cursor wants to add a.py, b.py in repository /src/site"),
        ("delete_file", {"path": "draft.txt"}, RiskClass.DESTRUCTIVE, "cursor wants to delete draft.txt"),
        ("read_query", {"query": "DROP   TABLE\n users"}, RiskClass.EXECUTE,
         "cursor wants to run SQL `DROP TABLE users`"),
        ("send_email", {"to": "bob@example.com", "subject": "hi", "body": "hello"}, RiskClass.WRITE,
         "cursor wants to send a message to bob@example.com"),
        ("fetch", {"url": "https://example.com/page"}, RiskClass.READ, "cursor wants to fetch https://example.com/page"),
        ("search_issues", {"query": "crash on start"}, RiskClass.READ,
         "cursor wants to search for “crash on start”"),
        ("frobnicate", {"a": 1, "b": 2}, RiskClass.OTHER,
         "cursor wants to call srv__frobnicate with 2 arguments"),
        ("ping", {}, RiskClass.OTHER, "cursor wants to call srv__ping with no arguments"),
    ],
)  # fmt: skip
def test_the_headline_names_the_action_and_its_key_arguments(
    tool: str, arguments: dict[str, Any], risk_class: RiskClass, sentence: str
) -> None:
    assert headline(request(tool, arguments, risk_class)).sentence() == sentence


def test_a_multi_line_command_shows_its_first_line_and_how_many_lines_it_has() -> None:
    script = "set -e\n" + "echo step\n" * 148 + "rm -rf ~\n"
    found = headline(request("run_script", {"script": script}, RiskClass.EXECUTE, client="claude-code"))
    assert (found.who, found.action) == ("claude-code", "run `set -e…` (151 lines)")


def test_the_headline_takes_the_declared_path_not_an_undeclared_decoy() -> None:
    schema = {"properties": {"file_path": {}, "content": {}}}
    arguments = {"path": "harmless.txt", "file_path": "/etc/passwd", "content": "x"}
    action = headline(request("write_file", arguments, RiskClass.WRITE, schema=schema)).action
    assert action == "write 1 byte to /etc/passwd"


def test_amounts_keep_every_digit_sent() -> None:
    assert format_amount(25000) == "25,000"
    assert format_amount(0.001) == "0.001"
    assert format_amount("1999.5") == "1,999.50"
    assert format_amount("lots") == "lots"


def test_quotes_are_one_line_and_bounded() -> None:
    assert quote("a\nb") == "a…"
    assert quote("x" * 200, 10) == "x" * 9 + "…"
    assert quote(["a", "b"]) == "a, b"
