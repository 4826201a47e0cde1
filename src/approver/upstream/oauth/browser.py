"""Opening an authorization URL in the system browser, never through a shell.

Which URLs approver sends anywhere during a sign-in is decided here too: https, except for
a server on this machine (``localhost``, 127.0.0.0/8, ``::1``), where plain http is allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shlex
import subprocess
import sys
import webbrowser
from urllib.parse import urlsplit

from mcp.client.auth import OAuthFlowError

_BROWSER_COMMAND_TIMEOUT = 120.0
"""Seconds a ``$BROWSER`` command may take (a terminal browser runs until the person quits it)."""


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_sign_in_url(url: str, what: str) -> None:
    """Raise OAuthFlowError unless ``url`` is https, or http to this machine."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return
    raise OAuthFlowError(
        f"approver signs in only over https (plain http only to this machine); the {what} is {url!r}"
    )


def can_open_browser() -> bool:
    """Whether :func:`open_in_browser` has a browser to try: ``$BROWSER``, a desktop, macOS or Windows.

    Without one, a text-mode browser could take over the terminal, so the URL is only printed.
    """
    if os.environ.get("BROWSER"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


async def open_in_browser(url: str) -> bool:
    """Open ``url`` with :mod:`webbrowser` (which honours ``$BROWSER``); False when none opened it."""
    check_sign_in_url(url, "authorization address")
    if not can_open_browser():
        return False
    commands = [command for command in os.environ.get("BROWSER", "").split(os.pathsep) if command.strip()]
    if commands:
        # Read now, not cached as webbrowser does; each command runs until it exits, off the event loop.
        return await asyncio.to_thread(_run_browser_commands, commands, url)
    try:
        return await asyncio.to_thread(webbrowser.open, url, 2)
    except webbrowser.Error:
        return False


def _run_browser_commands(commands: list[str], url: str) -> bool:
    """Try each ``$BROWSER`` command (``%s`` is the URL, else it is appended); True at the first success."""
    for command in commands:
        try:
            words = shlex.split(command)
        except ValueError:
            continue
        argv = [word.replace("%s", url) for word in words] if "%s" in command else [*words, url]
        try:
            if subprocess.run(argv, check=False, timeout=_BROWSER_COMMAND_TIMEOUT).returncode == 0:
                return True
        except (OSError, subprocess.TimeoutExpired):
            continue
    return False
