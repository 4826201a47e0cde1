"""Per-client bearer tokens: each MCP client gets its own token, so the audit log knows who called.

Tokens live in the system keyring (service ``approver``, username ``client-token:NAME``) and
``tokens.json`` lists the client names only. Without a usable keyring the tokens are kept in
``tokens.json`` itself, mode 0600, and :attr:`TokenStore.storage_note` says so plainly: approver
never falls back to a "plaintext keyring" without telling the user.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import keyring
import keyring.backends.fail
import keyring.errors
from keyring.backend import KeyringBackend

from approver.config.paths import PRIVATE_FILE_MODE, write_private_text
from approver.config.schema import parse_json
from approver.config.servers import KEYRING_SERVICE, NAME_PATTERN
from approver.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, writes stay atomic
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

TOKEN_BYTES: Final = 32
"""Random bytes per token (``secrets.token_urlsafe``), 43 characters once encoded."""

_FORMAT_VERSION: Final = 1


def keyring_username(client: str) -> str:
    """The keyring username under which ``client``'s token is stored."""
    return f"client-token:{client}"


def client_names(tokens_file: Path) -> list[str]:
    """The names of the clients that have a token, read from ``tokens.json`` alone (no keyring), sorted."""
    try:
        text = tokens_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(tokens_file), "", f"cannot be read: {exc}") from None
    return sorted(_parse_clients(parse_json(text, str(tokens_file)), str(tokens_file)))


def check_client_name(client: str) -> str:
    """Return ``client`` if it is a valid client name, else raise ValueError saying what is allowed."""
    if not NAME_PATTERN.fullmatch(client):
        raise ValueError(f"client name {client!r} is not valid: use 1-64 letters, digits, '_', '.' or '-'")
    return client


class TokenStore:
    """Creates, finds and checks client tokens; ``backend`` defaults to the current keyring."""

    def __init__(
        self, tokens_file: Path, backend: KeyringBackend | None = None, *, file_only: str | None = None
    ) -> None:
        """``file_only`` keeps every token in ``tokens_file`` on purpose and says why (the demo
        does not touch the user's keyring); the storage note then gives that reason instead of
        saying that no keyring is available."""
        self.tokens_file = tokens_file
        self._file_only = file_only
        if file_only is not None:
            backend = keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]
        self._backend = backend if backend is not None else keyring.get_keyring()
        self._use_keyring = not isinstance(self._backend, keyring.backends.fail.Keyring)
        self._keyring_trouble: str | None = None
        """Why a keyring that exists could not store a token (locked, failing), if it could not."""
        self._entries: dict[str, str | None] = {}
        """Client -> token when it lives in the file, None when it lives in the keyring."""
        self._tokens: dict[str, str] = {}
        self._problems: dict[str, str] = {}
        self._stamp: tuple[int, int, int] | None = None
        self.reload()

    @property
    def storage_note(self) -> str:
        """One sentence for the user on where client tokens are stored."""
        in_file = any(token is not None for token in self._entries.values())
        if self._keyring_trouble is not None:
            return (
                f"The system keyring {self._keyring_trouble}, so client tokens created now are stored in "
                f"{self.tokens_file} (readable only by you); unlock the keyring to keep new tokens there."
            )
        if self._file_only is not None:
            return (
                f"Client tokens are stored in {self.tokens_file} (readable only by you): {self._file_only}."
            )
        if not self._use_keyring:
            return (
                f"No system keyring is available; client tokens are stored in {self.tokens_file} "
                "(readable only by you)."
            )
        name = getattr(type(self._backend), "name", type(self._backend).__name__)
        if in_file:
            return (
                f"Client tokens are stored in the system keyring ({name}), except tokens created "
                f"while it was unavailable, which are in {self.tokens_file} (readable only by you)."
            )
        return f"Client tokens are stored in the system keyring ({name})."

    @property
    def problems(self) -> dict[str, str]:
        """Clients whose token could not be read from the keyring, with the reason.

        Such clients cannot authenticate until the keyring is reachable again.
        """
        return dict(self._problems)

    def reload(self) -> None:
        """Read ``tokens.json`` (and the keyring) again, e.g. after another process added a client."""
        self._stamp = self._file_stamp()
        entries = self._read()
        tokens: dict[str, str] = {}
        problems: dict[str, str] = {}
        for client, token in entries.items():
            if token is not None:
                tokens[client] = token
                continue
            try:
                stored = self._backend.get_password(KEYRING_SERVICE, keyring_username(client))
            except keyring.errors.KeyringError as exc:
                problems[client] = _keyring_problem(exc)
                continue
            if stored is not None:
                tokens[client] = stored
        self._entries, self._tokens, self._problems = entries, tokens, problems

    def clients(self) -> list[str]:
        """Names of the clients that have been given a token, sorted."""
        return sorted(self._entries)

    def get(self, client: str) -> str | None:
        """``client``'s token, or None if it has none (or it cannot be read now)."""
        return self._tokens.get(client)

    def get_or_create(self, client: str) -> str:
        """``client``'s token, creating and storing a new one if it has none.

        Raises ValueError for an invalid name and ConfigError when the client's token is in a
        keyring that cannot be read now (a new token would silently lock out the old one).
        """
        check_client_name(client)
        with self._locked():
            self.reload()
            existing = self._tokens.get(client)
            if existing is not None:
                return existing
            if client in self._problems:
                raise ConfigError(str(self.tokens_file), f"/clients/{client}", self._problems[client])
            token = secrets.token_urlsafe(TOKEN_BYTES)
            self._entries[client] = None if self._store_in_keyring(client, token) else token
            self._tokens[client] = token
            self._write()
            return token

    def rotate(self, client: str) -> str:
        """Give ``client`` a new token in place of its old one (which stops working); returns the new one.

        Raises ConfigError when the client has no token (nothing to rotate) or its token's keyring
        cannot be read now.
        """
        check_client_name(client)
        with self._locked():
            self.reload()
            if client not in self._entries:
                raise ConfigError(
                    str(self.tokens_file), f"/clients/{client}", f"no client named {client!r} has a token"
                )
            if client in self._problems:
                raise ConfigError(str(self.tokens_file), f"/clients/{client}", self._problems[client])
            token = secrets.token_urlsafe(TOKEN_BYTES)
            self._entries[client] = None if self._store_in_keyring(client, token) else token
            self._tokens[client] = token
            # Written even when only the keyring changed: a running gateway notices the new file.
            self._write()
            return token

    def revoke(self, client: str) -> bool:
        """Forget ``client`` and its token (which stops working); False if it had none."""
        with self._locked():
            self.reload()
            if client not in self._entries:
                return False
            if self._entries.pop(client) is None:
                with contextlib.suppress(keyring.errors.KeyringError):
                    self._backend.delete_password(KEYRING_SERVICE, keyring_username(client))
            self._tokens.pop(client, None)
            self._problems.pop(client, None)
            self._write()
            return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock across a read-modify-write: two ``approver connect`` starting at
        once must not each write a tokens file without the other's new client."""
        if fcntl is None:
            yield
            return
        self.tokens_file.parent.mkdir(parents=True, exist_ok=True)
        lock = self.tokens_file.with_name(self.tokens_file.name + ".lock")
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def authenticate(self, token: str) -> str | None:
        """The client owning ``token``, or None.

        Compares against every known token in constant time, without stopping at a match, so
        the time taken does not tell which token (or how much of one) was right. ``tokens.json``
        is checked for changes first (one ``stat``): a token revoked or rotated by another
        process (``approver token --revoke``) is refused from the next request on.
        """
        if self._file_stamp() != self._stamp:
            try:
                self.reload()
            except ConfigError:
                logger.exception("tokens.json cannot be read; refusing every token until it can")
                self._entries, self._tokens = {}, {}
        return self._match(token)

    def _match(self, token: str) -> str | None:
        if not token:
            return None
        candidate = token.encode("utf-8")
        found: str | None = None
        for client, known in self._tokens.items():
            if hmac.compare_digest(candidate, known.encode("utf-8")) and found is None:
                found = client
        return found

    def _store_in_keyring(self, client: str, token: str) -> bool:
        if not self._use_keyring:
            return False
        try:
            self._backend.set_password(KEYRING_SERVICE, keyring_username(client), token)
        except keyring.errors.KeyringError as exc:
            self._use_keyring = False
            locked = isinstance(exc, keyring.errors.KeyringLocked)
            self._keyring_trouble = "is locked" if locked else f"failed ({type(exc).__name__}: {exc})"
            return False
        return True

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.tokens_file.stat()
        except FileNotFoundError:
            return None
        # The inode too: every write replaces the file, even one that keeps its size and second.
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def _read(self) -> dict[str, str | None]:
        file = str(self.tokens_file)
        try:
            text = self.tokens_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(file, "", f"cannot be read: {exc}") from None
        clients = _parse_clients(parse_json(text, file), file)
        if any(token is not None for token in clients.values()):
            self._tighten_mode()
        return clients

    def _tighten_mode(self) -> None:
        """A file holding tokens must stay readable only by its owner, even if someone chmod-ed it."""
        if self.tokens_file.stat().st_mode & 0o077:
            os.chmod(self.tokens_file, PRIVATE_FILE_MODE)

    def _write(self) -> None:
        clients: dict[str, dict[str, str]] = {}
        for client, token in sorted(self._entries.items()):
            clients[client] = {"storage": "keyring"} if token is None else {"storage": "file", "token": token}
        document = {"version": _FORMAT_VERSION, "clients": clients}
        write_private_text(self.tokens_file, json.dumps(document, indent=2) + "\n")
        self._stamp = self._file_stamp()


def _parse_clients(data: Any, file: str) -> dict[str, str | None]:
    clients = data.get("clients") if isinstance(data, dict) else None
    if not isinstance(clients, dict):
        raise ConfigError(file, "/clients", "expected an object of client names")
    result: dict[str, str | None] = {}
    for client, entry in clients.items():
        pointer = f"/clients/{client.replace('~', '~0').replace('/', '~1')}"
        if not NAME_PATTERN.fullmatch(client):
            raise ConfigError(file, pointer, "client names use 1-64 letters, digits, '_', '.' or '-'")
        token = entry.get("token") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not (token is None or (isinstance(token, str) and token)):
            raise ConfigError(
                file, pointer, 'expected {"storage": "keyring"} or {"storage": "file", "token": "..."}'
            )
        result[client] = token
    return result


def _keyring_problem(exc: keyring.errors.KeyringError) -> str:
    if isinstance(exc, keyring.errors.NoKeyringError):
        return (
            "this client's token is in the system keyring, but no keyring backend is available; "
            "run approver where the keyring is reachable, or revoke the client and create a new token"
        )
    if isinstance(exc, keyring.errors.KeyringLocked):
        return "this client's token is in the system keyring, which is locked; unlock it and try again"
    return f"the system keyring failed to read this client's token: {type(exc).__name__}: {exc}"
