"""Resource limits under attack: every limit approver sets, hit on purpose against real processes.

Each scenario attacks one limit (see :mod:`~approver.testing.limits_upstream` for hostile
upstreams and :mod:`~approver.testing.limits_http` for hostile clients and local programs) and
returns a :class:`~approver.testing.limit_report.LimitReport`: the limit, the attack, what was
measured, and any expectation that did not hold. ``python -m approver.testing.limits run
[NAME...]`` prints the reports as JSON lines; ``scripts/reliability_report.py`` writes their
figures to ``docs/RELIABILITY.md``. Linux only (the figures come from ``/proc``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final

import anyio

from approver.testing import limits_http, limits_upstream
from approver.testing.limit_report import LimitReport

__all__ = ["SCENARIOS", "LimitReport", "run_limits"]

Scenario = Callable[[Path], Awaitable[LimitReport]]

SCENARIOS: Final[dict[str, Scenario]] = {
    "long-line": limits_upstream.long_line,
    "endless-cursor": limits_upstream.endless_cursor,
    "list-changed-flood": limits_upstream.list_changed_flood,
    "half-sent-requests": limits_http.half_sent_requests,
    "slow-body": limits_http.slow_body,
    "header-flood": limits_http.header_flood,
    "sessions-per-client": limits_http.many_sessions,
    "calls-waiting-per-client": limits_http.many_waiting_calls,
    "hostile-redaction": limits_http.hostile_redaction,
}
"""Every scenario by name, in the order the report lists them."""


async def run_limits(root: Path, names: Sequence[str] | None = None) -> list[LimitReport]:
    """Run the named scenarios (all by default), each in a directory of its own under ``root``."""
    reports = []
    for name in names or SCENARIOS:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        reports.append(await SCENARIOS[name](folder))
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    """``run [NAME...]``: run scenarios and print one JSON report per line; exit 1 if a limit failed."""
    parser = argparse.ArgumentParser(prog="python -m approver.testing.limits", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run limits scenarios and print one JSON report per line")
    run.add_argument("names", nargs="*", choices=[*SCENARIOS, []], metavar="NAME", help=", ".join(SCENARIOS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="approver-limits-") as root:
        reports = anyio.run(run_limits, Path(root), args.names or None)
    for report in reports:
        print(report.to_json(), flush=True)
    return 0 if all(report.ok for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
