"""``approver import|install|uninstall CLIENT``: bring a client's servers into approver, route it through.

Each command prints what it would change (a unified diff) and asks before writing, unless
``--yes``; ``--dry-run`` prints and stops. Without a terminal to ask on, a command that would
write needs ``--yes``.

Exit status: 0 done (or nothing to do), 1 not confirmed or refused, 2 an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from approver.config.paths import Paths
from approver.errors import ApproverError

EXIT_REFUSED: Final = 1
"""The user said no, or a safety check refused (use ``--force`` where offered)."""

CLIENT_NAMES: Final = ("claude-desktop", "claude-code", "cursor", "vscode", "windsurf")
"""The clients approver knows, as named on the command line."""

TOKEN_PLACEHOLDER: Final = "<token>"  # noqa: S105 -- a placeholder, not a password
"""Stands in for a client token in printed diffs."""


def add_parsers(commands: Any) -> None:
    """Add ``import``, ``install`` and ``uninstall`` to the top-level subparsers ``commands``."""
    for name, text in (
        ("import", "add a client's MCP servers to servers.json (literal secrets go to the keyring)"),
        ("install", "rewrite a client's config so it reaches its servers only through approver"),
        ("uninstall", "restore a client's config from the backup approver install made"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("client", choices=CLIENT_NAMES, metavar="CLIENT", help=", ".join(CLIENT_NAMES))
        sub.add_argument("--path", help="the client's config file (default: its user-level file)")
        sub.add_argument("--dry-run", action="store_true", help="show what would change and stop")
        sub.add_argument("--yes", "-y", action="store_true", help="apply without asking")
        if name in ("install", "uninstall"):
            sub.add_argument(
                "--hooks",
                action="store_true",
                help="claude-code only: "
                + (
                    "hand Claude Code's own tool calls (Bash, Write, ...) to approver with a PreToolUse "
                    "hook in ~/.claude/settings.json (--path for a project's .claude/settings.json)"
                    if name == "install"
                    else "remove approver's hook from Claude Code's settings (restores the backup)"
                ),
            )
        if name == "install":
            sub.add_argument(
                "--http",
                action="store_true",
                help="use the gateway's URL and a bearer token instead of the stdio bridge "
                "(Claude Code, Cursor, VS Code, Windsurf)",
            )
            sub.add_argument(
                "--force",
                action="store_true",
                help="also drop servers approver does not know (they stay in the backup)",
            )
        if name == "uninstall":
            sub.add_argument(
                "--force",
                action="store_true",
                help="restore the backup even if the file changed since install",
            )


def shown_diff(diff: str) -> str:
    """A diff as approver prints it: secret values masked (a client file may hold literal tokens)."""
    from approver.audit.redact import Redactor

    return Redactor().redact_config(diff)


class _Declined(Exception):
    pass


def _confirm(args: argparse.Namespace, question: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise ApproverError(
            "nothing was changed: pass --yes to apply without asking, or --dry-run to only look"
        )
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise _Declined


def _client_path(args: argparse.Namespace) -> tuple[Any, Path]:
    from approver.clients.formats import client_format

    client = client_format(args.client)
    if getattr(args, "hooks", False):
        from approver.clients.hooks import settings_path

        if client.name != "claude-code":
            raise ApproverError(f"--hooks is for claude-code; {client.title} has no hook approver installs")
        default = settings_path()
    else:
        default = client.default_path()
    path = Path(args.path).expanduser().absolute() if args.path else default
    return client, path


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run ``import``, ``install`` or ``uninstall`` as parsed into ``args``."""
    handler = {"import": _import, "install": _install, "uninstall": _uninstall}[args.command]
    try:
        return handler(args, paths)
    except _Declined:
        print("approver: nothing was changed", file=sys.stderr)
        return EXIT_REFUSED


def _import(args: argparse.Namespace, paths: Paths) -> int:
    from approver.clients.formats import read_client_file
    from approver.clients.importing import apply_import, plan_import
    from approver.config.secrets import SecretStore

    client, path = _client_path(args)
    source = read_client_file(client, path)
    if not source.exists:
        raise ApproverError(f"there is no {client.title} config at {path}; name the file with --path")
    store = SecretStore(paths)
    plan = plan_import(source, paths.servers_file, store, Path.home())
    verb = "would add" if args.dry_run else "adds"
    if plan.changed:
        print(shown_diff(plan.diff()), end="")
        print(f"{client.title} -> servers.json {verb}: {', '.join(plan.added)}")
    for move in plan.secrets:
        where = "already in the keyring as" if move.stored else "moves into the keyring as"
        print(f"  literal secret {move.where} {where} {move.name}")
    for name in plan.unchanged:
        print(f"  {name}: already in servers.json")
    for name, reason in plan.skipped:
        print(f"  {name}: not imported: {reason}")
    for note in plan.notes:
        print(f"  note: {note}")
    if not plan.changed:
        print(f"approver: nothing to import from {path}")
        return 0
    if args.dry_run:
        return 0
    _confirm(args, f"Add {len(plan.added)} server(s) to {paths.servers_file}?")
    paths.ensure()
    apply_import(plan, store)
    print(
        f"approver: added {len(plan.added)} server(s) to {paths.servers_file}; a running approver starts "
        "them within a second"
    )
    print(f"approver: next, `approver install {client.name}` routes {client.title} through approver")
    return 0


def _route(args: argparse.Namespace, paths: Paths, client: Any) -> Any:
    from approver.clients.routing import Route
    from approver.config.autostart import default_command

    default_data = Paths.resolve(environ={}).data_dir
    data_dir = None if paths.data_dir == default_data else paths.data_dir
    if not args.http:
        return Route(client.name, tuple(default_command()), data_dir)
    from approver.config.tokens import TokenStore
    from approver.gateway.front import DEFAULT_PORT, MCP_PATH
    from approver.service import HOST, read_runtime

    info = read_runtime(paths)
    port = info.port if info is not None else DEFAULT_PORT
    if info is None:
        print(f"approver: the gateway is not running; using its default port {port}", file=sys.stderr)
    token = TOKEN_PLACEHOLDER
    if not args.dry_run:
        paths.ensure()
        token = TokenStore(paths.tokens_file).get_or_create(client.name)
    return Route(client.name, tuple(default_command()), data_dir, f"http://{HOST}:{port}{MCP_PATH}", token)


def _install_hook(args: argparse.Namespace, paths: Paths) -> int:
    from approver.clients.hooks import hook_command, plan_hook_install
    from approver.clients.routing import apply_install
    from approver.clients.setup import bridge_data_dir
    from approver.config.autostart import default_command

    _, path = _client_path(args)
    change = plan_hook_install(path, hook_command(default_command(), bridge_data_dir(paths)))
    if not change.changed:
        print(f"approver: {change.message}; nothing to change")
        return 0
    print(shown_diff(change.diff()), end="")
    print(change.message)
    if args.dry_run:
        return 0
    _confirm(args, f"Rewrite {change.path}?")
    backup = apply_install(change)
    saved = f"the original is saved as {backup}" if backup else "there was no file before"
    print(
        f"approver: installed the hook; {saved}. Claude Code uses it from its next session; "
        "`approver uninstall claude-code --hooks` undoes it"
    )
    return 0


def _install(args: argparse.Namespace, paths: Paths) -> int:
    from approver.clients.routing import apply_install, plan_install
    from approver.config.servers import read_servers_data

    if args.hooks:
        return _install_hook(args, paths)
    client, path = _client_path(args)
    known = set(read_servers_data(paths.servers_file).get("mcpServers", {}))
    route = _route(args, paths, client)
    change = plan_install(client, path, route, known)
    if not change.changed:
        print(f"approver: {change.message}; nothing to change")
        return 0
    diff = change.diff()
    print(shown_diff(diff.replace(route.token, TOKEN_PLACEHOLDER) if route.token else diff), end="")
    print(change.message)
    if change.unknown:
        print(
            f"approver: servers.json does not have {', '.join(change.unknown)}: run `approver import "
            f"{client.name}` first, or use --force to drop them from {client.title} "
            "(they stay in the backup)",
            file=sys.stderr,
        )
    if args.dry_run:
        return 0
    if change.unknown and not args.force:
        return EXIT_REFUSED
    _confirm(args, f"Rewrite {change.path}?")
    backup = apply_install(change, drop_unknown=args.force)
    saved = f"the original is saved as {backup}" if backup else "there was no file before"
    print(
        f"approver: installed; {saved}. Restart {client.title} to apply; "
        f"`approver uninstall {client.name}` undoes it"
    )
    if route.token:
        print(f"approver: {change.path} now holds {client.name}'s token: keep it out of version control")
    return 0


def _uninstall(args: argparse.Namespace, paths: Paths) -> int:
    from approver.clients.routing import apply_uninstall, plan_uninstall

    client, path = _client_path(args)
    change = plan_uninstall(client, path)
    if change.record is None:
        print(f"approver: {change.message}")
        return 0
    print(shown_diff(change.diff()), end="")
    print(change.message)
    if change.conflict:
        print(f"approver: {change.conflict}", file=sys.stderr)
    if args.dry_run:
        return 0
    if change.conflict and not args.force:
        return EXIT_REFUSED
    _confirm(args, f"Restore {change.path}?")
    apply_uninstall(change, force=args.force)
    print(f"approver: restored {change.path}. Restart {client.title} to apply")
    return 0
