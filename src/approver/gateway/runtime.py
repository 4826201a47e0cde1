"""Which gateway is running: what it publishes in its runtime file, ``gateway.json``.

A running gateway writes its port and process id to ``gateway.json`` in the data directory;
``approver url``, ``connect`` and ``hook`` read it to find the gateway. This module imports
nothing heavy, so a command that only needs the port (the hook, which must answer within
seconds) starts fast.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Final

from approver.config.paths import Paths
from approver.gateway.front import MCP_PATH

HOST: Final = "127.0.0.1"
"""The only address the gateway listens on."""


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    """What a running gateway publishes in its runtime file."""

    port: int
    pid: int
    started: float
    app: str = "serve"
    """``desktop`` for the desktop app, ``serve`` for ``approver serve``."""

    @property
    def url(self) -> str:
        """The MCP endpoint (without a token)."""
        return f"http://{HOST}:{self.port}{MCP_PATH}"


def read_runtime(paths: Paths) -> RuntimeInfo | None:
    """The running gateway's info, or None when none is running."""
    try:
        data = json.loads(paths.runtime_file.read_text("utf-8"))
        info = RuntimeInfo(
            int(data["port"]), int(data["pid"]), float(data.get("started", 0)), str(data.get("app", "serve"))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(info.pid):
        return None
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
