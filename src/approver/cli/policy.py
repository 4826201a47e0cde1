"""``approver policy check|simulate|rules``: validate, replay the audit log, list and remove rules."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from approver.config.paths import Paths
from approver.errors import ConfigError

if TYPE_CHECKING:
    from approver.policy.engine import Policy

COMMANDS: Final = ("policy",)
"""The commands this module runs."""

BUILT_IN_CLIENTS: Final = ("local",)
"""Client names that need no token: an in-process client is ``local``."""


def add_parsers(commands: Any) -> None:
    """Add this module's commands to the top-level subparsers ``commands``."""
    policy = commands.add_parser("policy", help="policy file commands")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file", nargs="?", help="policy file (default: the configured policy.json)")
    simulate = policy_commands.add_parser(
        "simulate", help="replay the audit log against a candidate policy and show what would change"
    )
    simulate.add_argument("file", help="the candidate policy file")
    simulate.add_argument(
        "--since", default="30d", help="replay calls since (30m, 12h, 30d, 2w or a date; default 30d)"
    )
    simulate.add_argument("--log", help="audit log to replay (default: this approver's)")
    rules = policy_commands.add_parser(
        "rules", help="list every rule with where it came from and its matches in the last 7 days"
    )
    rules.add_argument(
        "--remove",
        metavar="RULE",
        help="remove one rule, named as listed (e.g. 'tools[\"x\"].conditions[0]')",
    )
    rules.add_argument("--days", type=int, default=7, help="count matches over this many days (default 7)")
    rules.add_argument("--json", action="store_true", help="print the rules as JSON")


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run the command ``args.command``."""
    handler = {"check": _check, "simulate": _simulate, "rules": _rules}[args.policy_command]
    return handler(args, paths)


def _check(args: argparse.Namespace, paths: Paths) -> int:
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
    for warning in unknown_clients(policy, paths):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def unknown_clients(policy: Policy, paths: Paths) -> list[str]:
    """A warning for each client name or glob in ``policy`` that no client with a token has."""
    from approver.config.tokens import client_names

    try:
        known = [*client_names(paths.tokens_file), *BUILT_IN_CLIENTS]
    except ConfigError as exc:
        return [f"cannot check client names: {exc}"]
    listed = ", ".join(known)
    warnings = []
    for rule, pattern in policy.client_patterns():
        if any(fnmatch.fnmatchcase(client, pattern) for client in known):
            continue
        what = f"no client matches {pattern!r}" if _is_glob(pattern) else f"no client named {pattern!r}"
        warnings.append(
            f"{rule}: {what} has a token yet (clients: {listed}); the rule applies once one does "
            "(`approver url --client NAME` gives a client its token)"
        )
    return warnings


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def _simulate(args: argparse.Namespace, paths: Paths) -> int:
    from approver.audit.log import AuditLog, CallFilter, parse_since
    from approver.policy.engine import Policy
    from approver.policy.simulate import report, simulate_log
    from approver.visible import reveal_text

    candidate = Policy.from_file(Path(args.file))
    log_path = Path(args.log) if args.log else paths.audit_db
    if not log_path.exists():
        print(f"approver: no audit log at {log_path}: nothing to replay", file=sys.stderr)
        return 1
    since = parse_since(args.since)
    with AuditLog(log_path, read_only=True) as log:
        result = simulate_log(log, candidate, CallFilter(since=since))
    print("\n".join(reveal_text(line) for line in report(result, args.file, since)))
    for warning in unknown_clients(candidate, paths):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _rules(args: argparse.Namespace, paths: Paths) -> int:
    from approver.policy.editing import load_policy_data
    from approver.policy.rules import find_rule, list_rules, remove_rule

    file = paths.policy_file
    data = load_policy_data(file)
    if args.remove:
        rule = find_rule(data, args.remove)
        remove_rule(file, rule.pointer)
        print(f"removed {rule.name} from {file}; a running approver applies the change at once")
        return 0
    from approver.visible import reveal_text

    counts, note = _match_counts(paths, args.days)
    rules = list_rules(data)
    if args.json:
        found = [
            {
                "name": r.name,
                "pointer": r.pointer,
                "kind": r.kind,
                "summary": r.summary,
                "origin": r.origin,
                "matches": None if counts is None else counts.get(r.name, 0),
            }
            for r in rules
        ]
        print(json.dumps(found, indent=2, ensure_ascii=True))
        return 0
    source = str(file) if file.exists() else f"{file} (not written yet: the default policy)"
    print(f"Rules of {source}; matches over the last {args.days} days{note}:")
    for rule in rules:
        indent = "  " * (rule.depth + 1)
        matches = _matches(counts.get(rule.name, 0)) if counts is not None else "? matches"
        print(reveal_text(f"{indent}{rule.name}: {rule.summary}"))
        print(reveal_text(f"{indent}  from {rule.origin}; {matches}"))
    return 0


def _matches(count: int) -> str:
    return "1 match" if count == 1 else f"{count:,} matches"


def _match_counts(paths: Paths, days: int) -> tuple[dict[str, int] | None, str]:
    from approver.audit.log import AuditError, AuditLog, CallFilter

    if not paths.audit_db.exists():
        return {}, " (no audit log yet)"
    try:
        with AuditLog(paths.audit_db, read_only=True) as log:
            return log.rule_counts(CallFilter(since=datetime.now(UTC) - timedelta(days=days))), ""
    except AuditError as exc:
        return None, f" (the audit log cannot be read: {exc})"
