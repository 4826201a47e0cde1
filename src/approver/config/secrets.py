"""Secrets for ``${keyring:NAME}`` references: set, get, list and delete them in the keyring.

Secrets live in the system keyring under service ``approver`` with the secret's name as the
username. A keyring cannot list its entries, so approver keeps an index of the *names* (never
the values) in ``secret-names.json`` in the config directory (mode 0600); names referenced by
``servers.json`` count as known too. When no keyring backend exists, or it is locked, every
operation raises :class:`SecretsError` saying what to do: approver never falls back to storing
a secret in a plain file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import keyring
import keyring.backends.fail
import keyring.errors
from keyring.backend import KeyringBackend

from approver.config.paths import Paths, write_private_text
from approver.config.servers import KEYRING_SERVICE, NAME_PATTERN, read_servers_data
from approver.config.tokens import keyring_username
from approver.errors import ApproverError, ConfigError

INDEX_FILE_NAME: Final = "secret-names.json"
"""The index of secret names in the config directory; it never holds a value."""

REFERENCE_FIELDS: Final = ("command", "args", "env", "cwd", "url", "headers", "oauth")
"""The ``servers.json`` fields whose strings may hold ``${keyring:NAME}`` references."""

NO_KEYRING_HELP: Final = (
    "no system keyring is available, so approver cannot store or read secrets. Install and "
    "start a Secret Service, for example `sudo apt install gnome-keyring` (on a headless "
    "machine run approver inside `dbus-run-session` with `gnome-keyring-daemon --unlock`), or "
    "KeePassXC with its Secret Service integration; or put the value in an environment "
    "variable and write ${env:NAME} in servers.json instead"
)
"""What to do when there is no keyring backend at all."""

LOCKED_HELP: Final = (
    "the system keyring is locked: unlock it (log in to your desktop session, or open your "
    "keyring app and unlock the default collection) and try again"
)
"""What to do when the keyring exists but is locked."""

_FORMAT_VERSION: Final = 1
_REFERENCE: Final = re.compile(r"\$\$\{|\$\{keyring:([^}]*)\}")
_T = TypeVar("_T")


class SecretsError(ApproverError):
    """A secret cannot be stored, read or removed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """One known secret name: whether a value is stored and which servers use it."""

    name: str
    stored: bool | None
    """None when the keyring could not be asked (see :attr:`SecretList.problem`)."""
    servers: tuple[str, ...]
    """Servers in ``servers.json`` that reference ``${keyring:NAME}``."""


@dataclass(frozen=True, slots=True)
class SecretList:
    """Every known secret, plus why some facts are missing."""

    secrets: tuple[SecretInfo, ...]
    problem: str | None = None
    """Why the keyring could not be asked, when it could not."""
    servers_error: str | None = None
    """Why ``servers.json`` could not be read for references, when it could not."""


def check_secret_name(name: str) -> str:
    """Return ``name`` if it may name a secret, else raise SecretsError saying what is allowed.

    Client tokens live in the same keyring service under ``client-token:<client>``; the ``:``
    keeps the two apart, and the explicit check below keeps it so even if the pattern grows.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise SecretsError(f"secret name {name!r} is not valid: use 1-64 letters, digits, '_', '.' or '-'")
    if name.startswith(keyring_username("")):
        raise SecretsError(f"secret name {name!r} is reserved for client tokens")
    return name


def keyring_references(data: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Secret name -> the servers whose config references ``${keyring:NAME}``, from raw JSON.

    Disabled servers count: their secret is still meant to be there. ``$${keyring:x}`` is a
    literal, not a reference.
    """
    found: dict[str, list[str]] = {}
    servers = data.get("mcpServers", {})
    for server, entry in servers.items() if isinstance(servers, dict) else ():
        if not isinstance(entry, dict):
            continue
        for field in REFERENCE_FIELDS:
            for text in _strings(entry.get(field)):
                for match in _REFERENCE.finditer(text):
                    name = match.group(1)
                    if name is not None and server not in found.setdefault(name, []):
                        found[name].append(server)
    return {name: tuple(servers) for name, servers in sorted(found.items())}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))
    elif isinstance(value, dict):
        yield from (v for v in value.values() if isinstance(v, str))


def describe_keyring_error(exc: BaseException) -> str:
    """A sentence saying what failed in the keyring and what to do about it."""
    if isinstance(exc, keyring.errors.NoKeyringError):
        return NO_KEYRING_HELP
    if isinstance(exc, keyring.errors.KeyringLocked):
        return LOCKED_HELP
    return f"the system keyring failed: {type(exc).__name__}: {exc}"


def backend_name(backend: KeyringBackend) -> str:
    """A readable name of a keyring backend, e.g. ``SecretService Keyring``."""
    name = getattr(type(backend), "name", None)
    return name if isinstance(name, str) and name else type(backend).__name__


class SecretStore:
    """approver's secrets in ``backend`` (default: the current keyring), with the name index."""

    def __init__(self, paths: Paths, backend: KeyringBackend | None = None) -> None:
        self.paths = paths
        self.backend = backend if backend is not None else keyring.get_keyring()

    @property
    def index_file(self) -> Path:
        """Where the secret names are kept."""
        return self.paths.config_dir / INDEX_FILE_NAME

    @property
    def available(self) -> bool:
        """False when there is no keyring backend at all (keyring's fail backend)."""
        return not isinstance(self.backend, keyring.backends.fail.Keyring)

    def save(self, name: str, value: str) -> bool:
        """Store ``value`` as secret ``name``; True if it replaced a stored value.

        Reads the value back, so a backend that silently drops it is an error, not a surprise
        at the next start.
        """
        check_secret_name(name)
        if not value:
            raise SecretsError("the value is empty; nothing was stored")
        existed = self._read(name) is not None
        self._call(lambda: self.backend.set_password(KEYRING_SERVICE, name, value))
        if self._read(name) != value:
            raise SecretsError(
                f"the keyring ({backend_name(self.backend)}) did not keep secret {name!r}; "
                "check that it is unlocked and writable"
            )
        self._write_index(self._index() | {name})
        return existed

    def get(self, name: str) -> str | None:
        """The value of secret ``name``, or None if none is stored."""
        return self._read(check_secret_name(name))

    def delete(self, name: str) -> bool:
        """Remove secret ``name`` from the keyring and the index; False if nothing was stored."""
        check_secret_name(name)
        stored = self._read(name) is not None
        if stored:
            self._call(lambda: self.backend.delete_password(KEYRING_SERVICE, name))
        index = self._index()
        if name in index:
            self._write_index(index - {name})
        return stored

    def references(self) -> dict[str, tuple[str, ...]]:
        """Secret name -> servers referencing it; raises ConfigError for an invalid servers.json."""
        return keyring_references(read_servers_data(self.paths.servers_file))

    def listing(self) -> SecretList:
        """Every name in the index or referenced by ``servers.json``, with its state.

        Never raises for keyring or ``servers.json`` trouble: the result says what is unknown.
        """
        servers_error = None
        try:
            references = self.references()
        except ConfigError as exc:
            references, servers_error = {}, str(exc)
        problem = None
        infos = []
        for name in sorted(self._index() | set(references)):
            stored: bool | None = None
            if problem is None and NAME_PATTERN.fullmatch(name):
                try:
                    stored = self._read(name) is not None
                except SecretsError as exc:
                    problem = str(exc)
            infos.append(SecretInfo(name, stored, references.get(name, ())))
        return SecretList(tuple(infos), problem, servers_error)

    def _read(self, name: str) -> str | None:
        return self._call(lambda: self.backend.get_password(KEYRING_SERVICE, name))

    def _call(self, operation: Callable[[], _T]) -> _T:
        if not self.available:
            raise SecretsError(NO_KEYRING_HELP)
        try:
            return operation()
        except keyring.errors.PasswordDeleteError:
            raise SecretsError("the keyring refused to delete the secret") from None
        except Exception as exc:  # third-party backends raise their own types (D-Bus errors)
            raise SecretsError(describe_keyring_error(exc)) from None

    def _index(self) -> set[str]:
        try:
            data = json.loads(self.index_file.read_text("utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as exc:
            raise SecretsError(
                f"{self.index_file}: cannot be read ({exc}); delete it to start a new index"
            ) from None
        names = data.get("names") if isinstance(data, dict) else None
        if not isinstance(names, list):
            raise SecretsError(
                f'{self.index_file}: expected {{"names": [...]}}; delete it to start a new index'
            )
        return {n for n in names if isinstance(n, str) and NAME_PATTERN.fullmatch(n)}

    def _write_index(self, names: set[str]) -> None:
        self.paths.ensure()
        document = {
            "version": _FORMAT_VERSION,
            "comment": "Names of approver's keyring secrets; the values are in the system keyring.",
            "names": sorted(names),
        }
        write_private_text(self.index_file, json.dumps(document, indent=2) + "\n")
