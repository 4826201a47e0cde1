"""Exporting the calls the audit window shows: where the dialog starts, the file, and what to say.

The dialog starts in the folder of the last export (remembered in ``settings.json``), else the
user's documents or downloads folder: never the process's working directory, which for a desktop
app is wherever it happened to be started.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QStandardPaths

from approver.audit.log import AuditError, AuditLog
from approver.audit.query import CallFilter
from approver.config.paths import private_output
from approver.config.settings import load_preferences, save_preferences
from approver.errors import ConfigError
from approver.ui.audit_details import ROWS_EXPLAINED


@dataclass(frozen=True, slots=True)
class ExportResult:
    """How an export ended."""

    path: Path
    rows: int
    """Log rows written (decision and outcome rows)."""
    error: str | None = None
    calls: int = 0
    """Calls written: one decision row each."""


def export_calls(source: Path, target: Path, fmt: Literal["csv", "jsonl"], where: CallFilter) -> ExportResult:
    """Write the calls matching ``where`` to ``target`` (only the owner may read it, like the log)."""
    try:
        with private_output(target) as out, AuditLog(source, read_only=True) as log:
            rows = log.export(out, fmt, where=where)
            calls = log.count(where)
    except OSError as exc:
        return ExportResult(target, 0, exc.strerror or str(exc))
    except (sqlite3.Error, AuditError) as exc:
        return ExportResult(target, 0, str(exc))
    return ExportResult(target, rows, calls=calls)


def export_message(result: ExportResult) -> str:
    """What the window says once an export ended."""
    if result.error is not None:
        return f"Could not export to {result.path}: {result.error}. Choose a folder you can write to."
    calls = f"{result.calls:,} call{'s' if result.calls != 1 else ''}"
    return f"Exported {calls} ({result.rows:,} log rows: {ROWS_EXPLAINED}) to {result.path}."


def start_folder(settings_file: Path | None) -> Path:
    """Where the export dialog opens: the last export's folder, else documents, downloads or home."""
    if settings_file is not None:
        try:
            remembered = load_preferences(settings_file).export_folder
        except ConfigError:
            remembered = None
        if remembered and Path(remembered).is_dir():
            return Path(remembered)
    for place in (
        QStandardPaths.StandardLocation.DocumentsLocation,
        QStandardPaths.StandardLocation.DownloadLocation,
    ):
        folder = QStandardPaths.writableLocation(place)
        if folder and Path(folder).is_dir():
            return Path(folder)
    return Path.home()


def remember_folder(settings_file: Path | None, folder: Path) -> str | None:
    """Remember ``folder`` for the next export; returns why it could not be, or None."""
    if settings_file is None:
        return None
    try:
        save_preferences(settings_file, export_folder=str(folder))
    except (ConfigError, OSError) as exc:
        return str(exc)
    return None
