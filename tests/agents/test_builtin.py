"""The agent's built-in tools: a description and a valid input schema each."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from approver.agents.builtin import BUILTIN_TOOLS, builtin_tool
from approver.approval.editing import schema_problem


def test_every_builtin_schema_is_valid_json_schema() -> None:
    for name, tool in BUILTIN_TOOLS.items():
        Draft202012Validator.check_schema(dict(tool.input_schema))
        assert tool.description, name


def test_a_builtin_schema_catches_a_missing_or_mistyped_input_but_allows_new_keys() -> None:
    schema = builtin_tool("Bash").input_schema
    assert schema_problem({"command": "ls", "dangerouslyDisableSandbox": False}, schema) == ""
    assert "'command' is a required property" in schema_problem({"description": "x"}, schema)
    assert "is not of type 'string'" in schema_problem({"command": 5}, schema)


def test_tools_approver_does_not_know_get_a_description_that_says_so() -> None:
    assert "directly, not through approver" in builtin_tool("mcp__github__create_issue").description
    assert "no description" in builtin_tool("FutureTool").description
    assert builtin_tool("FutureTool").input_schema == {"type": "object"}
