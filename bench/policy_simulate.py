"""Policy simulation over a large audit log: ``approver policy simulate``'s replay, timed.

Usage: ``python bench/policy_simulate.py [ROWS] [--db PATH] [--json]`` (default 1,000,000 event
rows; pass ``--db`` to reuse a generated log between runs, as ``run_all.py`` does with the one it
keeps under the benchmark cache). The candidate policy differs from the generated log's on
purpose: conditions on paths, commands and URLs (so arguments are read for those tools only),
rules for one client, a glob for another. Figures: the wall time of the whole replay, calls per
second, the time to preview one "Always approve…" rule over a tool's last 200 calls, and this
process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from common import Figure, print_figures

from approver.audit.log import AuditLog
from approver.policy.engine import Policy
from approver.policy.simulate import logged_calls, preview_rule, simulate_log

CANDIDATE: Final[dict[str, Any]] = {
    "version": "1",
    "default": "require_approval",
    "risk_defaults": {
        "read": "allow",
        "write": "require_approval",
        "execute": "require_approval",
        "destructive": "deny",
        "financial": "deny",
        "other": "allow",
    },
    "tools": {
        "files__read_file": {
            "action": "allow",
            "conditions": [{"when": {"path": {"path_under": "/home/dev/projects/token"}}, "action": "deny"}],
        },
        "files__write_file": {
            "action": "require_approval",
            "conditions": [
                {
                    "clients": ["cursor"],
                    "when": {"path": {"path_under": "/home/dev/projects"}},
                    "action": "allow",
                }
            ],
        },
        "shell__run_command": {
            "action": "require_approval",
            "conditions": [{"when": {"command": {"command_prefix": "pytest"}}, "action": "allow"}],
        },
        "browser__fetch": {
            "action": "require_approval",
            "conditions": [{"when": {"url": {"url_host": "example.org"}}, "action": "allow"}],
        },
        "*": {"action": "deny", "clients": ["nightly-batch"]},
        "git__*": {"action": "allow", "clients": ["nightly-batch"]},
    },
}
"""A candidate policy that reads arguments for four tools and treats one client apart."""

RULE: Final = 'tools["files__write_file"].conditions[0]'


def main() -> int:
    """Command line: measure, then print a table (or JSON lines with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--db", type=Path, help="log file to reuse (generated when missing)")
    parser.add_argument("--json", action="store_true", help="print JSON lines (for run_all.py)")
    args = parser.parse_args()
    candidate = Policy.from_data(CANDIDATE)
    with tempfile.TemporaryDirectory() as temp:
        db = args.db or Path(temp) / "audit.db"
        if not db.exists():
            started = time.perf_counter()
            code = (
                "import sys, pathlib; from approver.testing.auditgen import generate_audit_log as generate; "
                "generate(pathlib.Path(sys.argv[1]), int(sys.argv[2]))"
            )
            subprocess.run([sys.executable, "-c", code, str(db), str(args.rows)], check=True)
            print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with AuditLog(db, read_only=True) as log:
            started = time.perf_counter()
            result = simulate_log(log, candidate)
            replay_s = time.perf_counter() - started
            started = time.perf_counter()
            recent = list(logged_calls(log.replay(tool="files__write_file", newest=200)))
            preview = preview_rule(recent, candidate, RULE)
            preview_s = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    calls = result.replayed + sum(result.skipped.values())
    name = f"policy simulate, {args.rows:,} rows"
    figures = [
        Figure(name, "replay every call", replay_s, "s", "<= 30 s", replay_s <= 30, f"{calls:,} calls"),
        Figure(name, "calls replayed per second", calls / replay_s, "calls/s"),
        Figure(name, "rule preview, last 200 calls of a tool", preview_s, "s", "<= 1 s", preview_s <= 1),
        Figure(name, "peak memory (RSS)", rss_mb, "MB", "< 200 MB", rss_mb < 200),
    ]
    if args.json:
        print_figures(figures, as_json=True)
        return 0
    print(
        f"{calls:,} calls in {args.rows:,} event rows: {result.changed:,} would change, "
        f"{result.unchanged:,} unchanged, {sum(c.count for c in result.unknown.values()):,} unknown"
    )
    for (before, after), change in sorted(result.changes.items()):
        print(f"  {before} -> {after}: {change.count:,}")
    print(f"preview: {preview.summary()}")
    print_figures(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
