"""``approver login|logout SERVER``: sign in to a remote server that asks for it, or forget the sign-in."""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from typing import Any, Final

from approver.config.paths import Paths

COMMANDS: Final = ("login", "logout")
"""The commands this module runs."""


def add_parsers(commands: Any) -> None:
    """Add this module's commands to the top-level subparsers ``commands``."""
    login = commands.add_parser(
        "login", help="sign in to a remote server (OAuth); prints the address to open in a browser"
    )
    login.add_argument("server", help="server name in servers.json")
    login.add_argument(
        "--no-browser", action="store_true", help="only print the address; do not open a browser"
    )
    login.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the browser (default 300)"
    )
    logout = commands.add_parser(
        "logout", help="forget the sign-in to a remote server (tokens, registration)"
    )
    logout.add_argument("server", help="server name in servers.json")


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run the command ``args.command``."""
    from approver.config.servers import SecretResolver, load_servers

    servers = load_servers(paths.servers_file, SecretResolver())
    config = servers.get(args.server)
    if config is None:
        names = ", ".join(s.name for s in servers.servers) or "none"
        print(
            f"approver: no server {args.server!r} in {paths.servers_file} (servers: {names})", file=sys.stderr
        )
        return 1
    if not config.signs_in:
        reason = (
            "it is a stdio server"
            if config.transport == "stdio"
            else "it uses client credentials (no person signs in)"
            if config.uses_client_credentials
            else 'it has "oauth": false'
            if config.oauth_off
            else "its Authorization header is set in servers.json"
        )
        print(f"approver: approver does not sign in to {config.name}: {reason}", file=sys.stderr)
        return 1
    return _login(args, config) if args.command == "login" else _logout(config)


def _login(args: argparse.Namespace, config: Any) -> int:
    from approver.upstream.oauth.browser import can_open_browser, open_in_browser
    from approver.upstream.oauth.loopback import LoopbackListener
    from approver.upstream.oauth.signin import SignInError, sign_in

    use_browser = not args.no_browser and can_open_browser()

    async def show(url: str) -> None:
        print(f"To sign in to {config.name}, open this address in a browser:\n\n  {url}\n", file=sys.stderr)
        if use_browser and await open_in_browser(url):
            print("(opened in your browser)", file=sys.stderr)
        if sys.stdin.isatty():
            print(
                "If the browser runs on another machine, finish there and paste the address it ends on "
                "(http://127.0.0.1:...) here.",
                file=sys.stderr,
            )
        print("Waiting for the sign-in...", file=sys.stderr, flush=True)

    def take_pasted(listener: LoopbackListener) -> None:
        if not sys.stdin.isatty():
            return
        loop = asyncio.get_running_loop()

        def read() -> None:
            line = sys.stdin.readline()
            if line.strip():
                loop.call_soon_threadsafe(listener.deliver, line)

        threading.Thread(target=read, name="approver-login-paste", daemon=True).start()

    async def go() -> int:
        try:
            result = await sign_in(config, show, browser_wait=args.timeout, listener_ready=take_pasted)
        except SignInError as exc:
            print(f"approver: {exc}", file=sys.stderr)
            return 1
        scope = f" (scope: {result.scope})" if result.scope else ""
        print(
            f"Signed in to {result.server}{scope}: {result.tools} tool(s). The credentials are in "
            f"{result.where}; a running approver uses them within seconds."
        )
        return 0

    return asyncio.run(go())


def _logout(config: Any) -> int:
    from approver.upstream.oauth.signin import sign_out
    from approver.upstream.oauth.store import CredentialsError, CredentialStore

    store = CredentialStore()
    try:
        removed = asyncio.run(sign_out(config, store))
    except CredentialsError as exc:
        print(f"approver: {exc}", file=sys.stderr)
        return 2
    if not removed:
        print(f"approver: not signed in to {config.name}; nothing to forget", file=sys.stderr)
        return 0
    print(
        f"Signed out of {config.name}: its tokens and registration are gone from {store.where}. A running "
        "approver keeps the connection it has until the server ends it or you restart the server "
        "(Servers window, Restart). To withdraw approver's access at the provider as well, remove it "
        "in your account's settings there (for GitHub: Settings, Applications)."
    )
    return 0
