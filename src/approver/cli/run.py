"""``approver app|demo|serve``: run approver, as the desktop app or headless."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any, Final

from approver.approval.broker import DEFAULT_APPROVAL_TIMEOUT
from approver.config.paths import Paths
from approver.errors import ApproverError
from approver.gateway.front import DEFAULT_PORT

COMMANDS: Final = ("app", "demo", "serve")
"""The commands this module runs."""

DEMO_TOKENS: Final = "the demo keeps its token in its sandbox and never uses your keyring"
"""Why the demo's client token is in a file (said at start instead of a keyring warning)."""


def add_parsers(commands: Any) -> None:
    """Add this module's commands to the top-level subparsers ``commands``."""
    app = commands.add_parser("app", help="run the desktop app (tray, approval dialog); the default")
    app.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port on 127.0.0.1 (default: the one remembered in settings.json, else {DEFAULT_PORT})",
    )
    app.add_argument(
        "--approval-timeout",
        type=_seconds,
        default=DEFAULT_APPROVAL_TIMEOUT,
        metavar="SECONDS",
        help=f"deny a call nobody approves within this time (default {DEFAULT_APPROVAL_TIMEOUT:g})",
    )
    demo = commands.add_parser(
        "demo", help="try approver: the desktop app with a sandboxed demo server and a scripted agent"
    )
    demo.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    demo.add_argument("--pace", type=float, default=2.0, help="seconds between the agent's steps (default 2)")

    serve = commands.add_parser("serve", help="run the gateway headless (calls needing approval are denied)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (only loopback is allowed)"
    )


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run the command ``args.command``."""
    handler = {
        "app": _app,
        "demo": _demo,
        "serve": _serve,
    }[args.command]
    return handler(args, paths)


def _seconds(text: str) -> float:
    """An approval timeout in seconds: a number from 5 to 86400."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 5 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"expected 5 to 86400 seconds, got {text}")
    return value


# -- desktop -----------------------------------------------------------------------------------


def _no_display_reason() -> str | None:
    """Why a window cannot be shown here, or None when it can."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    if any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return None
    return "there is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set)"


def _load_desktop() -> Any:
    """The desktop launcher module, or an ApproverError saying why Qt cannot load."""
    try:
        from approver.ui import launch
    except ImportError as exc:
        from approver.cli.qt_probe import apt_hint

        raise ApproverError(
            f"the desktop app cannot start because Qt could not be loaded ({exc}). On Debian or "
            f"Ubuntu install the libraries Qt needs: {apt_hint(str(exc))}; or run the gateway without "
            "a window: approver serve. `approver doctor` checks the rest."
        ) from None
    return launch


def _app(args: argparse.Namespace, paths: Paths) -> int:
    reason = _no_display_reason()
    if reason is not None:
        print(
            f"approver: {reason}, so the desktop app cannot open; running the gateway headless instead "
            "(calls that need approval are denied; `approver serve` does this explicitly).",
            file=sys.stderr,
        )
        args.host = "127.0.0.1"
        if args.port is None:
            from approver.config.settings import load_preferences

            args.port = load_preferences(paths.settings_file).port or DEFAULT_PORT
        return _serve(args, paths)
    launch = _load_desktop()
    timeout = getattr(args, "approval_timeout", DEFAULT_APPROVAL_TIMEOUT)
    return int(launch.run_desktop(paths, launch.DesktopOptions(port=args.port, approval_timeout=timeout)))


def _demo(args: argparse.Namespace, paths: Paths) -> int:
    import shutil
    import tempfile

    from approver.config.tokens import TokenStore
    from approver.demo.agent import CLIENT_NAME, run_agent
    from approver.demo.sandbox import prepare_demo

    reason = _no_display_reason()
    if reason is not None:
        raise ApproverError(f"the demo shows approval dialogs, and {reason}")
    launch = _load_desktop()
    root = Path(tempfile.mkdtemp(prefix="approver-demo-"))
    try:
        setup = prepare_demo(root)
        # The demo never touches your keyring or your own config: its token lives in the sandbox.
        tokens = TokenStore(setup.paths.tokens_file, file_only=DEMO_TOKENS)

        async def agent(desktop: Any) -> None:
            def narrate(line: str) -> None:
                print(line, flush=True)
                desktop.window.show_notice("Demo", line)

            try:
                await run_agent(
                    desktop.service.url, tokens.get_or_create(CLIENT_NAME), pause=args.pace, say=narrate
                )
            except ApproverError as exc:
                narrate(f"The demo agent stopped: {exc}")
            else:
                narrate("The demo agent is done. Open Audit log… to see every decision; Quit ends the demo.")

        print(f"approver: demo sandbox in {setup.sandbox}; it is deleted when you quit.", file=sys.stderr)
        options = launch.DesktopOptions(port=args.port, token_store=tokens, companion=agent, show_window=True)
        return int(launch.run_desktop(setup.paths, options))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- serve -------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, paths: Paths) -> int:
    from approver.service import Service

    async def run() -> int:
        service = Service(paths, port=args.port, host=args.host)
        for line in service.describe_startup():
            print(f"approver: {line}", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows loops have no signal handlers
                loop.add_signal_handler(sig, stop.set)
        await service.start()
        print(f"approver: gateway listening on {service.url}", file=sys.stderr)
        print(
            "approver: running headless: calls the policy sends for approval are denied, "
            "because no approval window is attached",
            file=sys.stderr,
        )
        await stop.wait()
        print("approver: shutting down", file=sys.stderr)
        await service.stop()
        return 0

    return asyncio.run(run())
