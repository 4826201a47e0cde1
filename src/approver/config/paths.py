"""Where approver keeps its files: the config and data directories and the files inside them.

A command-line flag beats an environment variable (``APPROVER_CONFIG_DIR``,
``APPROVER_DATA_DIR``), which beats the platform default from ``platformdirs``
(``~/.config/approver`` and ``~/.local/share/approver`` on Linux).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

import platformdirs

APP_NAME: Final = "approver"
"""The directory name under the platform's config and data locations."""

CONFIG_DIR_ENV: Final = "APPROVER_CONFIG_DIR"
"""Environment variable that overrides the config directory."""

DATA_DIR_ENV: Final = "APPROVER_DATA_DIR"
"""Environment variable that overrides the data directory."""

PRIVATE_DIR_MODE: Final = 0o700
"""Mode of the directories approver creates: only the owner may list or enter them."""

PRIVATE_FILE_MODE: Final = 0o600
"""Mode of the files approver writes: only the owner may read them."""


@dataclass(frozen=True)
class Paths:
    """The two directories approver uses and the well-known files inside them."""

    config_dir: Path
    data_dir: Path

    @property
    def servers_file(self) -> Path:
        """The upstream MCP servers, in the ``mcpServers`` format."""
        return self.config_dir / "servers.json"

    @property
    def policy_file(self) -> Path:
        """The policy deciding which calls are allowed, denied or need approval."""
        return self.config_dir / "policy.json"

    @property
    def settings_file(self) -> Path:
        """Optional settings (today: the OpenTelemetry export); missing means every default."""
        return self.config_dir / "settings.json"

    @property
    def audit_db(self) -> Path:
        """The SQLite audit log."""
        return self.data_dir / "audit.db"

    @property
    def logs_dir(self) -> Path:
        """Log files, including upstream servers' stderr."""
        return self.data_dir / "logs"

    @property
    def runtime_file(self) -> Path:
        """Where the running gateway writes its port and pid."""
        return self.data_dir / "gateway.json"

    @property
    def tokens_file(self) -> Path:
        """The list of MCP clients with a bearer token (and the tokens when no keyring exists)."""
        return self.data_dir / "tokens.json"

    @property
    def pins_file(self) -> Path:
        """The pinned definition of every upstream tool seen so far (see :mod:`approver.policy.pins`)."""
        return self.data_dir / "pins.json"

    @classmethod
    def resolve(
        cls,
        config_dir: str | None = None,
        data_dir: str | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Paths:
        """Pick each directory from the flag, else the environment, else the platform default.

        An empty flag or variable counts as unset. ``~`` is expanded and relative paths are made
        absolute, so the result does not change when the working directory does.
        """
        config = _first(config_dir, environ.get(CONFIG_DIR_ENV))
        data = _first(data_dir, environ.get(DATA_DIR_ENV))
        return cls(
            config_dir=_absolute(config or platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            data_dir=_absolute(data or platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        )

    def ensure(self) -> None:
        """Create the config, data and logs directories (mode 0700) if they are missing.

        Directories that already exist keep their mode: an override may point at a folder the
        user owns for other reasons.
        """
        for directory in (self.config_dir, self.data_dir, self.logs_dir):
            _make_private_dir(directory)


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _absolute(path: str) -> Path:
    return Path(path).expanduser().absolute()


def _make_private_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        if not directory.is_dir():
            raise
        return
    # mkdir's mode is filtered by the umask; set it explicitly so it is exactly 0700.
    directory.chmod(PRIVATE_DIR_MODE)


def write_private_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable and writable only by the owner."""
    replace_file(path, text.encode("utf-8"), PRIVATE_FILE_MODE)


def replace_file(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically with ``data`` and give it ``mode``.

    The data goes to a fresh temporary file in the same directory (created exclusively with mode
    0600), is flushed to disk, given ``mode`` and renamed over ``path``: a reader sees the old file
    or the new one, never a half-written one, and never a private file's content with wider mode.
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


@contextlib.contextmanager
def private_output(path: Path) -> Iterator[TextIO]:
    """A text file to write ``path`` through, readable only by the owner (mode 0600) whatever the umask.

    The text goes to a fresh ``.NAME.part`` file created with mode 0600, which replaces ``path``
    only once everything is written: an existing file of a wider mode is replaced, not reused,
    and a failed write leaves ``path`` as it was. A path that exists and is not a regular file (a
    pipe, ``/dev/stdout``) is written directly.
    """
    if path.exists() and not path.is_file():
        with open(path, "w", encoding="utf-8", newline="") as out:
            yield out
        return
    partial = path.with_name(f".{path.name}.part")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        # The mode given to open() only applies to a file it creates: a leftover part file keeps its own.
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
        with open(descriptor, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
