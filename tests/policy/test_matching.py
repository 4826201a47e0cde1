"""Which patterns name a tool, a prompt, a resource or a server, and which wins."""

from __future__ import annotations

import pytest

from approver.policy.matching import is_glob, literal_chars, name_rank, server_rank, uri_rank


def tool_rank(pattern: str, server: str, prefix: str, upstream: str) -> tuple[int, int] | None:
    exposed = f"{prefix}__{upstream}" if prefix else upstream
    return name_rank(pattern, server, prefix, upstream, exposed)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("gh__delete_repo", (3, 15)),
        ("github__delete_repo", (2, 19)),
        ("gh__*", (0, 4)),
        ("github__delete_*", (0, 15)),
        ("*__delete_repo", (0, 13)),
        ("*delete*", (0, 6)),
        ("delete_repo", None),
        ("delete_*", None),
        ("gitlab__*", None),
        ("g__*", None),
    ],
)
def test_a_tool_is_named_by_its_exposed_name_or_its_server_qualified_name(
    pattern: str, expected: tuple[int, int] | None
) -> None:
    assert tool_rank(pattern, "github", "gh", "delete_repo") == expected


@pytest.mark.parametrize(
    "pattern",
    ["trusted__send_email", "trusted__*", "trusted__send_*", "t*__send_email", "trusted__send_email*"],
)
def test_a_rule_for_one_server_never_matches_a_tool_another_server_named_after_it(pattern: str) -> None:
    assert tool_rank(pattern, "evil", "evil", "trusted__send_email") is None
    assert tool_rank(pattern, "evil", "", "trusted__send_email") is None
    assert tool_rank(pattern, "trusted", "trusted", "send_email") is not None


def test_a_server_whose_name_holds_a_separator_is_still_named_by_it() -> None:
    assert tool_rank("my__srv__x", "my__srv", "", "x") == (2, 10)
    assert tool_rank("my__srv__*", "my__srv", "", "x") == (0, 9)
    assert tool_rank("my__*", "my__srv", "", "x") is None  # names the server "my"
    assert tool_rank("my__srv__x", "my", "", "srv__x") == (2, 10)  # both servers are the user's


def test_a_pattern_without_separator_matches_the_whole_exposed_name_only() -> None:
    assert tool_rank("read_file", "fs", "", "read_file") == (3, 9)
    assert tool_rank("read_file", "fs", "fs", "read_file") is None
    assert tool_rank("*", "fs", "fs", "read_file") == (0, 0)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("fs__file:///home/me/notes.txt", (2, 29)),
        ("file:///home/me/notes.txt", (1, 25)),
        ("fs__file:///home/*", (0, 17)),
        ("file:///home/me/*", (0, 16)),
        ("*__file:///*", (0, 10)),
        ("*", (0, 0)),
        ("docs__*", None),
        ("file:///etc/*", None),
        ("file:///home/me/a__b", None),
    ],
)
def test_a_resource_pattern_names_a_uri_optionally_on_one_server(
    pattern: str, expected: tuple[int, int] | None
) -> None:
    assert uri_rank(pattern, "fs", "file:///home/me/notes.txt") == expected


def test_a_separator_after_the_scheme_is_part_of_the_uri() -> None:
    assert uri_rank("file:///a__b", "fs", "file:///a__b") == (1, 12)
    assert uri_rank("fs__file:///a__b", "fs", "file:///a__b") == (2, 16)


def test_a_completion_pattern_names_servers() -> None:
    assert server_rank("fs", "fs") == (1, 2)
    assert server_rank("f*", "fs") == (0, 1)
    assert server_rank("docs", "fs") is None


def test_wildcards_and_bracket_sets_are_not_literal_characters() -> None:
    assert literal_chars("a[bc]d*?") == 2
    assert is_glob("a[*]b") and not is_glob("a_b")
