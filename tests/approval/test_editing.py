"""A person's edit of a call: fields back to JSON, and the checks before anything is approved."""

from __future__ import annotations

import pytest

from approver.approval.editing import (
    EditError,
    check_approved,
    checked_edit,
    encode_arguments,
    field_text,
    field_value,
    parse_raw,
    schema_problem,
)

SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "count": {"type": "integer"}, "force": {"type": "boolean"}},
    "required": ["path"],
}


def test_a_string_is_edited_as_itself_and_anything_else_as_json() -> None:
    assert field_text('a "quoted" path') == 'a "quoted" path'
    assert field_text(3) == "3" and field_text(True) == "true" and field_text(None) == "null"
    assert field_text({"é": [1]}) == '{"é": [1]}'
    assert field_value("path", "42", "old") == "42", "a string stays a string, whatever is typed"
    assert field_value("count", "7", 3) == 7
    assert field_value("force", "false", True) is False


def test_a_field_that_is_not_json_names_the_field_and_what_was_expected() -> None:
    with pytest.raises(EditError, match="count: a number is expected as JSON"):
        field_value("count", "seven", 3)
    with pytest.raises(EditError, match="not a JSON value"):
        field_value("count", "NaN", 3)


def test_raw_json_must_be_one_object() -> None:
    assert parse_raw('{"path": "/a"}') == {"path": "/a"}
    with pytest.raises(EditError, match="one object"):
        parse_raw("[1]")
    with pytest.raises(EditError, match="not valid JSON"):
        parse_raw("{")


def test_an_edit_is_checked_against_the_tools_schema_before_it_is_encoded() -> None:
    assert checked_edit({"path": "/b", "count": 2}, SCHEMA) == b'{"count":2,"path":"/b"}'
    with pytest.raises(EditError, match="count: 'two' is not of type 'integer'"):
        checked_edit({"path": "/b", "count": "two"}, SCHEMA)
    with pytest.raises(EditError, match="'path' is a required property"):
        checked_edit({"count": 2}, SCHEMA)


def test_a_schema_that_is_not_json_schema_cannot_vouch_for_an_edit() -> None:
    assert "not valid JSON Schema" in schema_problem({"a": 1}, {"type": "no-such-type"})
    assert schema_problem({"a": 1}, {}) == ""


def test_the_gateway_forwards_only_canonical_objects_that_fit_the_schema() -> None:
    good = encode_arguments({"path": "/b"})
    assert check_approved(good, SCHEMA) == ""
    assert check_approved(b'{"path": "/b"}', SCHEMA) == "the edited arguments are not in canonical form"
    assert check_approved(b"[]", SCHEMA) == "the edited arguments are not a JSON object"
    assert check_approved(b"nope", SCHEMA) == "the edited arguments are not JSON"
    assert "do not fit" in check_approved(encode_arguments({"path": 1}), SCHEMA)
