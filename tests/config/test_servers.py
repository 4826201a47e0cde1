"""servers.json: the mcpServers format, references to secrets, and safe saving."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import keyring.errors
import pytest
from keyring.backend import KeyringBackend

from approver.config.servers import (
    SecretResolver,
    ServerConfig,
    load_servers,
    read_servers_data,
    save_servers,
    server_to_data,
    servers_to_data,
)
from approver.errors import ConfigError
from approver.testing.harness import LockedKeyring, MemoryKeyring


def _no_keyring() -> KeyringBackend:
    """The backend keyring picks when no real one is available."""
    return keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]


@pytest.fixture
def use_keyring() -> Iterator[Any]:
    """Install a keyring backend for the test and restore the previous one afterwards."""
    previous = keyring.get_keyring()

    def install(backend: KeyringBackend) -> KeyringBackend:
        keyring.set_keyring(backend)
        return backend

    yield install
    keyring.set_keyring(previous)


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _resolver(secrets: dict[str, str] | None = None, environ: dict[str, str] | None = None) -> SecretResolver:
    store = dict(secrets or {})

    def get(service: str, name: str) -> str | None:
        assert service == "approver"
        return store.get(name)

    return SecretResolver(keyring_get=get, environ=environ or {})


def _error(path: Path, resolver: SecretResolver | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_servers(path, resolver or _resolver())
    return info.value


def test_a_missing_file_means_no_servers_and_no_error(tmp_path: Path) -> None:
    config = load_servers(tmp_path / "servers.json", _resolver())
    assert config.missing
    assert config.servers == ()


def test_a_stdio_server_is_loaded_with_all_its_fields(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "$schema": "./servers.schema.json",
            "mcpServers": {
                "git": {
                    "type": "stdio",
                    "command": "uvx",
                    "args": ["mcp-server-git", "--repository", "."],
                    "env": {"GIT_PAGER": "cat"},
                    "cwd": "/tmp",
                    "prefix": "",
                    "description": "local git",
                }
            },
        },
    )
    config = load_servers(path, _resolver())
    assert not config.missing
    (server,) = config.servers
    assert server == ServerConfig(
        name="git",
        transport="stdio",
        command="uvx",
        args=("mcp-server-git", "--repository", "."),
        env={"GIT_PAGER": "cat"},
        cwd="/tmp",
        prefix="",
        description="local git",
    )
    assert server.exposed_prefix == ""
    with pytest.raises(TypeError):
        server.env["GIT_PAGER"] = "less"  # type: ignore[index]


@pytest.mark.parametrize("kind", ["http", "streamable-http", "streamableHttp"])
def test_http_server_types_are_all_streamable_http(tmp_path: Path, kind: str) -> None:
    path = _write(tmp_path, {"mcpServers": {"remote": {"type": kind, "url": "https://mcp.example.com/mcp"}}})
    (server,) = load_servers(path, _resolver()).servers
    assert server.transport == "http"
    assert server.url == "https://mcp.example.com/mcp"
    assert server.command is None


def test_a_server_without_prefix_uses_its_sanitized_name(tmp_path: Path) -> None:
    path = _write(tmp_path, {"mcpServers": {"my.files": {"command": "x"}}})
    (server,) = load_servers(path, _resolver()).servers
    assert server.prefix is None
    assert server.exposed_prefix == "my_files"


def test_new_tools_are_quarantined_unless_a_server_says_otherwise_and_the_choice_is_saved(
    tmp_path: Path,
) -> None:
    data = {
        "mcpServers": {
            "a": {"command": "x"},
            "b": {"type": "http", "url": "http://h/mcp", "quarantine_new_tools": False},
        }
    }
    a, b = load_servers(_write(tmp_path, data), _resolver()).servers
    assert a.quarantine_new_tools and not b.quarantine_new_tools
    assert "quarantine_new_tools" not in server_to_data(a)
    assert server_to_data(b)["quarantine_new_tools"] is False
    error = _error(_write(tmp_path, {"mcpServers": {"a": {"command": "x", "quarantine_new_tools": "no"}}}))
    assert error.pointer == "/mcpServers/a/quarantine_new_tools"


def test_sse_servers_are_rejected_with_a_pointer_to_the_type(tmp_path: Path) -> None:
    path = _write(tmp_path, {"mcpServers": {"old": {"type": "sse", "url": "http://localhost:1/sse"}}})
    error = _error(path)
    assert error.pointer == "/mcpServers/old/type"
    assert error.message == "SSE transport is not supported; use the server's Streamable HTTP endpoint"


def test_an_unknown_type_lists_the_allowed_ones(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, {"mcpServers": {"a": {"type": "websocket", "url": "ws://x"}}}))
    assert error.pointer == "/mcpServers/a/type"
    assert "stdio, http, streamable-http, streamableHttp" in error.message


def test_a_typo_in_a_key_is_an_error(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, {"mcpServers": {"a": {"command": "x", "arg": ["y"]}}}))
    assert error.pointer == "/mcpServers/a"
    assert error.message == "unknown key `arg` — did you mean `args`?"


def test_an_http_server_without_url_is_an_error(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, {"mcpServers": {"a": {"type": "http"}}}))
    assert "'url' is required" in str(error)


def test_a_server_name_with_spaces_is_an_error(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, {"mcpServers": {"my server": {"command": "x"}}}))
    assert error.pointer == "/mcpServers/my server"
    assert "server name" in error.message


def test_a_prefix_with_a_dot_is_an_error(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, {"mcpServers": {"a": {"command": "x", "prefix": "a.b"}}}))
    assert error.pointer == "/mcpServers/a/prefix"


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    path.write_text('{"mcpServers": {\n  "a": }\n}')
    assert "line 2" in str(_error(path))


def test_keyring_and_env_references_are_resolved_and_keyring_values_collected(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "mcpServers": {
                "github": {
                    "type": "http",
                    "url": "https://api.example.com/mcp?team=${env:TEAM}",
                    "headers": {"Authorization": "Bearer ${keyring:github}", "X-User": "${env:USER}"},
                }
            }
        },
    )
    resolver = _resolver({"github": "ghp_secret"}, {"TEAM": "core", "USER": "ana"})
    config = load_servers(path, resolver)
    (server,) = config.servers
    assert server.url == "https://api.example.com/mcp?team=core"
    assert dict(server.headers) == {"Authorization": "Bearer ghp_secret", "X-User": "ana"}
    assert config.secrets == frozenset({"ghp_secret"})


def test_several_references_and_an_escaped_dollar_brace_in_one_string(tmp_path: Path) -> None:
    path = _write(
        tmp_path, {"mcpServers": {"a": {"command": "x", "args": ["${env:A}-${keyring:b}/$${env:A}"]}}}
    )
    (server,) = load_servers(path, _resolver({"b": "B"}, {"A": "1"})).servers
    assert server.args == ("1-B/${env:A}",)


def test_references_are_resolved_from_a_real_keyring_backend(tmp_path: Path, use_keyring: Any) -> None:
    backend = use_keyring(MemoryKeyring())
    backend.set_password("approver", "db", "s3cret")
    path = _write(
        tmp_path, {"mcpServers": {"db": {"command": "db-mcp", "env": {"PASSWORD": "${keyring:db}"}}}}
    )
    config = load_servers(path, SecretResolver(environ={}))
    assert config.servers[0].env["PASSWORD"] == "s3cret"
    assert config.secrets == frozenset({"s3cret"})


def test_a_missing_keyring_secret_says_how_to_set_it(tmp_path: Path) -> None:
    path = _write(tmp_path, {"mcpServers": {"gh": {"command": "x", "env": {"TOKEN": "${keyring:github}"}}}})
    error = _error(path)
    assert error.pointer == "/mcpServers/gh/env/TOKEN"
    assert error.message == "keyring secret 'github' not found; set it with: approver secret set github"


def test_a_missing_environment_variable_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path, {"mcpServers": {"gh": {"command": "x", "args": ["--token", "${env:GITHUB_TOKEN}"]}}}
    )
    error = _error(path)
    assert error.pointer == "/mcpServers/gh/args/1"
    assert error.message == "environment variable GITHUB_TOKEN is not set"


def test_no_keyring_backend_is_a_config_error_saying_what_to_do(tmp_path: Path, use_keyring: Any) -> None:
    use_keyring(_no_keyring())
    path = _write(tmp_path, {"mcpServers": {"gh": {"command": "x", "env": {"T": "${keyring:github}"}}}})
    error = _error(path, SecretResolver(environ={}))
    assert error.message.startswith("no keyring backend is available")
    assert "${env:NAME}" in error.message


def test_a_locked_keyring_is_a_config_error(tmp_path: Path, use_keyring: Any) -> None:
    use_keyring(LockedKeyring())
    path = _write(tmp_path, {"mcpServers": {"gh": {"command": "x", "env": {"T": "${keyring:github}"}}}})
    assert "locked" in _error(path, SecretResolver(environ={})).message


def test_a_bare_variable_reference_is_an_error_suggesting_env(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, {"mcpServers": {"a": {"command": "x", "args": ["${HOME}"]}}}))
    assert "${HOME}" in error.message
    assert "${env:NAME}" in error.message


def test_an_unclosed_reference_is_an_error(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, {"mcpServers": {"a": {"command": "x", "cwd": "${env:HOME"}}}))
    assert error.pointer == "/mcpServers/a/cwd"
    assert "unclosed" in error.message


def test_errors_never_contain_a_resolved_secret(tmp_path: Path) -> None:
    path = _write(tmp_path, {"mcpServers": {"a": {"command": "x", "args": ["${keyring:one}${keyring:two}"]}}})
    error = _error(path, _resolver({"one": "FIRST-SECRET"}))
    assert "FIRST-SECRET" not in str(error)
    assert "'two'" in str(error)


def test_repr_hides_env_and_header_values_and_keyring_values_anywhere(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "mcpServers": {
                "a": {"command": "x", "args": ["--key=${keyring:k}"], "env": {"PLAIN": "visible-env"}},
                "b": {"type": "http", "url": "https://h/${keyring:k}", "headers": {"H": "visible-header"}},
            }
        },
    )
    config = load_servers(path, _resolver({"k": "TOPSECRET"}))
    text = repr(config)
    assert "TOPSECRET" not in text
    assert "visible-env" not in text
    assert "visible-header" not in text
    assert "'PLAIN': '***'" in text
    assert "--key=***" in text


def test_a_disabled_server_is_kept_without_resolving_its_references(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"mcpServers": {"later": {"command": "x", "env": {"T": "${keyring:unset}"}, "disabled": True}}},
    )
    config = load_servers(path, _resolver())
    assert config.servers[0].env["T"] == "${keyring:unset}"
    assert config.enabled == ()
    assert config.get("later") is config.servers[0]


def test_a_server_can_be_added_and_saved_keeping_schema_and_references(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "$schema": "https://example.com/servers.schema.json",
            "mcpServers": {"a": {"command": "x", "env": {"T": "${keyring:t}"}}},
        },
    )
    data = read_servers_data(path)
    new = ServerConfig(
        name="web", transport="http", url="https://h/mcp", headers={"A": "${keyring:w}"}, prefix="w"
    )
    data["mcpServers"]["web"] = server_to_data(new)
    save_servers(path, {"mcpServers": data["mcpServers"]})
    saved = json.loads(path.read_text())
    assert saved["$schema"] == "https://example.com/servers.schema.json"
    assert saved["mcpServers"]["a"]["env"] == {"T": "${keyring:t}"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_servers(path, _resolver({"t": "1", "w": "2"}))
    assert loaded.get("web") == ServerConfig(
        name="web", transport="http", url="https://h/mcp", headers={"A": "2"}, prefix="w"
    )


def test_a_server_with_resolved_secrets_cannot_be_turned_back_into_file_data(tmp_path: Path) -> None:
    path = _write(tmp_path, {"mcpServers": {"a": {"command": "x", "env": {"T": "${env:T}"}}}})
    (server,) = load_servers(path, _resolver(environ={"T": "value"})).servers
    with pytest.raises(ValueError, match="resolved secrets"):
        server_to_data(server)


def test_servers_to_data_writes_only_what_differs_from_the_defaults() -> None:
    servers = [ServerConfig(name="t", transport="stdio", command="mcp-server-time", disabled=True)]
    data = servers_to_data(servers, schema="s.json")
    assert data == {
        "$schema": "s.json",
        "mcpServers": {"t": {"command": "mcp-server-time", "disabled": True}},
    }


def test_saving_invalid_data_is_refused_and_the_file_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, {"mcpServers": {}})
    with pytest.raises(ConfigError, match="'command' is required"):
        save_servers(path, {"mcpServers": {"a": {"args": []}}})
    assert json.loads(path.read_text()) == {"mcpServers": {}}


def test_an_http_server_signs_in_unless_oauth_is_off_or_an_authorization_header_is_set(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        {
            "mcpServers": {
                "plain": {"type": "http", "url": "https://a.example/mcp"},
                "off": {"type": "http", "url": "https://b.example/mcp", "oauth": False},
                "header": {
                    "type": "http",
                    "url": "https://c.example/mcp",
                    "headers": {"authorization": "Bearer x"},
                },
                "local": {"command": "server"},
            }
        },
    )
    servers = load_servers(path, _resolver())
    assert [s.name for s in servers.servers if s.signs_in] == ["plain"]
    assert server_to_data(servers.get("off")) == {
        "type": "http",
        "url": "https://b.example/mcp",
        "oauth": False,
    }  # type: ignore[arg-type]


def test_pre_registered_oauth_credentials_resolve_the_secret_from_the_keyring_and_hide_it(
    tmp_path: Path,
) -> None:
    entry = {
        "type": "http",
        "url": "https://api.example/mcp",
        "oauth": {
            "clientId": "app-1",
            "clientSecret": "${keyring:gh-secret}",
            "callbackPort": 8765,
            "scope": "repo",
        },
    }
    path = _write(tmp_path, {"mcpServers": {"gh": entry}})
    server = load_servers(path, _resolver({"gh-secret": "s3cret"})).get("gh")
    assert server is not None and server.oauth is not None
    settings = server.oauth_settings
    assert (settings.client_id, settings.client_secret, settings.callback_port, settings.scope) == (
        "app-1",
        "s3cret",
        8765,
        "repo",
    )
    assert "s3cret" not in repr(server) and "s3cret" not in repr(settings) and "s3cret" in server.secrets
    assert load_servers(path, _resolver({"gh-secret": "s3cret"})).secrets == {"s3cret"}  # redacted everywhere
    assert read_servers_data(path)["mcpServers"]["gh"] == entry  # what an edit saves: the reference


@pytest.mark.parametrize(
    ("oauth", "pointer"),
    [
        ({"clientSecret": "x"}, "/mcpServers/gh/oauth"),
        ({"clientMetadataUrl": "http://insecure.example/c.json"}, "/mcpServers/gh/oauth"),
        ({"callbackPort": 80}, "/mcpServers/gh/oauth"),
        ({"client_id": "x"}, "/mcpServers/gh/oauth"),
        (True, "/mcpServers/gh/oauth"),
    ],
)
def test_a_wrong_oauth_entry_is_an_error_naming_it(tmp_path: Path, oauth: Any, pointer: str) -> None:
    path = _write(
        tmp_path, {"mcpServers": {"gh": {"type": "http", "url": "https://x.example/mcp", "oauth": oauth}}}
    )
    error = _error(path)
    assert error.pointer.startswith(pointer), error


def test_a_client_credentials_server_needs_an_issuer_and_a_secret_or_key_and_never_asks_a_person(
    tmp_path: Path,
) -> None:
    base = {"type": "http", "url": "https://api.example/mcp"}
    missing = {"grant": "client_credentials", "clientId": "svc", "clientSecret": "${keyring:s}"}
    assert (
        _error(_write(tmp_path, {"mcpServers": {"m": {**base, "oauth": missing}}})).pointer
        == "/mcpServers/m/oauth"
    )
    entry = {**missing, "issuer": "https://auth.example"}
    path = _write(tmp_path, {"mcpServers": {"m": {**base, "oauth": entry}}})
    server = load_servers(path, _resolver({"s": "machine-secret"})).get("m")
    assert server is not None and server.uses_client_credentials and not server.signs_in
    assert server.oauth_settings.client_secret == "machine-secret" and "machine-secret" not in repr(server)


def test_a_hook_agents_name_cannot_be_a_servers_name_or_prefix(tmp_path: Path) -> None:
    named = _error(_write(tmp_path, {"mcpServers": {"claude-code": {"command": "x"}}}))
    assert named.pointer == "/mcpServers/claude-code"
    assert "reserved for that agent's own tools (claude-code__Bash" in named.message
    prefixed = _error(_write(tmp_path, {"mcpServers": {"tools": {"command": "x", "prefix": "claude-code"}}}))
    assert prefixed.pointer == "/mcpServers/tools/prefix"
