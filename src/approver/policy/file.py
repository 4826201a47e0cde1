"""The policy in force, loaded from policy.json and reloaded when the file changes.

A broken edit never loosens anything: the last good policy stays in force and
:attr:`PolicyFile.error` says what is wrong with the file, until a valid version is saved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from approver.errors import ConfigError
from approver.policy.engine import Policy

logger = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0
"""Seconds between checks of the policy file's modification time."""


class PolicyFile:
    """Holds the current :class:`Policy`; swapped whole on reload so no call sees half of one."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.policy = Policy.default()
        self.error: str | None = None
        self.using_default = True
        self._stamp: tuple[int, int] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._status_listeners: list[Callable[[str | None], None]] = []

    @classmethod
    def fixed(cls, policy: Policy) -> PolicyFile:
        """A holder for a policy that has no file (tests, embedding)."""
        holder = cls(None)
        holder.policy = policy
        holder.using_default = False
        return holder

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every successful reload."""
        self._listeners.append(listener)

    def on_status(self, listener: Callable[[str | None], None]) -> None:
        """Call ``listener`` after every load with :attr:`error` (None when the file is fine)."""
        self._status_listeners.append(listener)

    def load(self) -> bool:
        """(Re)load the file. Returns True when a new policy took effect.

        A missing file means the safe default policy. An invalid file keeps the previous policy
        and sets :attr:`error`.
        """
        if self.path is None:
            return False
        self._stamp = self._current_stamp()
        if self._stamp is None:
            changed = not self.using_default
            self.policy, self.using_default, self.error = Policy.default(), True, None
        else:
            try:
                policy = Policy.from_file(self.path)
            except ConfigError as exc:
                self.error = str(exc)
                logger.error("policy not reloaded, the last good policy stays in force: %s", exc)
                self._tell_status()
                return False
            self.policy, self.using_default, self.error = policy, False, None
            changed = True
        if changed:
            for listener in list(self._listeners):
                listener()
        self._tell_status()
        return changed

    def _tell_status(self) -> None:
        for listener in list(self._status_listeners):
            listener(self.error)

    def _current_stamp(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def changed_on_disk(self) -> bool:
        """Whether the file's modification time or size differ from the last load."""
        return self.path is not None and self._current_stamp() != self._stamp

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Reload whenever the file changes; runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if self.changed_on_disk() and self.load():
                logger.info("policy reloaded from %s", self.path)

    def describe(self) -> str:
        """One line for status displays: which policy is in force and any load error."""
        if self.path is None:
            return "built-in policy"
        if not self.using_default:
            where = f"policy from {self.path}"
        elif self.error:
            where = "safe default policy"  # the file exists, it is just invalid
        else:
            where = "safe default policy (no policy.json yet)"
        return where + (
            f"; the file on disk is invalid, last good policy kept: {self.error}" if self.error else ""
        )
