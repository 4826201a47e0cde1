"""Where the audit window's export starts, and how its result is told."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QStandardPaths
from pytestqt.qtbot import QtBot

from approver.audit.log import AuditLog
from approver.config.settings import load_preferences
from approver.testing.records import decision_record as decision
from approver.testing.records import outcome_record as outcome
from approver.ui.audit_export import ExportResult, export_message, remember_folder, start_folder
from approver.ui.audit_window import AuditWindow


def test_the_export_starts_in_documents_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = start_folder(tmp_path / "settings.json")
    assert folder != tmp_path
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    assert folder in (Path(documents), Path.home()) or folder.is_dir()


def test_the_last_export_folder_is_remembered_in_settings(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    chosen = tmp_path / "exports"
    chosen.mkdir()
    assert remember_folder(settings, chosen) is None
    assert start_folder(settings) == chosen
    assert load_preferences(settings).export_folder == str(chosen)
    chosen.rmdir()
    assert start_folder(settings) != chosen  # a folder that is gone is not offered


def test_an_export_counts_calls_and_says_what_a_row_is(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as writer:
        for call in ("a", "b", "c"):
            writer.record_decision(decision(call))
        writer.record_outcome(outcome("a"))
    window = AuditWindow(path, settings_file=tmp_path / "settings.json")
    qtbot.addWidget(window)
    target_folder = tmp_path / "out"
    target_folder.mkdir()
    with qtbot.waitSignal(window.export_finished, timeout=30_000) as finished:
        window.export_to(target_folder / "calls.csv", "csv")
    result = finished.args[0]
    assert isinstance(result, ExportResult) and (result.calls, result.rows) == (3, 4)
    assert window.status.text().startswith("3 calls")
    assert window.message.text().startswith("Exported 3 calls (4 log rows: a call is a decision row")
    assert load_preferences(tmp_path / "settings.json").export_folder == str(target_folder)
    qtbot.waitUntil(lambda: not window.busy, timeout=30_000)


def test_a_failed_export_says_where_and_why() -> None:
    assert export_message(ExportResult(Path("/x/y.csv"), 0, "Permission denied")).startswith(
        "Could not export to /x/y.csv: Permission denied."
    )
