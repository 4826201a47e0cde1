"""The audit log generator: large, realistic, valid logs for UI tests and benchmarks."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from approver.audit.log import AuditLog, format_ts
from approver.testing.auditgen import generate_audit_log

END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rows_of(path: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM events ORDER BY id").fetchall()


def test_a_generated_log_has_exactly_the_rows_asked_for_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"

    last_id = generate_audit_log(path, 5_001, end=END)

    rows = rows_of(path)
    assert [row["id"] for row in rows] == list(range(1, 5_002))
    assert last_id == 5_001
    with AuditLog(path, read_only=True) as log:
        report = log.verify()
    assert report.ok, report.problem
    assert report.rows == 5_001


def test_a_generated_log_looks_like_real_traffic(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    generate_audit_log(path, 20_000, end=END, days=7)

    rows = rows_of(path)
    decisions = [row for row in rows if row["kind"] == "decision"]
    outcomes = {row["call_id"]: row for row in rows if row["kind"] == "outcome"}
    assert len({row["server"] for row in decisions}) >= 5
    assert len({row["client"] for row in decisions}) >= 3
    assert len({row["tool"] for row in decisions}) >= 10
    verdicts = Counter((row["decision"], row["decided_by"]) for row in decisions)
    assert verdicts[("allow", "policy")] > len(decisions) / 2
    for verdict in [("deny", "policy"), ("allow", "user"), ("deny", "user"), ("deny", "timeout")]:
        assert verdicts[verdict] > 0, verdict
    assert {row["risk_class"] for row in decisions} >= {"read", "write", "execute", "destructive"}
    # Every allowed call but the last few in flight has an outcome; denied calls never do.
    allowed = [row["call_id"] for row in decisions if row["decision"] == "allow"]
    assert len(set(allowed) - outcomes.keys()) <= 5
    assert not {row["call_id"] for row in decisions if row["decision"] == "deny"} & outcomes.keys()
    assert {row["outcome"] for row in outcomes.values()} >= {"ok", "error"}
    sizes = [row["args_size"] for row in decisions]
    assert min(sizes) < 100 < 2_000 < max(sizes)
    times = [row["ts"] for row in rows]
    assert times == sorted(times)
    assert format_ts(END - timedelta(days=7)) <= times[0] and times[-1] <= format_ts(END)


def test_the_same_seed_gives_the_same_log_and_another_seed_another(tmp_path: Path) -> None:
    hashes = []
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        path = tmp_path / f"{name}.db"
        generate_audit_log(path, 500, seed=seed, end=END)
        hashes.append(rows_of(path)[-1]["hash"])

    assert hashes[0] == hashes[1] != hashes[2]


def test_generating_into_an_existing_log_continues_its_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    generate_audit_log(path, 300, end=END - timedelta(days=40))

    generate_audit_log(path, 200, end=END, seed=7)

    with AuditLog(path, read_only=True) as log:
        report = log.verify()
    assert report.ok, report.problem
    assert report.rows == 500
    call_ids = [row["call_id"] for row in rows_of(path) if row["kind"] == "decision"]
    assert len(call_ids) == len(set(call_ids))


def test_a_generated_log_is_opened_by_the_app_like_its_own(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    generate_audit_log(path, 100, end=END)

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with AuditLog(path) as log:
        assert log.last_id == 100
        assert log.query(limit=1)[0]["id"] == max(
            row["id"] for row in rows_of(path) if row["kind"] == "decision"
        )


def test_negative_row_counts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="negative"):
        generate_audit_log(tmp_path / "audit.db", -1)
