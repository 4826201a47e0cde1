"""A keyring backend kept in a JSON file, so a test and the ``approver`` processes it starts share it.

Select it with ``PYTHON_KEYRING_BACKEND=approver.testing.file_keyring.FileKeyring`` and name the
file in ``APPROVER_TEST_KEYRING``. The values are plain text: this is for tests only, and it
never chooses itself (its priority is negative).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

import keyring.errors
from keyring.backend import KeyringBackend

from approver.config.paths import write_private_text

FILE_ENV: Final = "APPROVER_TEST_KEYRING"
"""Environment variable naming the JSON file that holds the entries."""


class FileKeyring(KeyringBackend):
    """Entries as ``{"service\\x00username": password}`` in the file named by ``$APPROVER_TEST_KEYRING``."""

    priority = -1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    @property
    def path(self) -> Path:
        """The file holding the entries."""
        return Path(os.environ[FILE_ENV])

    def entries(self) -> dict[str, str]:
        """Every stored entry, keyed ``service\\x00username``."""
        try:
            data: dict[str, str] = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        return data

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries().get(f"{service}\x00{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        entries = self.entries()
        entries[f"{service}\x00{username}"] = password
        write_private_text(self.path, json.dumps(entries))

    def delete_password(self, service: str, username: str) -> None:
        entries = self.entries()
        if entries.pop(f"{service}\x00{username}", None) is None:
            raise keyring.errors.PasswordDeleteError(username)
        write_private_text(self.path, json.dumps(entries))
