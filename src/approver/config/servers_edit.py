"""Planned edits of ``servers.json``: add, enable, disable or remove one server, shown before written.

Each edit is planned from the file as it is (references unresolved, so no secret is ever
expanded into it) and returned as a :class:`ServersEdit` with the exact text before and after.
Nothing is written until :func:`apply_edit`, which refuses when the file changed since the plan
was made. The running gateway picks the new file up by itself (see
:mod:`approver.gateway.reload`).
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from approver.config.schema import validate
from approver.config.servers import NAME_PATTERN, SCHEMA_NAME, read_servers_data, save_servers
from approver.errors import ApproverError, ConfigError


class EditError(ApproverError):
    """The edit cannot be made; the message says why (nothing was written)."""


@dataclass(frozen=True)
class ServersEdit:
    """One planned change of ``servers.json``."""

    path: Path
    before: str | None
    """The file's text now (None: there is no file yet)."""
    document: dict[str, Any]
    """The whole new document, as :func:`~approver.config.servers.save_servers` will write it."""
    message: str
    """What the edit does: ``adds time``."""
    effect: str = ""
    """What the running gateway then does: ``approver starts it``."""

    @property
    def after(self) -> str:
        """The text the file will have (without a ``$schema`` the save may add)."""
        return json.dumps(self.document, indent=2, ensure_ascii=False) + "\n"

    def diff(self) -> str:
        """A unified diff of the change (it may hold secrets the user wrote: mask it before showing)."""
        lines = difflib.unified_diff(
            (self.before or "").splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=str(self.path) if self.before is not None else "/dev/null",
            tofile=str(self.path),
        )
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
        )


def _current(path: Path) -> tuple[str | None, dict[str, Any]]:
    try:
        before: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None
    return before, copy.deepcopy(read_servers_data(path))


def plan_add(path: Path, name: str, entry: Mapping[str, Any]) -> ServersEdit:
    """Add server ``name`` with ``entry``; EditError for a bad name or entry or a name in use."""
    if not NAME_PATTERN.fullmatch(name):
        raise EditError(f"a server name is 1-64 letters, digits, '_', '.' or '-'; {name!r} is not")
    before, document = _current(path)
    servers: dict[str, Any] = document.setdefault("mcpServers", {})
    if name in servers:
        raise EditError(f"servers.json already has a server named {name}; choose another name")
    servers[name] = dict(entry)
    try:
        validate(document, SCHEMA_NAME, str(path))
    except ConfigError as exc:
        raise EditError(f"the new server is not valid: {exc.pointer}: {exc.message}") from None
    return ServersEdit(path, before, document, f"adds {name}", "approver starts it")


def plan_set_disabled(path: Path, name: str, disabled: bool) -> ServersEdit:
    """Disable (``"disabled": true``) or enable server ``name``; its entry stays otherwise as written."""
    before, document = _current(path)
    entry = _entry(document, name)
    if disabled:
        entry["disabled"] = True
        return ServersEdit(
            path, before, document, f"disables {name}", "approver stops it; it stays in the file"
        )
    entry.pop("disabled", None)
    return ServersEdit(path, before, document, f"enables {name}", "approver starts it")


def plan_remove(path: Path, name: str) -> ServersEdit:
    """Remove server ``name`` from the file."""
    before, document = _current(path)
    _entry(document, name)
    del document["mcpServers"][name]
    return ServersEdit(path, before, document, f"removes {name}", "approver stops it")


def _entry(document: dict[str, Any], name: str) -> dict[str, Any]:
    entry = document.get("mcpServers", {}).get(name)
    if not isinstance(entry, dict):
        raise EditError(f"servers.json has no server named {name}")
    return entry


def apply_edit(edit: ServersEdit) -> None:
    """Write the edit (atomically, mode 0600); EditError when the file changed since it was planned."""
    try:
        now: str | None = edit.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        now = None
    if now != edit.before:
        raise EditError(f"{edit.path} changed since the change was shown; look at it again")
    edit.path.parent.mkdir(parents=True, exist_ok=True)
    save_servers(edit.path, edit.document)
