"""Properties of the Qt-free functions that take untrusted input, checked on generated input."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approver.approval.editing import encode_arguments
from approver.audit.log import canonical_json
from approver.audit.redact import Redactor
from approver.calls import Action, CallContext, Risk, RiskClass, RiskLevel, ToolRef
from approver.errors import ConfigError
from approver.policy.confusables import find_lookalikes, is_suspicious, skeleton, unusual_characters
from approver.policy.engine import Policy
from approver.policy.limits import RateLimiter
from approver.policy.naming import exposed_name
from approver.visible import reveal

BOUNDED = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
"""Bounded runs that write no example database into the repository."""

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
wild_values = st.recursive(
    scalars | st.floats(),  # NaN and Infinity too: the SDK's parser lets them in
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
OPERATORS = ("equals", "not_equals", "in", "not_in", "starts_with", "ends_with", "contains", "matches",
             "glob", "gt", "gte", "lt", "lte", "exists", "max_length", "path_under")  # fmt: skip
tests = st.dictionaries(st.sampled_from(OPERATORS), json_values, min_size=1, max_size=3)
conditions = st.lists(
    st.fixed_dictionaries(
        {
            "when": st.dictionaries(
                st.sampled_from(["path", "/a/b", "n", "text"]), tests, min_size=1, max_size=2
            )
        },
        optional={"action": st.sampled_from(["allow", "deny", "require_approval", "maybe"])},
    ),
    max_size=3,
)
entries = st.fixed_dictionaries(
    {}, optional={"action": st.sampled_from(["allow", "deny", "require_approval"]), "conditions": conditions}
)
policies = st.fixed_dictionaries(
    {"version": st.sampled_from(["1", "2", 1])},
    optional={
        "default": st.sampled_from(["allow", "deny", "require_approval", "sometimes"]),
        "tools": st.dictionaries(st.sampled_from(["test__*", "test__write", "*", "x"]), entries, max_size=3),
        "risk_defaults": st.dictionaries(
            st.sampled_from(["read", "write", "nope"]), st.just("allow"), max_size=2
        ),
    },
)
TOOL = ToolRef("test", "write", "test__write")
HIDDEN = {"Cf", "Cc", "Co", "Cn", "Cs", "Zl", "Zp"}


# -- policy ---------------------------------------------------------------------------------------


@BOUNDED
@given(st.one_of(json_values, policies))
def test_any_json_as_a_policy_either_loads_or_raises_a_config_error(data: Any) -> None:
    try:
        policy = Policy.from_data(data, "policy.json")
    except ConfigError as error:
        assert str(error).startswith("policy.json")
    else:
        assert policy.source == "policy.json"


@BOUNDED
@given(policies, st.dictionaries(st.sampled_from(["path", "a", "n", "text"]), wild_values, max_size=4))
def test_deciding_never_raises_whatever_the_arguments(data: Any, arguments: dict[str, Any]) -> None:
    try:
        policy = Policy.from_data(data)
    except ConfigError:
        policy = Policy.from_data({"version": "1", "default": "allow"})
    context = CallContext("client", TOOL, Risk(RiskClass.WRITE, RiskLevel.MEDIUM), arguments)

    decision = policy.decide(context, RateLimiter(), 0.0)

    assert isinstance(decision.action, Action) and decision.rule


# -- canonical JSON -------------------------------------------------------------------------------


@BOUNDED
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8))
def test_canonical_json_does_not_depend_on_key_order(value: dict[str, Any]) -> None:
    reordered = dict(reversed(list(value.items())))

    assert canonical_json(reordered) == canonical_json(value)
    assert json.loads(canonical_json(value)) == value


@BOUNDED
@given(json_values)
def test_the_gateways_argument_encoding_is_canonical_json_for_every_real_json_value(value: Any) -> None:
    assert encode_arguments(value) == canonical_json(value)


@BOUNDED
@given(json_values, st.sampled_from([math.nan, math.inf, -math.inf]), st.booleans())
def test_the_gateways_argument_encoding_refuses_nan_and_infinity(
    value: Any, bad: float, in_list: bool
) -> None:
    arguments = {"ok": value, "bad": [value, bad] if in_list else {"deep": bad}}
    try:
        encode_arguments(arguments)
    except ValueError:
        return
    raise AssertionError(f"{arguments!r} was encoded")


# -- redaction ------------------------------------------------------------------------------------

secrets = st.text(alphabet="ABCDEFGHJKLMNPQUVWXYZ0123456789", min_size=8, max_size=24)


@BOUNDED
@given(st.lists(secrets, min_size=1, max_size=3), st.text(max_size=40), st.text(max_size=40))
def test_redaction_never_leaks_a_known_secret_and_is_idempotent(
    known: list[str], before: str, after: str
) -> None:
    redactor = Redactor(known)
    text = before + known[0] + after

    once = redactor.redact_text(text)

    assert all(secret not in once for secret in known)
    assert redactor.redact_text(once) == once


@BOUNDED
@given(st.lists(secrets, min_size=1, max_size=2), wild_values)
def test_redacting_json_never_leaks_a_known_secret_in_a_value(known: list[str], value: Any) -> None:
    redactor = Redactor(known)
    document = {"payload": value, "note": f"token {known[0]} here", "list": [known[-1]]}

    redacted = json.dumps(redactor.redact_json(document))

    assert all(secret not in redacted for secret in known)


# -- hidden characters ----------------------------------------------------------------------------


@BOUNDED
@given(
    st.text(max_size=60) | st.text(alphabet=st.characters(categories=["Cf", "Cc", "Zs", "Co"]), max_size=20)
)
def test_revealing_leaves_no_bidi_zero_width_or_control_character_hidden(text: str) -> None:
    revealed = reveal(text)

    assert not [char for char in revealed.text if unicodedata.category(char) in HIDDEN]
    assert revealed.suspicious == (revealed.text != text)
    assert all(math.isfinite(len(kind)) for kind in revealed.findings)


# -- names ----------------------------------------------------------------------------------------


@BOUNDED
@given(st.text(max_size=30), st.text(max_size=200))
def test_exposed_names_are_always_valid_wire_names(prefix: str, tool: str) -> None:
    name = exposed_name(prefix, tool)

    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name)


@BOUNDED
@given(st.text(max_size=10), st.text(max_size=40), st.text(max_size=40))
def test_two_different_tools_never_get_the_same_exposed_name(prefix: str, first: str, second: str) -> None:
    if first != second:
        assert exposed_name(prefix, first) != exposed_name(prefix, second)


@BOUNDED
@given(st.dictionaries(st.text(max_size=8), st.lists(st.text(max_size=30), max_size=5), max_size=4))
def test_look_alike_checks_never_raise_on_any_name(names: dict[str, list[str]]) -> None:
    for name in [name for group in names.values() for name in group]:
        assert isinstance(skeleton(name), str)
        assert isinstance(is_suspicious(name), bool)
        assert all(item for item in unusual_characters(name))
    assert isinstance(find_lookalikes(names), list)
