"""``approver audit verify|export|tail``: read the audit log without writing to it."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final

from approver.config.paths import Paths

COMMANDS: Final = ("audit",)
"""The commands this module runs."""


def add_parsers(commands: Any) -> None:
    """Add this module's commands to the top-level subparsers ``commands``."""
    audit = commands.add_parser("audit", help="audit log commands")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    audit_commands.add_parser("verify", help="check the hash chain; exit 1 naming the first bad row")
    export = audit_commands.add_parser("export", help="export rows as CSV or JSON lines")
    export.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    export.add_argument("--since", help="e.g. 30m, 2h, 7d or an ISO date")
    export.add_argument("--output", "-o", help="file to write (default: stdout)")
    tail = audit_commands.add_parser("tail", help="print the latest rows; --follow keeps printing new ones")
    tail.add_argument("-n", type=int, default=20, help="how many rows (default 20)")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new rows")


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run the command ``args.command``."""
    handler = {
        "audit": _audit,
    }[args.command]
    return handler(args, paths)


def _audit(args: argparse.Namespace, paths: Paths) -> int:
    from approver.audit.log import AuditLog, parse_since

    if not paths.audit_db.exists():
        print(f"approver: no audit log yet at {paths.audit_db}", file=sys.stderr)
        return 0
    # Read-only: the CLI never writes to, or holds a write lock on, the running gateway's log.
    with AuditLog(paths.audit_db, read_only=True) as log:
        if args.audit_command == "verify":
            report = log.verify()
            if report.ok:
                print(f"ok: {report.rows} rows, hash chain intact; last hash {report.last_hash}")
                return 0
            print(f"TAMPERED: row {report.first_bad_id}: {report.problem}", file=sys.stderr)
            return 1
        if args.audit_command == "export":
            since = parse_since(args.since) if args.since else None
            if args.output:
                from pathlib import Path

                from approver.config.paths import private_output

                # Private like the log it comes from: arguments can hold what redaction cannot see.
                try:
                    with private_output(Path(args.output)) as out:
                        count = log.export(out, args.format, since=since)
                except OSError as exc:
                    print(f"approver: could not write {args.output}: {exc.strerror or exc}", file=sys.stderr)
                    return 1
            else:
                count = log.export(sys.stdout, args.format, since=since)
            print(f"approver: exported {count} rows", file=sys.stderr)
            return 0
        return _tail(log, args.n, args.follow)


def _tail(log: Any, count: int, follow: bool) -> int:
    import time

    last = max(0, log.last_id - count)
    while True:
        for row in log.tail(after_id=last, limit=1000):
            last = row["id"]
            print(_format_row(row))
        if not follow:
            return 0
        sys.stdout.flush()
        time.sleep(1.0)


def _format_row(row: dict[str, Any]) -> str:
    from approver.visible import reveal_text

    # One line per row, and nothing a terminal would interpret: names and reasons come from
    # clients and servers, so control, bidi and other hidden characters are shown as <U+XXXX>.
    if row.get("kind") == "decision":
        line = (
            f"{row['ts']}  {row['client']}  {row['tool']}  {row['decision']} by {row['decided_by']}"
            f" ({row['rule']}): {row['reason']}"
        )
        return reveal_text(line)
    if row.get("kind") == "edit":
        who = f"{row['ts']}  {row['client']}  {row['tool']}"
        return reveal_text(f"{who}  edited by {row['decided_by']}: {row['arguments']}")
    if row.get("kind") == "review":
        verdict = "result passed on" if row["decision"] == "allow" else "result withheld"
        who = f"{row['ts']}  {row['client']}  {row['tool']}"
        return reveal_text(f"{who}  {verdict} by {row['decided_by']}: {row['reason']}")
    if row.get("outcome") == "agent-runs":
        who = f"{row.get('client') or ''}  {row.get('tool') or ''}"
        return reveal_text(f"{row['ts']}  {who}  -> agent-runs (the agent runs the tool itself)")
    duration = row["duration_ms"] or 0.0
    who = f"{row.get('client') or ''}  {row.get('tool') or ''}"
    error = f": {row['error']}" if row.get("error") else ""
    return reveal_text(f"{row['ts']}  {who}  -> {row['outcome']} ({duration:.1f} ms){error}")
