"""Each client's patience: how long a held call keeps it waiting before it is told to call again.

Read from ``settings.json`` (``"patience"`` for everyone, ``"clients": {NAME: {"patience": N}}``
for one client; 0 means as long as the approval takes) and reread when the file changes, so an
edit by hand applies to the next held call. The Connect window writes one client's value with
:meth:`Patience.set`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

from approver.config.schema import load_json_file
from approver.config.settings import update_settings
from approver.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_PATIENCE: Final = 50.0
"""Seconds, unless settings.json says otherwise: below the 60 s after which the TypeScript MCP SDK
(and the many clients built on it) gives up on a request, with room for the answer to travel."""


class Patience:
    """Patience per client from ``settings.json``; a broken file keeps the last good values."""

    def __init__(self, settings_file: Path) -> None:
        self.path = settings_file
        self._stamp: tuple[int, int] | None = None
        self._data: dict[str, Any] = {}
        self.error: str | None = None
        self._reload()

    def for_client(self, client: str) -> float | None:
        """Seconds a held call of ``client`` waits before the agent is told to retry; None: no limit."""
        self._reload_if_changed()
        seconds = self.configured(client)
        if seconds is None:
            seconds = float(self._data.get("patience", DEFAULT_PATIENCE))
        return seconds or None

    def configured(self, client: str) -> float | None:
        """The value set for this one client, if any (0 is "no limit")."""
        value = self._data.get("clients", {}).get(client, {}).get("patience")
        return None if value is None else float(value)

    @property
    def default(self) -> float:
        """The patience of clients without their own (0: no limit)."""
        return float(self._data.get("patience", DEFAULT_PATIENCE))

    def set(self, client: str, seconds: float | None) -> None:
        """Give ``client`` its own patience (None: back to the default); writes settings.json atomically.

        Raises ConfigError, leaving the file as it was, when the file is invalid or the value is.
        """

        def edit(data: dict[str, Any]) -> None:
            clients = data.setdefault("clients", {})
            entry = clients.setdefault(client, {})
            if seconds is None:
                entry.pop("patience", None)
                if not entry:
                    del clients[client]
            else:
                entry["patience"] = seconds
            if not clients:
                del data["clients"]

        update_settings(self.path, edit)
        self._reload()

    def _reload_if_changed(self) -> None:
        if self._file_stamp() != self._stamp:
            self._reload()

    def _reload(self) -> None:
        self._stamp = self._file_stamp()
        try:
            self._data = load_json_file(self.path, "settings", missing_ok=True) or {}
            self.error = None
        except ConfigError as exc:
            self.error = str(exc)
            logger.error("settings.json not reloaded, the last good patience stays in force: %s", exc)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size
