"""``approver audit export``, run as a real subprocess: the file it writes is private."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from approver.audit.log import AuditLog
from approver.config.paths import Paths
from approver.testing.records import decision_record, outcome_record

TIMEOUT = 60


def run(paths: Paths, *args: str, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    dirs = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir)]
    return subprocess.run(
        [sys.executable, "-m", "approver", *dirs, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
        preexec_fn=lambda: os.umask(umask),
    )


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    paths = Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    paths.ensure()
    with AuditLog(paths.audit_db) as log:
        log.record_decision(decision_record("call-1"))
        log.record_outcome(outcome_record("call-1"))
    return paths


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_to_a_file_is_readable_only_by_its_owner_whatever_the_umask(
    paths: Paths, tmp_path: Path, fmt: str
) -> None:
    target = tmp_path / f"calls.{fmt}"

    result = run(paths, "audit", "export", "--format", fmt, "-o", str(target), umask=0o000)

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "exported 2 rows" in result.stderr
    assert "notes/today.txt" in target.read_text("utf-8")


def test_an_export_over_an_existing_world_readable_file_makes_it_private(
    paths: Paths, tmp_path: Path
) -> None:
    target = tmp_path / "calls.jsonl"
    target.write_text("old content\n", "utf-8")
    target.chmod(0o644)

    result = run(paths, "audit", "export", "-o", str(target))

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    rows = [json.loads(line) for line in target.read_text("utf-8").splitlines()]
    assert [row["kind"] for row in rows] == ["decision", "outcome"]
    assert not list(tmp_path.glob(".calls.jsonl.part"))


def test_an_export_to_a_folder_that_does_not_exist_says_so_and_writes_nothing(
    paths: Paths, tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "calls.jsonl"

    result = run(paths, "audit", "export", "-o", str(target))

    assert result.returncode == 1
    assert result.stderr.strip() == f"approver: could not write {target}: No such file or directory"
    assert not target.parent.exists()
