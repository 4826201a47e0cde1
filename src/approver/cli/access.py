"""``approver url|token|connect``: how a client reaches the gateway, with its own token."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Final

from approver.config.paths import Paths
from approver.gateway.front import DEFAULT_PORT

COMMANDS: Final = ("url", "token", "connect")
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

    connect = commands.add_parser(
        "connect", help="stdio bridge to the running gateway, for stdio-only clients"
    )
    connect.add_argument(
        "--client", default="stdio", help="client name recorded with its calls (default: stdio)"
    )


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run the command ``args.command``."""
    handler = {
        "url": _url,
        "token": _token,
        "connect": _connect,
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
    token = store.get_or_create(args.client)
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
    store = _token_store(paths)
    print(store.get_or_create(args.client))
    print(f"approver: {store.storage_note}", file=sys.stderr)
    return 0


def _connect(args: argparse.Namespace, paths: Paths) -> int:
    from approver.gateway.bridge import run_bridge
    from approver.service import read_runtime

    token = _token_store(paths).get_or_create(args.client)

    def find() -> str | None:
        info = read_runtime(paths)
        return info.url if info is not None else None

    asyncio.run(run_bridge(find, token))
    return 0
