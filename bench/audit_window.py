"""Audit window over a large log: open, first page, filter, scroll to the end, memory.

Usage: ``python bench/audit_window.py [ROWS] [--db PATH] [--json]`` (default 1,000,000 event rows
in a temporary file; pass ``--db`` to keep and reuse a generated log between runs; ``run_all.py``
keeps one under the benchmark cache). Runs offscreen. Each figure is the wall time of one real
action on the real window, with Qt's events processed; memory is this process's peak RSS, so run
it in a process of its own.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from common import Figure, print_figures
from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtWidgets import QApplication

from approver.audit.query import CallFilter
from approver.ui.audit_window import AuditWindow


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    QApplication.processEvents()
    return time.perf_counter() - start


def main() -> int:
    """Command line: measure, then print a table (or JSON lines with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--db", type=Path, help="log file to reuse (generated when missing)")
    parser.add_argument("--json", action="store_true", help="print JSON lines (for run_all.py)")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    with tempfile.TemporaryDirectory() as temp:
        db = args.db or Path(temp) / "audit.db"
        if not db.exists():
            # In a child process, so the memory figure below is the window's alone.
            started = time.perf_counter()
            code = (
                "import sys, pathlib; from approver.testing.auditgen import generate_audit_log as generate; "
                "generate(pathlib.Path(sys.argv[1]), int(sys.argv[2]))"
            )
            subprocess.run([sys.executable, "-c", code, str(db), str(args.rows)], check=True)
            print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
        window: AuditWindow | None = None

        def open_window() -> None:
            nonlocal window
            window = AuditWindow(db)
            window.resize(1200, 760)
            window.show()
            model = window.model
            model.data(model.index(0, 0), Qt.ItemDataRole.DisplayRole)

        figures = {"open and show the first page": timed(open_window)}
        assert window is not None
        model = window.model
        calls = model.rowCount()
        figures["filter: decision = deny"] = timed(lambda: model.set_filter(CallFilter(decision="deny")))
        denied = model.rowCount()
        figures["filter: back to all calls"] = timed(lambda: model.set_filter(CallFilter()))

        def to_end() -> None:
            last = model.rowCount() - 1
            window.table.scrollToBottom()
            model.data(model.index(last, 0), Qt.ItemDataRole.DisplayRole)

        figures["scroll to the end"] = timed(to_end)
        figures["scroll to the middle"] = timed(lambda: window.table.scrollTo(model.index(calls // 2, 0)))

        def sort_by_tool() -> None:
            # Sorting reads every call's id on a worker thread; the window keeps answering meanwhile.
            window.sorter.sort_by(3, descending=False)
            while model.order.key != "tool":
                QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            model.data(model.index(0, 0), Qt.ItemDataRole.DisplayRole)

        figures["sort by Tool (in the background)"] = timed(sort_by_tool)
        figures["scroll a sorted table to the middle"] = timed(
            lambda: window.table.scrollTo(model.index(calls // 2, 0))
        )
        middle = model.call_id(calls // 2) or 0
        window.sorter.sort_by(0, descending=True)
        figures["open a call by its row id"] = timed(lambda: window.open_call(middle))
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        window.close()
    if args.json:
        print_figures(_figures(figures, rss_mb, calls, args.rows), as_json=True)
        return 0
    print(f"{calls:,} calls ({denied:,} denied) in {args.rows:,} event rows")
    print(f"{'action':40} {'seconds':>8}")
    for action, seconds in figures.items():
        print(f"{action:40} {seconds:8.3f}")
    print(f"{'peak memory (RSS, MB)':40} {rss_mb:8.0f}")
    return 0


_TARGETS: dict[str, tuple[str, float]] = {
    "open and show the first page": ("<= 0.5 s", 0.5),
    "filter: decision = deny": ("<= 0.2 s", 0.2),
    "filter: back to all calls": ("<= 0.2 s", 0.2),
    "scroll to the end": ("no stall (<= 0.1 s)", 0.1),
    "scroll to the middle": ("no stall (<= 0.1 s)", 0.1),
    "sort by Tool (in the background)": ("<= 5 s", 5.0),
    "scroll a sorted table to the middle": ("no stall (<= 0.1 s)", 0.1),
    "open a call by its row id": ("<= 0.5 s", 0.5),
}


def _figures(figures: dict[str, float], rss_mb: float, calls: int, rows: int) -> list[Figure]:
    name = f"audit window, {rows:,} rows"
    out = [
        Figure(name, action, seconds, "s", _TARGETS[action][0], seconds <= _TARGETS[action][1])
        for action, seconds in figures.items()
    ]
    out.append(Figure(name, "peak memory (RSS)", rss_mb, "MB", "< 200 MB", rss_mb < 200, f"{calls:,} calls"))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
