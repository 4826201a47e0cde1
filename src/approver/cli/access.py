"""``approver url|token|connect|hook``: how a client reaches the gateway, with its own token."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Final

from approver.config.paths import Paths
from approver.gateway.front import DEFAULT_PORT

COMMANDS: Final = ("url", "token", "connect", "hook")
"""The commands this module runs."""


def add_parsers(commands: Any) -> None:
    """Add this module's commands to the top-level subparsers ``commands``."""
    for name, text in (
        ("url", "print the MCP URL (with an embedded token) for a named client"),
        ("token", "print the bearer token of a named client, creating it if needed"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--client", default="default", help="client name recorded with its calls (default: default)"
        )
        if name == "url":
            sub.add_argument(
                "--plain",
                action="store_true",
                help="print the URL without a token (use with a bearer header)",
            )
        change = sub.add_mutually_exclusive_group()
        change.add_argument(
            "--rotate",
            action="store_true",
            help="replace the client's token with a new one; the old one stops working at once",
        )
        if name == "token":
            change.add_argument(
                "--revoke",
                action="store_true",
                help="delete the client's token; it stops working at once, also in a running approver",
            )

    connect = commands.add_parser(
        "connect", help="stdio bridge to the running gateway, for stdio-only clients"
    )
    connect.add_argument(
        "--client", default="stdio", help="client name recorded with its calls (default: stdio)"
    )
    hook = commands.add_parser(
        "hook",
        help="a coding agent's tool-call hook: hands each of its own tool calls to the running approver",
        description="Run by the agent before each tool call (installed by `approver install claude-code "
        "--hooks`): reads the call as JSON on stdin and prints allow, deny or ask.",
    )
    hook.add_argument("agent", choices=("claude-code",), help="the agent whose hook this is: claude-code")
    hook.add_argument(
        "--client", default="claude-code", help="client name recorded with its calls (default: claude-code)"
    )
    hook.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="the hook's timeout in the agent's settings, in seconds (default: 600, as install writes); "
        "approver answers before it",
    )


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run the command ``args.command``."""
    handler = {
        "url": _url,
        "token": _token,
        "connect": _connect,
        "hook": _hook,
    }[args.command]
    return handler(args, paths)


def _token_store(paths: Paths) -> Any:
    from approver.config.tokens import TokenStore

    paths.ensure()
    return TokenStore(paths.tokens_file)


def _running_port(paths: Paths) -> tuple[int, bool]:
    from approver.service import read_runtime

    info = read_runtime(paths)
    return (info.port, True) if info is not None else (DEFAULT_PORT, False)


def _url(args: argparse.Namespace, paths: Paths) -> int:
    from approver.service import HOST, client_url

    store = _token_store(paths)
    token = store.rotate(args.client) if args.rotate else store.get_or_create(args.client)
    if args.rotate:
        print(_rotated(args.client), file=sys.stderr)
    port, running = _running_port(paths)
    print(f"http://{HOST}:{port}/mcp" if args.plain else client_url(port, token))
    if not running:
        print(
            "approver: the gateway is not running; this is its default port. Start it with `approver serve`.",
            file=sys.stderr,
        )
    print(f"approver: {store.storage_note}", file=sys.stderr)
    return 0


def _token(args: argparse.Namespace, paths: Paths) -> int:
    from approver.service import client_url

    store = _token_store(paths)
    if args.revoke:
        if not store.revoke(args.client):
            print(f"approver: no client named {args.client!r} has a token", file=sys.stderr)
            return 1
        print(
            f"approver: revoked the token of {args.client}: it no longer works, also in a running approver. "
            f"A client set up with `approver connect --client {args.client}` gets a new token when it next "
            "starts; uninstall it to keep it out.",
            file=sys.stderr,
        )
        return 0
    if args.rotate:
        token = store.rotate(args.client)
        print(token)
        port, _ = _running_port(paths)
        print(_rotated(args.client), file=sys.stderr)
        print(f"approver: its URL is now {client_url(port, token)}", file=sys.stderr)
        return 0
    print(store.get_or_create(args.client))
    print(f"approver: {store.storage_note}", file=sys.stderr)
    return 0


def _rotated(client: str) -> str:
    return (
        f"approver: {client} has a new token; the old one no longer works, also in a running approver. "
        f"Put the new token or URL into clients that use it; clients set up with `approver connect "
        f"--client {client}` (the stdio bridge) pick it up by themselves."
    )


def _connect(args: argparse.Namespace, paths: Paths) -> int:
    from approver.gateway.bridge import run_bridge
    from approver.service import read_runtime

    token = _token_store(paths).get_or_create(args.client)

    def find() -> str | None:
        info = read_runtime(paths)
        return info.url if info is not None else None

    def current() -> str | None:
        found: str | None = _token_store(paths).get(args.client)
        return found

    asyncio.run(run_bridge(find, token, current_token=current))
    return 0


def _hook(args: argparse.Namespace, paths: Paths) -> int:
    from approver.agents.hook import Gateway, main
    from approver.gateway.runtime import read_runtime

    def find() -> Gateway | None:
        info = read_runtime(paths)
        if info is None:
            return None
        token: str = _token_store(paths).get_or_create(args.client)
        return Gateway(info.port, token)

    return main(find, args.timeout)
