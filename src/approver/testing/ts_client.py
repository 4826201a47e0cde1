"""An agent on the official TypeScript MCP SDK (``ts_agent/agent.mjs``), for tests and benchmarks.

Many MCP clients are built on ``@modelcontextprotocol/sdk``, whose requests time out after 60 s
by default whatever progress they hear. :func:`install` puts the pinned SDK (``ts_agent/``'s
``package.json`` and lock file) into a cache folder with ``npm ci``, once; :class:`TsAgent` runs
the scripted agent against a gateway and reads what it saw, one JSON event a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from approver.approval.held import RETRY_PHRASE

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SDK_VERSION: Final = "1.32.2"
"""The ``@modelcontextprotocol/sdk`` version the agent runs (pinned in ``ts_agent/package.json``)."""

AGENT_DIR: Final = Path(__file__).parent / "ts_agent"
RETRY_HINT: Final = RETRY_PHRASE
"""What approver's answer to a held call says; the agent (``agent.mjs``) calls again when it reads it."""
_FILES: Final = ("package.json", "package-lock.json", "agent.mjs")


def missing_tools() -> str | None:
    """Why the agent cannot run here (no ``node`` or ``npm`` on PATH), or None."""
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not found on PATH: install Node.js 18 or newer with npm"
    return None


def cache_root() -> Path:
    """Where installed agents are kept: ``$XDG_CACHE_HOME/approver-tests`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "approver-tests"


def install(root: Path | None = None) -> Path:
    """The folder holding the agent with its pinned SDK installed (``npm ci``, only the first time).

    The folder is named by a hash of the three files, so a changed lock file installs afresh.
    Raises RuntimeError with npm's output when the install fails.
    """
    digest = hashlib.sha256(b"".join((AGENT_DIR / name).read_bytes() for name in _FILES)).hexdigest()[:12]
    target = (root or cache_root()) / f"ts-agent-{SDK_VERSION}-{digest}"
    target.mkdir(parents=True, exist_ok=True)
    with _locked(target / ".lock"):
        if not (target / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json").exists():
            for name in _FILES:
                shutil.copyfile(AGENT_DIR / name, target / name)
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],  # noqa: S607
                cwd=target,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"npm ci failed in {target}:\n{done.stdout}\n{done.stderr}")
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Any:
    """One installer at a time (tests may run in parallel processes)."""
    if fcntl is None:
        yield
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


class TsAgent:
    """One run of the scripted agent; :attr:`events` fills as it reports, :meth:`finish` waits for it."""

    def __init__(self, folder: Path, config: Mapping[str, Any]) -> None:
        self.folder = folder
        self.config = dict(config)
        self.events: list[dict[str, Any]] = []
        self.stderr = ""
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()
        """Set whenever an event arrives (clear it before waiting again)."""

    async def start(self) -> None:
        """Start ``node agent.mjs`` with the config."""
        self._process = await asyncio.create_subprocess_exec(
            "node",
            str(self.folder / "agent.mjs"),
            json.dumps(self.config),
            cwd=self.folder,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        async for line in self._process.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "unreadable", "line": line.decode(errors="replace")})
            self.changed.set()

    async def finish(self) -> int:
        """Wait for the agent to exit; returns its exit code (stderr is in :attr:`stderr`)."""
        assert self._process is not None and self._reader is not None
        await self._reader
        assert self._process.stderr is not None
        self.stderr = (await self._process.stderr.read()).decode(errors="replace")
        return await self._process.wait()

    def kill(self) -> None:
        """Stop the agent now (test teardown)."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind, in order."""
        return [event for event in self.events if event.get("event") == kind]
