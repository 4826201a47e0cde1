"""What a person sees of an upstream: its state, its status, and why its connection failed, in words."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
from mcp.shared.exceptions import MCPError


class UpstreamState(enum.StrEnum):
    """Lifecycle of an upstream connection."""

    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    RESTARTING = "restarting"
    NEEDS_SIGN_IN = "needs sign-in"
    """A remote server wants a person to sign in; it waits for that instead of retrying."""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    """What a person sees of one upstream."""

    name: str
    state: UpstreamState
    error: str | None
    restarts: int
    tools: int
    retry_in: float | None = None


class UpstreamUnavailable(Exception):
    """The upstream is not connected right now; the message says why."""


def describe_error(exc: BaseException, initialize_timeout: float) -> str:
    """A one-line description of why a connection failed, without a traceback."""
    if isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
        if inner:
            return describe_error(inner[0], initialize_timeout)
    if isinstance(exc, TimeoutError):
        return f"no answer to initialize within {initialize_timeout:.0f} s"
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    if isinstance(exc, httpx2.ConnectError):
        return f"cannot connect: {exc}"
    if isinstance(exc, MCPError):
        return f"protocol error: {exc}"
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def last_lines(path: Path, count: int) -> str:
    """The last ``count`` non-empty lines of a server's stderr log, joined with ``|``."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    lines = [line for line in lines if line.strip() and not line.startswith("--- ")]
    return " | ".join(lines[-count:])
