"""``approver doctor``: one line per check (ok, warn or fail) and what to fix; exit 1 on a failure."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Final

from approver.config.paths import Paths
from approver.gateway.front import DEFAULT_PORT

EXIT_FAILED: Final = 1
"""At least one check failed."""


def add_parser(commands: Any) -> None:
    """Add the ``doctor`` command to the top-level subparsers ``commands``."""
    doctor = commands.add_parser("doctor", help="check Qt, display, tray, keyring, port, config and servers")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to check when no gateway is running (default {DEFAULT_PORT})",
    )
    doctor.add_argument(
        "--timeout", type=float, default=20.0, help="seconds to wait for Qt and each server (default 20)"
    )
    doctor.add_argument("--no-servers", action="store_true", help="do not start the upstream servers")


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run every check and print the result; 1 if any check failed, else 0."""
    from approver.cli.doctor import Status, as_json, run_checks

    checks = run_checks(paths, args.port, upstreams=not args.no_servers, timeout=args.timeout)
    if args.json:
        print(json.dumps(as_json(checks), indent=2, ensure_ascii=False))
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            line = f"{check.status.value:<4}  {check.name:<{width}}  {check.detail}"
            print(line + (f"; fix: {check.fix}" if check.fix else ""))
        failed = sum(check.status is Status.FAIL for check in checks)
        warned = sum(check.status is Status.WARN for check in checks)
        print(f"{failed} failed, {warned} warning(s), {len(checks) - failed - warned} ok", file=sys.stderr)
    return EXIT_FAILED if any(check.status is Status.FAIL for check in checks) else 0
