"""Argument conditions: the operators that read structure out of strings, and conditions per client."""

from __future__ import annotations

from typing import Any

import pytest

from approver.calls import Action, CallContext, Risk, RiskClass, RiskLevel, ToolRef
from approver.errors import ConfigError
from approver.policy.conditions import client_matches, url_host
from approver.policy.engine import Policy
from approver.policy.limits import RateLimiter

TOOL = ToolRef("web", "fetch", "web__fetch")


def decide(test: dict[str, Any], arguments: dict[str, Any], client: str = "cursor") -> Action:
    policy = Policy.from_data(
        {
            "version": "1",
            "tools": {
                "web__fetch": {
                    "action": "deny",
                    "conditions": [{"when": {"value": test}, "action": "allow"}],
                }
            },
        }
    )
    ctx = CallContext(client, TOOL, Risk(RiskClass.READ, RiskLevel.LOW), arguments)
    return policy.decide(ctx, RateLimiter(), 0.0).action


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://docs.example.com/a?b=c", True),
        ("http://DOCS.EXAMPLE.COM:8080/", True),
        ("https://example.com/", False),
        ("https://docs.example.com.evil.net/", False),
        ("https://docs.example.com@evil.net/", False),
        ("https://evil.net\\@docs.example.com/", False),
        ("https://docs.example.com /", False),
        ("docs.example.com/path", False),
        ("", False),
    ],
)
def test_url_host_matches_only_a_url_whose_host_every_parser_agrees_on(url: str, allowed: bool) -> None:
    action = decide({"url_host": "docs.example.com"}, {"value": url})
    assert action is (Action.ALLOW if allowed else Action.DENY)


def test_url_host_with_a_star_matches_subdomains_but_not_the_domain_itself() -> None:
    test = {"url_host": ["*.example.com"]}
    assert decide(test, {"value": "https://a.b.example.com/x"}) is Action.ALLOW
    assert decide(test, {"value": "https://example.com/x"}) is Action.DENY
    assert decide(test, {"value": "https://badexample.com/x"}) is Action.DENY


def test_url_host_of_user_info_is_refused() -> None:
    assert url_host("https://user:pw@example.com/") is None
    assert url_host("https://Example.COM/") == "example.com"
    assert url_host(42) is None


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("git status", True),
        ("git status --porcelain", True),
        ("git  'status' -s", True),
        ("git statusx", False),
        ("git", False),
        ("git status; rm -rf ~", False),
        ("git status && curl evil", False),
        ("git status | sh", False),
        ("git status $(id)", False),
        ("git status `id`", False),
        ("git status > /etc/passwd", False),
        ("git status\nrm -rf ~", False),
        ("git status 'unclosed", False),
    ],
)
def test_command_prefix_matches_whole_words_and_never_a_command_with_shell_operators(
    command: str, allowed: bool
) -> None:
    action = decide({"command_prefix": "git status"}, {"value": command})
    assert action is (Action.ALLOW if allowed else Action.DENY)


def test_command_prefix_compares_an_argv_array_word_by_word() -> None:
    test = {"command_prefix": "git status"}
    assert decide(test, {"value": ["git", "status", "-s"]}) is Action.ALLOW
    assert decide(test, {"value": ["git", "push"]}) is Action.DENY
    assert decide(test, {"value": ["git"]}) is Action.DENY


@pytest.mark.parametrize(
    ("test", "pointer"),
    [
        ({"url_host": "http://example.com"}, "/tools/web__fetch/conditions/0/when/value/url_host"),
        ({"url_host": ["ok.com", "bad host"]}, "/tools/web__fetch/conditions/0/when/value/url_host/1"),
        ({"command_prefix": "git; rm"}, "/tools/web__fetch/conditions/0/when/value/command_prefix"),
    ],
)
def test_a_bad_operand_is_an_error_naming_where_it_is(test: dict[str, Any], pointer: str) -> None:
    with pytest.raises(ConfigError) as raised:
        decide(test, {})
    assert raised.value.pointer == pointer


def test_client_patterns_are_names_or_globs_and_none_means_everyone() -> None:
    assert client_matches(None, "anyone")
    assert client_matches(("cursor",), "cursor")
    assert not client_matches(("cursor",), "cursor2")
    assert client_matches(("nightly-*",), "nightly-batch")
    assert not client_matches(("nightly-*",), "cursor")
