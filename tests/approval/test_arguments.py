"""Arguments in the tool's own order, key arguments first, long values as blocks, secrets flagged."""

from __future__ import annotations

import json
from typing import Any

from approver.approval.arguments import block_caption, drawn_lines, lay_out, line_count, role_of, short_size

WRITE_SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}}


def canonical(arguments: dict[str, Any]) -> bytes:
    """What the gateway hands the broker: sorted keys, compact."""
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_a_50_kb_write_puts_the_path_first_and_the_content_in_a_block() -> None:
    content = "line\n" * 10_000
    laid = lay_out(canonical({"content": content, "path": "/home/me/notes/todo.md"}), WRITE_SCHEMA)
    assert [item.name for item in laid.items] == ["path", "content"]
    assert [item.name for item in laid.form] == ["path"]
    (block,) = laid.blocks
    assert block.text == content  # the string itself: no JSON escaping of newlines or quotes
    assert (block.lines, block.size) == (10_001, 50_000)


def test_the_schema_order_wins_over_sorted_keys_then_undeclared_names_in_the_clients_order() -> None:
    schema = {"properties": {"zeta": {}, "alpha": {}, "mid": {}}}
    sent = {"extra_b": 1, "mid": 1, "alpha": 1, "extra_a": 1, "zeta": 1}
    laid = lay_out(canonical(sent), schema, tuple(sent))
    assert [item.name for item in laid.items] == ["zeta", "alpha", "mid", "extra_b", "extra_a"]
    assert [item.declared for item in laid.items] == [True, True, True, False, False]


def test_key_arguments_come_first_and_keep_their_order() -> None:
    schema = {"properties": {"note": {}, "amount": {}, "currency": {}, "to_iban": {}}}
    laid = lay_out(
        canonical({"note": "rent", "amount": 25000.0, "currency": "EUR", "to_iban": "DE89"}), schema
    )
    assert [item.name for item in laid.items] == ["amount", "currency", "to_iban", "note"]
    assert [item.role for item in laid.items] == ["amount", "currency", "recipient", None]


def test_an_undeclared_decoy_cannot_become_the_key_argument() -> None:
    schema = {"properties": {"file_path": {}, "content": {}}}
    laid = lay_out(canonical({"path": "harmless.txt", "file_path": "/etc/passwd", "content": "x"}), schema)
    assert laid.with_role("path") is not None and laid.with_role("path").name == "file_path"  # type: ignore[union-attr]
    decoy = next(item for item in laid.items if item.name == "path")
    assert decoy.role is None and not decoy.declared and not decoy.key


def test_roles_come_from_the_name_and_the_shape_of_the_value() -> None:
    assert role_of("command", "ls") == "command"
    assert role_of("python_code", "print(1)") == "command"
    assert role_of("country_code", "DE") is None
    assert role_of("query", "SELECT * FROM users") == "sql"
    assert role_of("query", "cats and dogs") == "query"
    assert role_of("amount", "12.50") == "amount"
    assert role_of("amount", "a lot") is None
    assert role_of("from_account", "DE1") is None
    assert role_of("to_account", "DE2") == "recipient"
    assert role_of("anything", "https://example.com/x") == "url"
    assert role_of("repo_path", "/src") == "repository"


def test_short_values_are_a_form_and_long_or_multi_line_ones_blocks() -> None:
    laid = lay_out(
        canonical({"a": "short", "b": "x" * 101, "c": "two\nlines", "d": [1, 2], "e": {"k": "v" * 200}})
    )
    assert [item.name for item in laid.form] == ["a", "d"]
    assert [item.name for item in laid.blocks] == ["b", "c", "e"]
    assert laid.form[1].text == "[1, 2]"
    assert laid.blocks[2].text.startswith('{\n  "k": ')


def test_secrets_the_redactor_knows_are_flagged_but_shown() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----"
    laid = lay_out(canonical({"content": key, "api_key": "abcd1234", "path": "id_rsa"}))
    flags = {item.name: item.secrets for item in laid.items}
    assert flags["content"] == ("looks like a private key",)
    assert flags["api_key"] == ("its name says it holds a api key",)
    assert flags["path"] == ()
    assert key in [item.text for item in laid.items]


def test_arguments_that_are_not_a_json_object_are_one_raw_block() -> None:
    laid = lay_out(b"[1, 2]")
    assert laid.problem and [item.name for item in laid.items] == ["arguments"]
    assert lay_out(b"{not json").problem.startswith("the arguments are not valid JSON")


def test_lines_are_counted_as_drawn_and_wrapping_is_counted_too() -> None:
    assert line_count("a\nb\nc") == 3
    assert line_count("a\u2028b") == 1  # revealed as a marker, so it draws no break
    assert drawn_lines("x" * 250 + "\nshort", 100) == 4
    assert drawn_lines("文字" * 50, 100) == 2  # wide characters take two columns
    assert block_caption(1204, 51_200) == "1,204 lines / 50 KB"
    assert block_caption(4, 900, drawn=300) == "4 lines / 900 bytes, drawn as 300 lines at this width"
    assert short_size(1) == "1 byte" and short_size(5 * 1024 * 1024) == "5.0 MB"
