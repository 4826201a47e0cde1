"""Sign-in credentials of remote upstreams, kept in the system keyring, one entry per server URL.

Each entry (service ``approver``, username ``oauth:<server URL>``) is a JSON record: the tokens
and when they expire, the client registration (bound to the issuer that made it), the metadata
that was discovered (so a refresh after a restart reaches the right token endpoint), the
redirect port the registration names, and the scope a server asked for that the tokens lack.
There is no fallback to a file: without a keyring, signing in fails and says what to do.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any, Final

import keyring
import keyring.backends.fail
import keyring.errors
from keyring.backend import KeyringBackend
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, OAuthToken, ProtectedResourceMetadata
from pydantic import ValidationError

from approver.config.secrets import backend_name, describe_keyring_error
from approver.config.servers import KEYRING_SERVICE
from approver.errors import ApproverError

USERNAME_PREFIX: Final = "oauth:"
"""Keyring usernames of sign-in records start with this; secret names cannot contain ``:``."""

_FORMAT_VERSION: Final = 1


NO_KEYRING_HELP: Final = (
    "no system keyring is available, and approver keeps sign-in tokens nowhere else: install and "
    "start a Secret Service, for example `sudo apt install gnome-keyring` (on a headless machine run "
    "approver inside `dbus-run-session` with `gnome-keyring-daemon --unlock`), or KeePassXC with its "
    "Secret Service integration"
)
"""What to do when there is no keyring to keep sign-in credentials in."""


class CredentialsError(ApproverError):
    """The keyring cannot keep or give sign-in credentials; the message says what to do."""


def keyring_username(server_url: str) -> str:
    """The keyring username of the record for ``server_url``."""
    return USERNAME_PREFIX + server_url


@dataclass(frozen=True)
class SignInRecord:
    """What approver keeps about its sign-in to one server."""

    tokens: OAuthToken | None = None
    expires_at: float | None = None
    """Unix time the access token expires, None when the server gave no lifetime."""
    client: OAuthClientInformationFull | None = None
    """The registration (dynamic or by metadata document); pre-registered ones stay in servers.json."""
    resource_metadata: ProtectedResourceMetadata | None = None
    server_metadata: OAuthMetadata | None = None
    redirect_port: int | None = None
    """The loopback port the registration's redirect URI names, reused on the next sign-in."""
    wanted_scope: str | None = None
    """Scope the server asked for (a step-up) that the tokens do not carry yet."""
    signed_in_at: float | None = None

    @property
    def signed_in(self) -> bool:
        """Whether there is an access token at all (it may have expired; a refresh may revive it)."""
        return self.tokens is not None

    def to_json(self) -> str:
        """The record as stored."""

        def dump(model: Any) -> Any:
            return None if model is None else model.model_dump(mode="json", exclude_none=True)

        return json.dumps(
            {
                "version": _FORMAT_VERSION,
                "tokens": dump(self.tokens),
                "expires_at": self.expires_at,
                "client": dump(self.client),
                "resource_metadata": dump(self.resource_metadata),
                "server_metadata": dump(self.server_metadata),
                "redirect_port": self.redirect_port,
                "wanted_scope": self.wanted_scope,
                "signed_in_at": self.signed_in_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> SignInRecord:
        """Parse a stored record; a damaged one reads as empty (the user signs in again)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != _FORMAT_VERSION:
                return cls()
            return cls(
                tokens=_model(OAuthToken, data.get("tokens")),
                expires_at=_number(data.get("expires_at")),
                client=_model(OAuthClientInformationFull, data.get("client")),
                resource_metadata=_model(ProtectedResourceMetadata, data.get("resource_metadata")),
                server_metadata=_model(OAuthMetadata, data.get("server_metadata")),
                redirect_port=_port(data.get("redirect_port")),
                wanted_scope=data.get("wanted_scope") if isinstance(data.get("wanted_scope"), str) else None,
                signed_in_at=_number(data.get("signed_in_at")),
            )
        except (ValueError, ValidationError):
            return cls()

    def with_tokens(self, tokens: OAuthToken, now: float | None = None) -> SignInRecord:
        """This record holding ``tokens``, with their expiry made absolute; a covered step-up is cleared."""
        now = time.time() if now is None else now
        expires_at = None if tokens.expires_in is None else now + int(tokens.expires_in)
        wanted = self.wanted_scope
        if wanted and _covers(tokens.scope, wanted):
            wanted = None
        return replace(self, tokens=tokens, expires_at=expires_at, wanted_scope=wanted)


def _covers(granted: str | None, wanted: str) -> bool:
    return granted is not None and set(wanted.split()) <= set(granted.split())


def _model(model: Any, value: Any) -> Any:
    return None if value is None else model.model_validate(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _port(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 else None


class CredentialStore:
    """Reads and writes sign-in records in ``backend`` (default: the current keyring). Blocking."""

    def __init__(self, backend: KeyringBackend | None = None) -> None:
        self.backend = backend if backend is not None else keyring.get_keyring()

    @property
    def available(self) -> bool:
        """False when there is no keyring backend at all."""
        return not isinstance(self.backend, keyring.backends.fail.Keyring)

    @property
    def where(self) -> str:
        """Where records are kept, for a person: ``the system keyring (SecretService Keyring)``."""
        return f"the system keyring ({backend_name(self.backend)})"

    def load(self, server_url: str) -> SignInRecord:
        """The record for ``server_url``; an empty one when there is none."""
        text = self._call(lambda: self.backend.get_password(KEYRING_SERVICE, keyring_username(server_url)))
        return SignInRecord() if text is None else SignInRecord.from_json(text)

    def save(self, server_url: str, record: SignInRecord) -> None:
        """Store ``record`` for ``server_url``, replacing what was there."""
        text = record.to_json()
        self._call(lambda: self.backend.set_password(KEYRING_SERVICE, keyring_username(server_url), text))

    def delete(self, server_url: str) -> bool:
        """Forget everything about ``server_url``; False when nothing was stored."""
        username = keyring_username(server_url)
        if self._call(lambda: self.backend.get_password(KEYRING_SERVICE, username)) is None:
            return False
        self._call(lambda: self.backend.delete_password(KEYRING_SERVICE, username))
        return True

    def _call(self, operation: Any) -> Any:
        if not self.available:
            raise CredentialsError(NO_KEYRING_HELP)
        try:
            return operation()
        except keyring.errors.NoKeyringError:
            raise CredentialsError(NO_KEYRING_HELP) from None
        except Exception as exc:  # third-party backends raise their own types (D-Bus errors)
            raise CredentialsError(describe_keyring_error(exc)) from None
