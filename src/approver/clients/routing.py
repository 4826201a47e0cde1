"""``approver install|uninstall CLIENT``: route a client's MCP traffic through approver, and undo it.

Install replaces the client's whole server table with one entry, ``approver``, that reaches the
running gateway: by default the stdio bridge (``approver connect --client CLIENT``), which works in
every client, keeps no secret in the file and follows the gateway to another port; with
``transport="http"`` the gateway's URL and the client's bearer token, for clients that send
headers. One entry rather than one per server because the gateway already serves every server's
tools under its own names, so the client sees the same tools either way; servers approver does
not know yet (run ``approver import`` first) are reported in :attr:`Change.unknown`.

Before writing, install saves the file's exact bytes next to it as
``NAME.approver-backup-YYYYmmddTHHMMSSffffffZ`` (mode 0600 when the original was private) and
records the backup and a hash of what it wrote in ``NAME.approver-install.json``. Uninstall
restores the newest backup, but refuses (unless forced) when the file changed since install wrote
it, since restoring would throw those changes away. Both are idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from approver.clients.formats import ClientFormat, read_client_file
from approver.clients.importing import server_name, unified_diff
from approver.clients.translate import is_approver_entry
from approver.config.paths import PRIVATE_FILE_MODE, replace_file, write_private_text
from approver.errors import ApproverError

SERVER_KEY: Final = "approver"
"""The name approver's own entry gets in a client's server table."""

BACKUP_INFIX: Final = ".approver-backup-"
"""Between the file's name and the timestamp in a backup's name."""

RECORD_SUFFIX: Final = ".approver-install.json"
"""Appended to the file's name for the record of installs (backups and what was written)."""

_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class RoutingError(ApproverError):
    """Install or uninstall cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class Route:
    """How a client should reach approver."""

    client: str
    """The client name the gateway records for its calls."""
    bridge_command: tuple[str, ...]
    """How to run approver, e.g. ``("/usr/bin/approver",)`` or ``(python, "-m", "approver")``."""
    data_dir: Path | None = None
    """Passed to the bridge as ``--data-dir`` (where tokens and gateway.json are) when not None."""
    http_url: str | None = None
    """The gateway's plain URL, for ``transport="http"``."""
    token: str | None = field(default=None, repr=False)

    def entry(self, client: ClientFormat) -> dict[str, Any]:
        """The ``approver`` entry for ``client``'s server table."""
        if self.http_url is not None:
            if not client.http:
                raise RoutingError(
                    f"{client.title} only starts local programs: install it with the stdio bridge"
                )
            entry: dict[str, Any] = {"type": "http"} if client.writes_type else {}
            entry[client.url_key] = self.http_url
            entry["headers"] = {"Authorization": f"Bearer {self.token}"}
            return entry
        args = [*self.bridge_command[1:]]
        if self.data_dir is not None:
            args += ["--data-dir", str(self.data_dir)]
        args += ["connect", "--client", self.client]
        stdio: dict[str, Any] = {"type": "stdio"} if client.writes_type else {}
        return {**stdio, "command": self.bridge_command[0], "args": args}


@dataclass(frozen=True)
class Change:
    """One planned rewrite of a client's config file; nothing is written until it is applied."""

    client: ClientFormat
    path: Path
    before: str | None
    after: str | None
    message: str
    unknown: tuple[str, ...] = ()
    """Install: servers the client has that approver's servers.json lacks (they would be dropped)."""
    conflict: str | None = None
    """Uninstall: why restoring would lose changes made since install, if it would."""
    record: dict[str, Any] | None = None
    private: bool = False
    """Install: the new text holds a token, so the file must be readable only by its owner."""

    @property
    def changed(self) -> bool:
        """True when applying would change the file."""
        return self.before != self.after

    def diff(self) -> str:
        """A unified diff of the change."""
        return unified_diff(self.before, self.after, self.path)


def record_file(path: Path) -> Path:
    """The record of approver's installs into ``path``."""
    return path.with_name(path.name + RECORD_SUFFIX)


def is_approver(client: ClientFormat, name: str, entry: Any) -> bool:
    """True when a server-table entry reaches approver (its bridge, or its URL under ``approver``)."""
    if not isinstance(entry, dict):
        return False
    if is_approver_entry(entry):
        return True
    url = entry.get(client.url_key, entry.get("url"))
    if name != SERVER_KEY or not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.hostname in _LOOPBACK and parts.path.endswith("/mcp")


def plan_install(client: ClientFormat, path: Path, route: Route, known: Collection[str]) -> Change:
    """The rewrite that routes ``client`` (its file at ``path``) through approver.

    ``known`` holds the server names in approver's servers.json; the client's other servers are
    listed in :attr:`Change.unknown`.
    """
    source = read_client_file(client, path.resolve())
    after = source.with_servers({SERVER_KEY: route.entry(client)})
    unknown = tuple(
        name
        for name, entry in source.servers.items()
        if not is_approver(client, name, entry) and server_name(name) not in known
    )
    private = route.token is not None
    if after == source.text:
        return Change(
            client,
            source.path,
            source.text,
            after,
            f"{client.title} already reaches its servers only through approver",
        )
    message = f"{client.title} will reach its servers only through approver ({source.path})"
    return Change(client, source.path, source.text, after, message, unknown=unknown, private=private)


def apply_install(change: Change, *, drop_unknown: bool = False, now: datetime | None = None) -> Path | None:
    """Back the file up, write ``change.after`` and record both; returns the backup (None: no file before).

    Refuses when servers would be dropped that approver does not know, unless ``drop_unknown``,
    and when the file changed since the plan was made.
    """
    if not change.changed:
        return None
    if change.unknown and not drop_unknown:
        raise RoutingError(
            f"{change.path} has servers approver does not know: {', '.join(change.unknown)}. Run "
            f"`approver import {change.client.name}` first, or install anyway (--force) to drop them from "
            "the client; they stay in the backup"
        )
    path = change.path
    original = _read_bytes(path)
    if (original.decode("utf-8") if original is not None else None) != change.before:
        raise RoutingError(f"{path} changed since the diff was made; run install again")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    backup: Path | None = None
    mode = PRIVATE_FILE_MODE
    if original is not None:
        mode = path.stat().st_mode & 0o777
        backup = path.with_name(f"{path.name}{BACKUP_INFIX}{stamp}")
        private_backup = mode & 0o077 == 0
        _create(backup, original, PRIVATE_FILE_MODE if private_backup else mode)
    assert change.after is not None
    written = change.after.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, written, PRIVATE_FILE_MODE if change.private else mode)
    records = _records(path)
    records.append(
        {
            "client": change.client.name,
            "backup": backup.name if backup is not None else None,
            "mode": mode,
            "installed_at": stamp,
            "installed_sha256": hashlib.sha256(written).hexdigest(),
        }
    )
    _write_records(path, records)
    return backup


def plan_uninstall(client: ClientFormat, path: Path) -> Change:
    """The restore of the newest backup approver install made of ``path``.

    Without a record there is nothing to restore (an unchanged :class:`Change`). When the file
    changed since install wrote it, :attr:`Change.conflict` says so.
    """
    path = path.resolve()
    records = _records(path)
    current = _read_bytes(path)
    before = current.decode("utf-8", errors="replace") if current is not None else None
    if not records:
        return Change(
            client, path, before, before, f"approver install has not changed {path}; nothing to restore"
        )
    record = records[-1]
    backup_name = record.get("backup")
    after: str | None = None
    if isinstance(backup_name, str):
        saved = _read_bytes(path.with_name(backup_name))
        if saved is None:
            raise RoutingError(f"the backup {path.with_name(backup_name)} is missing; restore {path} by hand")
        after = saved.decode("utf-8", errors="replace")
    conflict = None
    if current is None or hashlib.sha256(current).hexdigest() != record.get("installed_sha256"):
        conflict = (
            f"{path} changed since approver install wrote it (at {record.get('installed_at')}); restoring "
            "the backup would throw those changes away. Look at the diff, then uninstall with --force to "
            "restore it anyway"
        )
    what = f"the backup {backup_name}" if backup_name else "the state before install (no file)"
    message = f"{client.title}: {path} will be restored from {what}"
    return Change(client, path, before, after, message, conflict=conflict, record=record)


def apply_uninstall(change: Change, *, force: bool = False) -> None:
    """Restore the backup's exact bytes (or remove a file install created) and forget the record."""
    if change.record is None:
        return
    if change.conflict and not force:
        raise RoutingError(change.conflict)
    path = change.path
    current = _read_bytes(path)
    if (current.decode("utf-8", errors="replace") if current is not None else None) != change.before:
        raise RoutingError(f"{path} changed since the diff was made; run uninstall again")
    backup_name = change.record.get("backup")
    if isinstance(backup_name, str):
        backup = path.with_name(backup_name)
        saved = _read_bytes(backup)
        if saved is None:
            raise RoutingError(f"the backup {backup} is missing; restore {path} by hand")
        mode = change.record.get("mode")
        replace_file(path, saved, mode if isinstance(mode, int) else PRIVATE_FILE_MODE)
        backup.unlink()
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    records = _records(path)
    if records and records[-1] == change.record:
        records.pop()
    _write_records(path, records)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RoutingError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _create(path: Path, data: bytes, mode: int) -> None:
    """Write a new file that must not exist yet, with exactly ``mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, mode)


def _records(path: Path) -> list[dict[str, Any]]:
    file = record_file(path)
    try:
        data = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise RoutingError(
            f"{file}: cannot be read ({exc}); restore {path} from its backup by hand"
        ) from None
    installs = data.get("installs") if isinstance(data, dict) else None
    if not isinstance(installs, list) or not all(isinstance(r, dict) for r in installs):
        raise RoutingError(f'{file}: expected {{"installs": [...]}}; restore {path} from its backup by hand')
    return installs


def _write_records(path: Path, records: list[dict[str, Any]]) -> None:
    file = record_file(path)
    if not records:
        with contextlib.suppress(FileNotFoundError):
            file.unlink()
        return
    write_private_text(file, json.dumps({"version": 1, "installs": records}, indent=2) + "\n")


def installed(path: Path) -> bool:
    """True when approver install has a backup of ``path`` that uninstall can restore."""
    try:
        return bool(_records(path.resolve()))
    except RoutingError:
        return True
