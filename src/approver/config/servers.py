"""Load ``servers.json``: the upstream MCP servers, with secrets from the keyring or environment.

The file uses the ``mcpServers`` format of Claude Desktop, Claude Code and Cursor, so an
existing block can be pasted in. String values may reference ``${keyring:NAME}`` (a secret
stored with ``approver secret set NAME``) and ``${env:NAME}`` (an environment variable);
``$${`` writes a literal ``${``. References are resolved when the file is loaded, never written
back, and never shown: errors name the reference, and ``repr`` hides environment and header
values and every keyring value.
"""

from __future__ import annotations

import json
import os
import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import keyring
import keyring.errors

from approver.config.paths import write_private_text
from approver.config.schema import load_json_file, validate, with_schema
from approver.errors import ConfigError
from approver.policy.naming import default_prefix, reserved_by, reserved_problem

KEYRING_SERVICE: Final = "approver"
"""The keyring service name under which approver's secrets and client tokens are stored."""

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""What server names and keyring secret names may look like (use with ``fullmatch``)."""

HTTP_TYPES: Final = frozenset({"http", "streamable-http", "streamableHttp"})
"""Values of ``type`` that mean a Streamable HTTP server."""

SCHEMA_NAME: Final = "servers"
"""The schema ``servers.json`` is validated against."""

Transport = Literal["stdio", "http"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_HIDDEN = "***"


def _frozen_map(values: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return types.MappingProxyType(dict(values or {}))


@dataclass(frozen=True, repr=False)
class OAuthSettings:
    """A server's ``oauth`` entry: how approver identifies itself when it signs in there.

    All optional: without them approver registers itself with the authorization server
    (dynamic client registration). ``client_secret`` is resolved and hidden from ``repr``.
    """

    client_id: str | None = None
    client_secret: str | None = None
    client_metadata_url: str | None = None
    """An https URL of a Client ID Metadata Document, used as the client id where supported."""
    callback_port: int | None = None
    """A fixed port for the 127.0.0.1 redirect listener; None picks one."""
    scope: str | None = None
    """Scopes asked for on top of the server's own (space-separated)."""
    grant: str = "authorization_code"
    """``client_credentials`` for a machine-to-machine server: no person signs in."""
    issuer: str | None = None
    """The authorization server the client belongs to; its credentials are sent nowhere else."""
    private_key: str | None = None
    """A PEM private key for ``private_key_jwt`` (client credentials), resolved and hidden."""
    signing_algorithm: str | None = None

    def __repr__(self) -> str:
        secret = "" if self.client_secret is None and self.private_key is None else ", secrets=***"
        return f"OAuthSettings(client_id={self.client_id!r}, grant={self.grant!r}{secret})"


_OAUTH_KEYS: Final = {
    "clientId": "client_id",
    "clientSecret": "client_secret",
    "clientMetadataUrl": "client_metadata_url",
    "callbackPort": "callback_port",
    "scope": "scope",
    "grant": "grant",
    "issuer": "issuer",
    "privateKey": "private_key",
    "signingAlgorithm": "signing_algorithm",
}
"""``servers.json`` key -> :class:`OAuthSettings` field."""


@dataclass(frozen=True, repr=False)
class ServerConfig:
    """One upstream MCP server, with every reference already resolved.

    A disabled server is returned as written: its references are not resolved, so a server
    whose secret is not set up yet can stay in the file.
    """

    name: str
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=_frozen_map, hash=False)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=_frozen_map, hash=False)
    prefix: str | None = None
    """``None`` means "use the default", see :attr:`exposed_prefix`."""
    quarantine_new_tools: bool = True
    """After the server's tools were first pinned, whether a tool it adds later is quarantined."""
    disabled: bool = False
    description: str | None = None
    oauth: OAuthSettings | None = None
    """The ``oauth`` entry as written; None when there is none (see :attr:`signs_in`)."""
    oauth_off: bool = False
    """True for ``"oauth": false``: approver never signs in to this server."""
    secrets: frozenset[str] = field(default=frozenset(), compare=False)
    """The keyring values resolved into this server, hidden from ``repr``."""
    expanded: bool = field(default=False, compare=False)
    """True when any ``${...}`` reference was resolved: such a config must not be saved."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "env", _frozen_map(self.env))
        object.__setattr__(self, "headers", _frozen_map(self.headers))
        if self.transport == "stdio" and not self.command:
            raise ValueError(f"stdio server {self.name!r} needs a command")
        if self.transport == "http" and not self.url:
            raise ValueError(f"http server {self.name!r} needs a url")

    @property
    def exposed_prefix(self) -> str:
        """The prefix of this server's exposed names: ``prefix``, else the sanitized name."""
        return self.prefix if self.prefix is not None else default_prefix(self.name)

    @property
    def signs_in(self) -> bool:
        """Whether approver answers this server's OAuth challenge by having a person sign in.

        Every HTTP server does, unless ``"oauth": false`` or a configured ``Authorization``
        header already authenticates it, or it uses the client-credentials grant.
        """
        return self._uses_oauth and self.oauth_settings.grant != "client_credentials"

    @property
    def uses_client_credentials(self) -> bool:
        """Whether approver gets this server's tokens with the client-credentials grant (no person)."""
        return self._uses_oauth and self.oauth_settings.grant == "client_credentials"

    @property
    def _uses_oauth(self) -> bool:
        return (
            self.transport == "http"
            and not self.oauth_off
            and not any(key.lower() == "authorization" for key in self.headers)
        )

    @property
    def oauth_settings(self) -> OAuthSettings:
        """The ``oauth`` entry, or the defaults when there is none."""
        return self.oauth or OAuthSettings()

    def _hide(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, _HIDDEN)
        return text

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"transport={self.transport!r}"]
        if self.command is not None:
            parts.append(f"command={self._hide(self.command)!r}")
        if self.args:
            parts.append(f"args={tuple(self._hide(a) for a in self.args)!r}")
        if self.env:
            parts.append(f"env={dict.fromkeys(self.env, _HIDDEN)!r}")
        if self.cwd is not None:
            parts.append(f"cwd={self._hide(self.cwd)!r}")
        if self.url is not None:
            parts.append(f"url={self._hide(self.url)!r}")
        if self.headers:
            parts.append(f"headers={dict.fromkeys(self.headers, _HIDDEN)!r}")
        parts.append(f"prefix={self.prefix!r}")
        parts.append(f"disabled={self.disabled!r}")
        return f"ServerConfig({', '.join(parts)})"


@dataclass(frozen=True)
class ServersConfig:
    """Everything loaded from ``servers.json``."""

    servers: tuple[ServerConfig, ...] = ()
    secrets: frozenset[str] = field(default=frozenset(), repr=False)
    """Every resolved keyring value, so logs and the UI can redact them."""
    missing: bool = False
    """True when the file did not exist (then there are no servers; that is not an error)."""

    @property
    def enabled(self) -> tuple[ServerConfig, ...]:
        """The servers that are not disabled."""
        return tuple(s for s in self.servers if not s.disabled)

    def get(self, name: str) -> ServerConfig | None:
        """The server called ``name``, or None."""
        return next((s for s in self.servers if s.name == name), None)


class SecretResolver:
    """Resolves ``${keyring:NAME}`` and ``${env:NAME}`` references in config strings.

    Keyring secrets are read from service ``approver`` with the secret's name as username.
    ``keyring_get`` and ``environ`` are injectable for tests and for callers with their own.
    """

    def __init__(
        self,
        keyring_get: Callable[[str, str], str | None] = keyring.get_password,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self._keyring_get = keyring_get
        self._environ = environ

    def expand(self, text: str, file: str, pointer: str) -> tuple[str, frozenset[str]]:
        """``text`` with every reference replaced, and the keyring values that went into it.

        Raises ConfigError naming ``file``, ``pointer`` and the reference when one cannot be
        resolved; the message never contains a secret.
        """
        pieces: list[str] = []
        secrets: set[str] = set()
        position = 0
        for match in _REFERENCE.finditer(text):
            pieces.append(text[position : match.start()])
            position = match.end()
            if match.group(0) == "$${":
                pieces.append("${")
            elif match.group(1) is None:
                raise ConfigError(
                    file, pointer, "unclosed '${': close it with '}', or write '$${' for a literal '${'"
                )
            else:
                value, is_secret = self._lookup(match.group(1), file, pointer)
                pieces.append(value)
                if is_secret and value:
                    secrets.add(value)
        pieces.append(text[position:])
        return "".join(pieces), frozenset(secrets)

    def _lookup(self, reference: str, file: str, pointer: str) -> tuple[str, bool]:
        kind, _, name = reference.partition(":")
        # ${env:NAME:-default} gives the default when NAME is unset or empty, as in a POSIX shell.
        name, has_default, default = name.partition(":-") if kind == "env" else (name, "", "")
        if kind == "env" and _ENV_NAME.fullmatch(name):
            value = self._environ.get(name)
            if has_default and not value:
                return default, False
            if value is None:
                raise ConfigError(file, pointer, f"environment variable {name} is not set")
            return value, False
        if kind == "keyring" and NAME_PATTERN.fullmatch(name):
            return self._keyring_secret(name, file, pointer), True
        raise ConfigError(
            file,
            pointer,
            f"cannot resolve '${{{reference}}}': use ${{env:NAME}} for an environment variable or "
            "${keyring:NAME} for a keyring secret (NAME: letters, digits, '_', '.', '-'); "
            "write '$${' for a literal '${'",
        )

    def _keyring_secret(self, name: str, file: str, pointer: str) -> str:
        try:
            value = self._keyring_get(KEYRING_SERVICE, name)
        except keyring.errors.NoKeyringError:
            raise ConfigError(
                file,
                pointer,
                f"no keyring backend is available to read secret {name!r}: start and unlock a "
                "Secret Service (e.g. gnome-keyring or KeePassXC), or use ${env:NAME} instead",
            ) from None
        except keyring.errors.KeyringLocked:
            raise ConfigError(
                file, pointer, f"the system keyring is locked: unlock it to read secret {name!r}"
            ) from None
        except keyring.errors.KeyringError as exc:
            raise ConfigError(
                file,
                pointer,
                f"the system keyring failed to read secret {name!r}: {type(exc).__name__}: {exc}",
            ) from None
        if value is None:
            raise ConfigError(
                file, pointer, f"keyring secret {name!r} not found; set it with: approver secret set {name}"
            )
        return value


def load_servers(path: Path, resolver: SecretResolver) -> ServersConfig:
    """Read, validate and resolve ``servers.json``; a missing file means no servers.

    Every problem is a ConfigError naming the file and the JSON pointer.
    """
    data = _read(path)
    if data is None:
        return ServersConfig(missing=True)
    file = str(path)
    servers: list[ServerConfig] = []
    secrets: set[str] = set()
    for name, entry in data.get("mcpServers", {}).items():
        server = _server(name, entry, resolver, file)
        servers.append(server)
        secrets |= server.secrets
    return ServersConfig(servers=tuple(servers), secrets=frozenset(secrets))


def read_servers_data(path: Path) -> dict[str, Any]:
    """The validated JSON of ``servers.json`` with references unresolved, for editing and saving.

    A missing file reads as ``{"mcpServers": {}}``.
    """
    data = _read(path)
    return {"mcpServers": {}} if data is None else data


def _read(path: Path) -> dict[str, Any] | None:
    data: dict[str, Any] | None = load_json_file(
        path,
        SCHEMA_NAME,
        missing_ok=True,
        unreadable_hint="make it a JSON file readable by you, or move it away to start with no servers",
        check=_check_names_and_types,
    )
    return data


def _check_names_and_types(data: Any, file: str) -> None:
    """Give server names and ``type`` mistakes a precise message before the schema's general one."""
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        return
    allowed = ("stdio", *sorted(HTTP_TYPES))
    for name, entry in servers.items():
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(
                file,
                f"/mcpServers/{_escape(name)}",
                f"server name {json.dumps(name)} is not allowed: use 1-64 letters, digits, '_', '.' or '-'",
            )
        taken = reserved_by(name, entry.get("prefix") if isinstance(entry, dict) else None)
        if taken:
            where = f"/mcpServers/{_escape(name)}" + ("" if taken == name else "/prefix")
            raise ConfigError(file, where, reserved_problem(taken))
        kind = entry.get("type", "stdio") if isinstance(entry, dict) else "stdio"
        pointer = f"/mcpServers/{_escape(name)}/type"
        if isinstance(kind, str) and kind.lower() == "sse":
            raise ConfigError(
                file, pointer, "SSE transport is not supported; use the server's Streamable HTTP endpoint"
            )
        if kind not in allowed:
            raise ConfigError(file, pointer, f"expected one of {', '.join(allowed)}, got {json.dumps(kind)}")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _server(name: str, entry: Mapping[str, Any], resolver: SecretResolver, file: str) -> ServerConfig:
    base = f"/mcpServers/{_escape(name)}"
    disabled = bool(entry.get("disabled", False))
    secrets: set[str] = set()
    expanded = False

    def resolve(value: str, pointer: str) -> str:
        nonlocal expanded
        if disabled:
            return value
        result, found = resolver.expand(value, file, base + pointer)
        secrets.update(found)
        expanded = expanded or result != value
        return result

    def resolve_map(key: str) -> dict[str, str]:
        values: Mapping[str, str] = entry.get(key, {})
        return {k: resolve(v, f"/{key}/{_escape(k)}") for k, v in values.items()}

    is_http = entry.get("type") in HTTP_TYPES
    raw_oauth = entry.get("oauth")
    oauth = None
    if isinstance(raw_oauth, dict):
        values: dict[str, Any] = {}
        for key, attribute in _OAUTH_KEYS.items():
            value = raw_oauth.get(key)
            values[attribute] = resolve(value, f"/oauth/{key}") if isinstance(value, str) else value
        oauth = OAuthSettings(**values)
    command = entry.get("command")
    cwd = entry.get("cwd")
    url = entry.get("url")
    return ServerConfig(
        name=name,
        transport="http" if is_http else "stdio",
        command=None if command is None else resolve(command, "/command"),
        args=tuple(resolve(a, f"/args/{i}") for i, a in enumerate(entry.get("args", []))),
        env=resolve_map("env"),
        cwd=None if cwd is None else resolve(cwd, "/cwd"),
        url=None if url is None else resolve(url, "/url"),
        headers=resolve_map("headers"),
        oauth=oauth,
        oauth_off=raw_oauth is False,
        prefix=entry.get("prefix"),
        quarantine_new_tools=bool(entry.get("quarantine_new_tools", True)),
        disabled=disabled,
        description=entry.get("description"),
        secrets=frozenset(secrets),
        expanded=expanded,
    )


def server_to_data(server: ServerConfig) -> dict[str, Any]:
    """The ``mcpServers`` entry for ``server``, leaving out defaults.

    Raises ValueError for a server whose references were resolved: saving it would write the
    secrets into the file. Edit :func:`read_servers_data` instead.
    """
    if server.expanded:
        raise ValueError(
            f"server {server.name!r} holds resolved secrets; edit read_servers_data() instead of saving it"
        )
    entry: dict[str, Any] = {}
    if server.transport == "http":
        entry["type"] = "http"
        entry["url"] = server.url
        if server.headers:
            entry["headers"] = dict(server.headers)
        if server.oauth_off:
            entry["oauth"] = False
        elif server.oauth is not None:
            oauth = server.oauth
            entry["oauth"] = {
                key: getattr(oauth, name)
                for key, name in _OAUTH_KEYS.items()
                if getattr(oauth, name) is not None
            }
    else:
        entry["command"] = server.command
        if server.args:
            entry["args"] = list(server.args)
        if server.env:
            entry["env"] = dict(server.env)
        if server.cwd is not None:
            entry["cwd"] = server.cwd
    if server.prefix is not None:
        entry["prefix"] = server.prefix
    if not server.quarantine_new_tools:
        entry["quarantine_new_tools"] = False
    if server.disabled:
        entry["disabled"] = True
    if server.description is not None:
        entry["description"] = server.description
    return entry


def servers_to_data(servers: Iterable[ServerConfig], schema: str | None = None) -> dict[str, Any]:
    """A whole ``servers.json`` document for ``servers`` (with ``$schema`` when given)."""
    data: dict[str, Any] = {} if schema is None else {"$schema": schema}
    data["mcpServers"] = {s.name: server_to_data(s) for s in servers}
    return data


def save_servers(path: Path, data: Mapping[str, Any]) -> None:
    """Validate ``data`` and write it to ``path`` atomically with mode 0600.

    When ``data`` has no ``$schema`` the existing file's ``$schema`` is kept, so editors keep
    offering completion; a new file gets the installed schema's ``file://`` URI (see
    :func:`~approver.config.schema.with_schema`). The directory must exist (see ``Paths.ensure``).
    """
    file = str(path)
    validate(data, SCHEMA_NAME, file)
    document = dict(data)
    if "$schema" not in document:
        existing = _existing_schema(path)
        if existing is not None:
            document = {"$schema": existing, **document}
    elif next(iter(document)) != "$schema":
        document = {"$schema": document.pop("$schema"), **document}
    document = with_schema(document, SCHEMA_NAME, add=not path.exists())
    write_private_text(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _existing_schema(path: Path) -> str | None:
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    schema = existing.get("$schema") if isinstance(existing, dict) else None
    return schema if isinstance(schema, str) else None
