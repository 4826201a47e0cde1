"""Exposed names: prefixed, sanitized, at most 64 characters, and collision-free."""

from __future__ import annotations

import hashlib
import re

import pytest

from approver.errors import ConfigError
from approver.policy.naming import NameTable, UriTable, default_prefix, exposed_name, template_pattern

VALID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _hash8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_a_prefixed_tool_is_exposed_as_prefix_double_underscore_tool() -> None:
    assert exposed_name("github", "create_issue") == "github__create_issue"


def test_an_empty_prefix_exposes_the_tool_name_unchanged() -> None:
    assert exposed_name("", "search") == "search"


def test_characters_outside_the_allowed_set_become_underscores_plus_a_hash() -> None:
    name = exposed_name("fs", "read.file")
    assert name == f"fs__read_file-{_hash8('fs__read.file')}"
    assert VALID.fullmatch(name)


def test_sanitized_names_do_not_collide_with_names_that_were_already_clean() -> None:
    assert exposed_name("s", "a.b") != exposed_name("s", "a_b")
    assert exposed_name("s", "a.b") != exposed_name("s", "a b")


def test_a_long_name_is_cut_to_exactly_64_characters_with_a_hash_of_the_original() -> None:
    tool = "x" * 100
    name = exposed_name("server", tool)
    assert len(name) == 64
    assert name == ("server__" + tool)[:55] + "-" + _hash8("server__" + tool)
    assert exposed_name("server", tool) == name


def test_long_names_that_share_their_first_64_characters_stay_distinct() -> None:
    assert exposed_name("p", "y" * 80 + "1") != exposed_name("p", "y" * 80 + "2")


def test_a_name_of_exactly_64_clean_characters_is_kept() -> None:
    tool = "t" * 64
    assert exposed_name("", tool) == tool


def test_every_exposed_name_is_valid_for_strict_model_apis() -> None:
    for prefix, tool in [("", ""), ("a", "ü" * 70), ("", "a/b:c"), ("p", "x" * 63), ("", "ok")]:
        assert VALID.fullmatch(exposed_name(prefix, tool)), (prefix, tool)


def test_the_default_prefix_is_the_server_name_with_dots_replaced() -> None:
    assert default_prefix("my.server") == "my_server"
    assert default_prefix("git-hub_2") == "git-hub_2"


def test_a_name_table_routes_exposed_names_both_ways() -> None:
    table = NameTable.build([("github", "gh", ["search", "create_issue"]), ("time", "", ["now"])])
    assert table.resolve("gh__search") == ("github", "search")
    assert table.resolve("now") == ("time", "now")
    assert table.resolve("search") is None
    assert table.exposed("github", "create_issue") == "gh__create_issue"
    assert table.names("github") == ["gh__search", "gh__create_issue"]
    assert len(table) == 3
    assert "now" in table


def test_two_servers_without_prefix_exposing_the_same_tool_is_an_error_naming_both() -> None:
    table = NameTable.build([("alpha", "", ["search"])])
    with pytest.raises(ConfigError) as info:
        table.add_server("beta", "", ["search"])
    message = str(info.value)
    assert "'alpha'" in message
    assert "'beta'" in message
    assert "'search'" in message
    assert info.value.pointer == "/mcpServers/beta/prefix"


def test_prefixes_that_collide_through_the_separator_are_an_error() -> None:
    table = NameTable.build([("one", "a", ["b__c"])])
    with pytest.raises(ConfigError) as info:
        table.add_server("two", "a__b", ["c"])
    assert "server 'one'" in str(info.value)
    assert "server 'two'" in str(info.value)
    assert "'a__b__c'" in str(info.value)


def test_a_failed_add_leaves_the_table_unchanged() -> None:
    table = NameTable.build([("alpha", "", ["search"]), ("beta", "b", ["old"])])
    with pytest.raises(ConfigError):
        table.add_server("beta", "", ["new", "search"])
    assert table.resolve("b__old") == ("beta", "old")
    assert table.resolve("new") is None


def test_adding_a_server_again_replaces_its_names() -> None:
    table = NameTable.build([("s", "s", ["one", "two"])])
    table.add_server("s", "s", ["two", "three"])
    assert table.names() == ["s__two", "s__three"]
    assert table.resolve("s__one") is None


def test_removing_a_server_frees_its_names_for_another() -> None:
    table = NameTable.build([("alpha", "", ["search"])])
    table.remove_server("alpha")
    table.add_server("beta", "", ["search"])
    assert table.resolve("search") == ("beta", "search")
    assert table.servers() == ["beta"]


def test_the_same_tool_listed_twice_by_one_server_is_not_a_collision() -> None:
    table = NameTable.build([("s", "", ["x", "x"])])
    assert table.names() == ["x"]


def test_prompt_tables_say_prompt_in_their_errors() -> None:
    table = NameTable.build([("a", "", ["summarize"])], kind="prompt")
    with pytest.raises(ConfigError, match="prompt 'summarize' of server 'b'"):
        table.add_server("b", "", ["summarize"])


def test_resources_keep_their_uri_and_route_to_the_server_that_listed_them() -> None:
    uris = UriTable()
    uris.add_server("files", ["file:///notes.txt"])
    uris.add_server("docs", ["docs://index"])
    assert uris.server_for("file:///notes.txt") == "files"
    assert uris.candidates("docs://index") == ["docs"]
    assert uris.server_for("file:///other.txt") is None


def test_the_same_resource_uri_from_two_servers_is_an_error_naming_both() -> None:
    uris = UriTable()
    uris.add_server("one", ["mem://x"])
    with pytest.raises(ConfigError, match="'one' and 'two'"):
        uris.add_server("two", ["mem://x"])
    assert uris.server_for("mem://x") == "one"


def test_unlisted_uris_go_to_servers_whose_templates_match_in_order() -> None:
    uris = UriTable()
    uris.add_server("gh", [], ["repo://{owner}/{name}"])
    uris.add_server("any", [], ["repo://{+path}"])
    uris.add_server("other", [], ["file:///{path}"])
    assert uris.candidates("repo://me/project") == ["gh", "any"]
    assert uris.candidates("repo://me/project/sub") == ["any"]
    assert uris.candidates("https://example.com") == []


def test_removing_a_server_removes_its_uris_and_templates() -> None:
    uris = UriTable()
    uris.add_server("s", ["a://1"], ["a://{x}"])
    uris.remove_server("s")
    assert uris.candidates("a://1") == []
    assert uris.uris("s") == []
    assert uris.templates("s") == []


def test_template_patterns_cover_query_and_path_operators() -> None:
    assert template_pattern("search://items{?q,limit}").fullmatch("search://items?q=a&limit=2")
    assert template_pattern("search://items{?q,limit}").fullmatch("search://items")
    assert template_pattern("fs://root{/path*}").fullmatch("fs://root/a/b")
    assert not template_pattern("x://{id}").fullmatch("x://a/b")
