"""Behaviour of the risk classifier, and its accuracy on the hand-labelled tool set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from approver.calls import RiskClass, RiskLevel
from approver.policy.risk import classify, describe, tokenize_name

LABELLED = Path(__file__).parent.parent / "data" / "labelled_tools.jsonl"


def schema(*fields: str) -> dict[str, Any]:
    return {"type": "object", "properties": {field: {"type": "string"} for field in fields}}


@pytest.mark.parametrize(
    ("name", "description", "expected"),
    [
        ("list_issues", "List issues in a GitHub repository", RiskClass.READ),
        ("get_file_contents", "Get the contents of a file", RiskClass.READ),
        ("create_issue", "Create a new issue", RiskClass.WRITE),
        ("move_file", "Move or rename files and directories.", RiskClass.WRITE),
        ("push_files", "Push multiple files in a single commit", RiskClass.WRITE),
        ("execute_sql", "Executes raw SQL in the Postgres database.", RiskClass.EXECUTE),
        ("browser_click", "Perform click on a web page", RiskClass.EXECUTE),
        ("delete_branch", "Delete a branch", RiskClass.DESTRUCTIVE),
        ("git_reset", "Unstages all staged changes", RiskClass.DESTRUCTIVE),
        ("create_refund", "This tool will refund a payment intent in Stripe.", RiskClass.FINANCIAL),
        ("cancel_subscription", "Cancel a subscription", RiskClass.FINANCIAL),
        ("close_session", "", RiskClass.OTHER),
        ("close_session", None, RiskClass.OTHER),
    ],
)
def test_typical_tools_get_the_class_a_person_would_give(
    name: str, description: str | None, expected: RiskClass
) -> None:
    assert classify(name, description, None, None).risk_class is expected


def test_a_query_described_as_read_only_is_read_but_other_sql_queries_execute() -> None:
    read_only = classify("run_query", "Run a read-only SQL query", schema("sql"), None)
    any_sql = classify("run_query", "Run a SQL query", schema("sql"), None)

    assert read_only.risk_class is RiskClass.READ
    assert "description says the query is read-only" in read_only.reasons
    assert any_sql.risk_class is RiskClass.EXECUTE


def test_query_without_sql_is_a_search_not_an_execution() -> None:
    risk = classify("API-post-database-query", "Notion | Query a database", schema("database_id"), None)

    assert risk.risk_class is RiskClass.READ


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("delete_repo", ("delete", "repo")),
        ("deleteRepo", ("delete", "repo")),
        ("delete-repo", ("delete", "repo")),
        ("repo.delete", ("repo", "delete")),
        ("github__delete_repo", ("delete", "repo")),
        ("my__server__deleteRepo", ("delete", "repo")),
        ("getHTTPResponse", ("get", "http", "response")),
        ("TwilioApiV2010--CreateMessage", ("twilio", "api", "v", "2010", "create", "message")),
    ],
)
def test_names_split_on_case_and_separators_after_the_server_prefix(
    name: str, words: tuple[str, ...]
) -> None:
    assert tokenize_name(name) == words


@pytest.mark.parametrize(
    "name", ["deleteRepository", "delete-repository", "repository.delete", "gh__delete_repo"]
)
def test_camel_kebab_dotted_and_prefixed_deletes_are_all_destructive(name: str) -> None:
    risk = classify(name, None, None, None)

    assert risk.risk_class is RiskClass.DESTRUCTIVE
    assert risk.reasons[0] == 'name contains "delete"'


def test_deleting_a_whole_repository_is_critical_and_one_comment_is_high() -> None:
    repo = classify("delete_repo", "Delete a repository", None, None)
    comment = classify("delete_comment", "Delete a comment", None, None)

    assert repo.level is RiskLevel.CRITICAL
    assert comment.level is RiskLevel.HIGH


def test_description_verb_decides_when_the_name_has_none() -> None:
    risk = classify("git_branch", "List Git branches", None, None)
    tabs = classify("browser_tabs", "List, create, close, or select a browser tab.", None, None)

    assert risk.risk_class is RiskClass.READ
    assert risk.reasons == ('description says "list"',)
    assert tabs.risk_class is RiskClass.EXECUTE


def test_read_only_hint_on_a_delete_tool_is_a_conflict_that_raises_the_level() -> None:
    plain = classify("delete_file", "Delete a file", None, None)
    lying = classify("delete_file", "Delete a file", None, {"readOnlyHint": True})

    assert lying.risk_class is RiskClass.DESTRUCTIVE
    assert lying.conflict and not plain.conflict
    assert lying.level is plain.level.raised()
    assert any(r.startswith("conflict: annotation readOnlyHint=true") for r in lying.reasons)


def test_destructive_hint_false_on_a_delete_tool_is_a_conflict() -> None:
    risk = classify("remove_container", "Remove a Docker container", None, {"destructiveHint": False})

    assert risk.risk_class is RiskClass.DESTRUCTIVE
    assert risk.conflict
    assert risk.level is RiskLevel.CRITICAL


def test_annotations_cannot_lower_what_the_name_says() -> None:
    risk = classify(
        "execute_command",
        "Run a shell command",
        schema("command"),
        {"readOnlyHint": True, "destructiveHint": False},
    )

    assert risk.risk_class is RiskClass.EXECUTE
    assert risk.conflict


def test_destructive_hint_raises_a_tool_whose_words_say_nothing() -> None:
    risk = classify("widget", None, None, {"destructiveHint": True})

    assert risk.risk_class is RiskClass.DESTRUCTIVE
    assert not risk.conflict
    assert "annotation destructiveHint=true" in risk.reasons


def test_destructive_hint_keeps_a_write_tool_a_write_at_high_level() -> None:
    risk = classify("write_file", "Create a new file or overwrite one", schema("path", "content"), None)
    hinted = classify("edit_file", "Make line-based edits to a text file.", None, {"destructiveHint": True})

    assert risk.risk_class is hinted.risk_class is RiskClass.WRITE
    assert hinted.level is RiskLevel.HIGH
    assert "annotation destructiveHint=true" in hinted.reasons


def test_read_only_hint_classifies_an_unknown_tool_as_read() -> None:
    assert classify("widget", None, None, {"readOnlyHint": True}).risk_class is RiskClass.READ
    assert classify("widget", None, None, None).risk_class is RiskClass.OTHER


def test_annotations_that_agree_with_the_name_are_not_a_conflict() -> None:
    risk = classify("git_status", "Shows the working tree status", None, {"readOnlyHint": True})

    assert risk.risk_class is RiskClass.READ
    assert not risk.conflict
    assert risk.level is RiskLevel.LOW


def test_amount_and_currency_fields_make_a_change_financial() -> None:
    risk = classify("create_transfer", None, schema("amount", "currency", "destination"), None)
    issue = classify("transfer_issue", "Transfer an issue to another repository", schema("repo"), None)

    assert risk.risk_class is RiskClass.FINANCIAL
    assert risk.level is RiskLevel.CRITICAL
    assert 'input has "amount" and "currency"' in risk.reasons
    assert issue.risk_class is RiskClass.WRITE


def test_reading_money_is_read_not_financial() -> None:
    assert classify("list_invoices", "List invoices", None, None).risk_class is RiskClass.READ


def test_a_command_field_makes_a_wordless_tool_execute() -> None:
    risk = classify("widget", None, schema("command", "cwd"), None)

    assert risk.risk_class is RiskClass.EXECUTE
    assert risk.reasons == ('input has "command"',)


def test_describe_gives_class_level_and_reasons_on_one_line() -> None:
    line = describe(classify("delete_file", "Delete a file", None, None))

    assert line == 'destructive (high): name contains "delete"'


def test_odd_inputs_are_classified_without_errors() -> None:
    odd_schema: Any = {"properties": ["not", "a", "mapping"]}
    odd_annotations: Any = {"readOnlyHint": "yes", "destructiveHint": None}

    assert classify("", None, None, None).risk_class is RiskClass.OTHER
    assert classify("get_x", "", odd_schema, odd_annotations).risk_class is RiskClass.READ
    assert classify("get_x", "", "schema", "annotations").risk_class is RiskClass.READ  # type: ignore[arg-type]


def test_classification_is_the_same_in_every_process() -> None:
    script = f"""
import json
from approver.policy.risk import classify, describe
out = []
for line in open({str(LABELLED)!r}, encoding="utf-8"):
    t = json.loads(line)
    r = classify(t["name"], t["description"], t.get("input_schema"), t.get("annotations"))
    out.append(describe(r) + str(r.conflict))
print(json.dumps(out))
"""
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)

    assert len(outputs) == 1


def test_classifying_a_thousand_tools_takes_well_under_a_second() -> None:
    description = "Create a new file or completely overwrite an existing file with new content. " * 5
    started = time.perf_counter()
    for index in range(1000):
        classify(
            f"srv__write_file_{index}", description, schema("path", "content"), {"destructiveHint": True}
        )

    assert time.perf_counter() - started < 1.0


def test_the_risk_module_does_not_import_qt() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, approver.policy.risk; print('PySide6' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )

    assert done.stdout.strip() == "False"


def test_at_least_95_percent_of_the_labelled_tools_get_the_right_class() -> None:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    wrong = [
        f"{row['name']}: expected {row['class']}, got {describe(risk)}"
        for row in rows
        if (
            risk := classify(row["name"], row["description"], row.get("input_schema"), row.get("annotations"))
        ).risk_class.value
        != row["class"]
    ]

    assert len(rows) >= 170
    assert 1 - len(wrong) / len(rows) >= 0.95, "\n".join(wrong)
