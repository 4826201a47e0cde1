"""The shipped JSON Schemas: they accept approver's real files, reject typos, and are referenced by
``$schema`` (a resolvable ``file://`` URI) in every policy.json and servers.json approver writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from approver.calls import ToolRef
from approver.config.schema import load_schema, schema_uri, validate, with_schema
from approver.config.servers import save_servers
from approver.demo.sandbox import prepare_demo
from approver.errors import ConfigError
from approver.policy.editing import add_allow_rule
from approver.policy.engine import DEFAULT_POLICY_DATA

README = Path(__file__).parent.parent.parent / "README.md"


def schema_errors(data: Any, name: str) -> list[str]:
    """Every error a stock JSON Schema validator (as an editor runs it) finds, as pointers."""
    validator = Draft202012Validator(load_schema(name))
    return ["/" + "/".join(map(str, e.absolute_path)) for e in validator.iter_errors(data)]


def resolve(uri: str) -> dict[str, Any]:
    """What an editor gets when it follows a ``$schema`` URI."""
    assert urlparse(uri).scheme == "file"
    schema: dict[str, Any] = json.loads(Path(unquote(urlparse(uri).path)).read_text("utf-8"))
    return schema


@pytest.mark.parametrize("name", ["policy", "servers"])
def test_each_shipped_schema_is_a_valid_draft_2020_12_schema_reachable_by_its_file_uri(name: str) -> None:
    Draft202012Validator.check_schema(load_schema(name))
    assert resolve(schema_uri(name)) == load_schema(name)


def test_the_default_policy_as_approver_writes_it_validates() -> None:
    assert schema_errors({"$schema": schema_uri("policy"), **DEFAULT_POLICY_DATA}, "policy") == []


def test_the_readme_examples_validate() -> None:
    blocks = re.findall(r"```json\n(.*?)```", README.read_text("utf-8"), re.DOTALL)
    documents = [json.loads(block) for block in blocks if block.lstrip().startswith("{")]
    servers = [d for d in documents if "mcpServers" in d and set(d) <= {"mcpServers", "$schema"}]
    policies = [d for d in documents if d.get("version") == "1"]
    assert servers and len(policies) >= 2
    claude_desktop = {"mcpServers": {"approver": {"command": "approver", "args": ["connect"]}}}
    for document in [*servers, claude_desktop]:
        assert schema_errors(document, "servers") == []
    for document in policies:
        assert schema_errors(document, "policy") == []


@pytest.mark.parametrize(
    ("document", "pointer"),
    [
        ({"version": "1", "defualt": "deny"}, "/"),
        ({"version": "1", "risk_defaults": {"destrutive": "allow"}}, "/risk_defaults"),
        ({"version": "1", "tools": {"x": {"acton": "allow"}}}, "/tools/x"),
        ({"version": "1", "tools": {"x": {"action": "alow"}}}, "/tools/x/action"),
        ({"version": "1", "tools": {"x": {"limits": [{"max": 1, "windw": "hour"}]}}}, "/tools/x/limits/0"),
        ({"version": "1", "tools": {"x": {"conditions": [{"when": {"a": {"eqals": 1}}}]}}}, None),
    ],
)
def test_the_policy_schema_rejects_typos(document: dict[str, Any], pointer: str | None) -> None:
    errors = schema_errors(document, "policy")
    assert errors
    if pointer is not None:
        assert pointer in errors
    with pytest.raises(ConfigError):
        validate(document, "policy", "policy.json")


@pytest.mark.parametrize(
    "entry",
    [
        {"command": "x", "arg": ["--verbose"]},
        {"command": "x", "enviroment": {}},
        {"type": "http", "url": "https://h/mcp", "header": {}},
        {"type": "http", "url": "ftp://h/mcp"},
        {"type": "stdio"},
        {"command": "x", "disabled": "yes"},
    ],
)
def test_the_servers_schema_rejects_typos(entry: dict[str, Any]) -> None:
    assert schema_errors({"mcpServers": {"s": entry}}, "servers")
    assert schema_errors({"mcpServers": {}, "mcpServer": {}}, "servers") == ["/"]


# -- $schema in the files approver writes -----------------------------------------------------------


def test_always_approve_on_a_new_policy_file_writes_the_installed_schema_uri(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    add_allow_rule(path, ToolRef(name="fs__write", server="fs", tool="write"))
    data = json.loads(path.read_text())
    assert next(iter(data)) == "$schema" and data["$schema"] == schema_uri("policy")
    assert schema_errors(data, "policy") == []


def test_always_approve_keeps_a_users_schema_and_adds_none_to_a_file_without_one(tmp_path: Path) -> None:
    mine, bare = tmp_path / "mine.json", tmp_path / "bare.json"
    mine.write_text(json.dumps({"$schema": "./policy.schema.json", "version": "1"}))
    bare.write_text(json.dumps({"version": "1"}))
    for path in (mine, bare):
        add_allow_rule(path, ToolRef(name="a__b", server="a", tool="b"))
    assert json.loads(mine.read_text())["$schema"] == "./policy.schema.json"
    assert "$schema" not in json.loads(bare.read_text())


def test_a_schema_uri_left_by_a_removed_install_is_repointed_when_approver_writes(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    stale = "file:///gone/site-packages/approver/schemas/policy.schema.json"
    path.write_text(json.dumps({"description": "d", "$schema": stale, "version": "1"}))
    add_allow_rule(path, ToolRef(name="a__b", server="a", tool="b"))
    data = json.loads(path.read_text())
    assert list(data)[:2] == ["description", "$schema"] and data["$schema"] == schema_uri("policy")


def test_saving_a_new_servers_file_adds_the_schema_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    new = tmp_path / "servers.json"
    save_servers(new, {"mcpServers": {"t": {"command": "x"}}})
    assert json.loads(new.read_text())["$schema"] == schema_uri("servers")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"mcpServers": {}}))
    save_servers(bare, {"mcpServers": {"t": {"command": "x"}}})
    assert "$schema" not in json.loads(bare.read_text())


def test_the_demo_writes_both_files_with_their_schema_and_both_validate(tmp_path: Path) -> None:
    setup = prepare_demo(tmp_path)
    for path, name in ((setup.paths.policy_file, "policy"), (setup.paths.servers_file, "servers")):
        data = json.loads(path.read_text())
        assert data["$schema"] == schema_uri(name)
        assert resolve(data["$schema"]) == load_schema(name)
        assert schema_errors(data, name) == []


def test_the_policy_window_writes_the_default_policy_with_its_schema() -> None:
    from approver.ui.policy_view import default_policy_text

    data = json.loads(default_policy_text())
    assert data["$schema"] == schema_uri("policy") and schema_errors(data, "policy") == []


def test_with_schema_only_adds_when_asked_and_never_touches_other_uris() -> None:
    assert with_schema({"version": "1"}, "policy", add=True) == {
        "$schema": schema_uri("policy"),
        "version": "1",
    }
    assert with_schema({"version": "1"}, "policy", add=False) == {"version": "1"}
    remote = {"$schema": "https://example.com/p.json", "version": "1"}
    assert with_schema(remote, "policy", add=True) == remote
    with pytest.raises(jsonschema.exceptions.ValidationError):
        jsonschema.validate({"version": "2"}, resolve(schema_uri("policy")))


@pytest.mark.parametrize(
    ("document", "name", "message"),
    [
        (
            {"version": "1", "tools": {"x": {"acton": "allow"}}},
            "policy",
            "unknown key `acton` — did you mean `action`?",
        ),
        (
            {"mcpServers": {"a": {"comand": "npx"}}},
            "servers",
            "unknown key `comand` — did you mean `command`?",
        ),
        (
            {"mcpServers": {"a": {"type": "http", "url": "http://x", "header": {}}}},
            "servers",
            "did you mean `headers`?",
        ),
        ({"otlp": {"endpont": "http://x"}}, "settings", "unknown key `endpont` — did you mean `endpoint`?"),
    ],
)
def test_a_typo_is_named_with_the_key_it_probably_meant(
    document: dict[str, Any], name: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        validate(document, name, "f.json")
    assert message in raised.value.message
    assert "Additional properties" not in str(raised.value)


def test_an_unknown_key_nothing_resembles_lists_the_allowed_keys() -> None:
    with pytest.raises(ConfigError) as raised:
        validate({"version": "1", "zzz": 1}, "policy", "f.json")
    message = raised.value.message
    assert message.startswith("unknown key `zzz`; the keys allowed here are `")
    assert "`default`, " in message and "`tools`" in message
