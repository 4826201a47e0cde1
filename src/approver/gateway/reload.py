"""Apply ``servers.json`` edits to the running gateway, touching only the servers whose entry changed.

:class:`ServersReload` owns the task of every running upstream. It watches the file's
modification time, as :class:`~approver.policy.file.PolicyFile` does for ``policy.json``; when the
file changes and loads cleanly it compares each enabled server's resolved entry with the running
one. A new (or newly enabled) server is started; a removed (or disabled) one is stopped and leaves
the catalog; a changed one is stopped and started again with its new entry; an unchanged one
keeps its connection. Clients are told when the lists they see changed. An invalid file changes
nothing: the running servers stay, and the reload's result says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

from approver.audit.redact import Redactor
from approver.config.servers import SecretResolver, ServerConfig, ServersConfig, load_servers
from approver.errors import ConfigError
from approver.events import ServersReloaded
from approver.gateway.catalog import Catalog
from approver.gateway.gateway import Gateway
from approver.upstream.connection import Upstream

logger = logging.getLogger(__name__)

WATCH_INTERVAL: Final = 1.0
"""Seconds between checks of ``servers.json``'s modification time."""

STOP_TIMEOUT: Final = 8.0
"""Seconds a stopping server gets to close (its process gets SIGTERM, then SIGKILL) before its
task is cancelled; a server still waiting for ``initialize`` notices a stop only then."""


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


class ServersReload:
    """The running upstreams, kept in step with ``servers.json``.

    ``upstreams`` is the service's own dict: it is changed in place, so everyone holding it sees
    the servers that run now. ``make`` builds an :class:`Upstream` for a server entry (with the
    service's hooks and log directory).
    """

    def __init__(
        self,
        path: Path,
        resolver: SecretResolver,
        servers: ServersConfig,
        upstreams: dict[str, Upstream],
        make: Callable[[ServerConfig], Upstream],
        catalog: Catalog,
        gateway: Gateway,
        redactor: Redactor,
        on_reload: Callable[[ServersReloaded], None] | None = None,
    ) -> None:
        self.path = path
        self.servers = servers
        """The configuration the running servers come from (the last one that loaded)."""
        self._resolver = resolver
        self._upstreams = upstreams
        self._make = make
        self._catalog = catalog
        self._gateway = gateway
        self._redactor = redactor
        self._on_reload = on_reload
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stamp = _stamp(path)
        self._lock = asyncio.Lock()
        self._closed = False
        self.error: str | None = None
        """Why the file on disk was not applied, or None when the running servers match it."""

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The task of every running upstream."""
        return list(self._tasks.values())

    def start_all(self) -> None:
        """Start every configured upstream's task (once, when the service starts)."""
        for upstream in self._upstreams.values():
            self._start(upstream)

    def _start(self, upstream: Upstream) -> None:
        self._tasks[upstream.name] = asyncio.create_task(upstream.run(), name=f"upstream:{upstream.name}")

    def changed_on_disk(self) -> bool:
        """Whether the file's modification time or size differ from the last load."""
        return _stamp(self.path) != self._stamp

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Reload whenever the file changes; runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if self.changed_on_disk():
                await self.reload()

    async def reload(self) -> ServersReloaded:
        """Load the file now and start, stop or restart the servers whose entry changed."""
        async with self._lock:
            if self._closed:
                return ServersReloaded(error="approver is shutting down")
            self._stamp = _stamp(self.path)
            try:
                fresh = load_servers(self.path, self._resolver)
            except ConfigError as exc:
                result = ServersReloaded(error=str(exc))
            else:
                result = await self._apply(fresh)
        self.error = result.error
        if result.error is not None:
            logger.error("%s", result.describe())
        elif result.changed:
            logger.info("%s", result.describe())
        if self._on_reload is not None:
            self._on_reload(result)
        return result

    async def close(self) -> None:
        """Refuse further reloads, after waiting for one that is under way."""
        async with self._lock:
            self._closed = True

    async def _apply(self, fresh: ServersConfig) -> ServersReloaded:
        running = {config.name: config for config in self.servers.enabled}
        wanted = {config.name: config for config in fresh.enabled}
        removed = tuple(name for name in running if name not in wanted)
        added = tuple(name for name in wanted if name not in running)
        restarted = tuple(name for name in wanted if name in running and wanted[name] != running[name])
        self._redactor.add_secrets(fresh.secrets)
        self.servers = fresh
        changed: set[str] = set()
        for name in (*removed, *restarted):
            changed |= await self._stop(name)
        for name in wanted:
            if name in added or name in restarted:
                upstream = self._make(wanted[name])
                self._upstreams[name] = upstream
                self._catalog.add_upstream(upstream)
                self._start(upstream)
        # Keep the file's order, which the windows and `approver tools` show.
        order = {name: self._upstreams[name] for name in wanted if name in self._upstreams}
        self._upstreams.clear()
        self._upstreams.update(order)
        if changed:
            await self._gateway.lists_changed(changed)
        return ServersReloaded(added, removed, restarted)

    async def _stop(self, name: str) -> set[str]:
        """Stop one server and take it out of the catalog; returns what clients lose."""
        upstream = self._upstreams.pop(name, None)
        changed = self._catalog.remove_upstream(name)
        task = self._tasks.pop(name, None)
        if upstream is not None:
            upstream.stop()
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            except Exception:
                logger.exception("server %s did not stop cleanly", name)
        return changed
