"""``approver policy check``: validate a policy file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from approver.config.paths import Paths
from approver.errors import ConfigError

COMMANDS: Final = ("policy",)
"""The commands this module runs."""


def add_parsers(commands: Any) -> None:
    """Add this module's commands to the top-level subparsers ``commands``."""
    policy = commands.add_parser("policy", help="policy file commands")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file", nargs="?", help="policy file (default: the configured policy.json)")


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run the command ``args.command``."""
    handler = {
        "policy": _policy,
    }[args.command]
    return handler(args, paths)


def _policy(args: argparse.Namespace, paths: Paths) -> int:
    from approver.policy.engine import Policy

    file = Path(args.file) if args.file else paths.policy_file
    if not args.file and not file.exists():
        print(f"ok: no policy file at {file}; the safe default policy is in force")
        return 0
    try:
        policy = Policy.from_file(file)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {file}: {len(policy.tool_patterns)} tool rules, default {policy.data.get('default', 'deny')}")
    return 0
