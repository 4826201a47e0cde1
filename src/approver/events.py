"""What happens inside a running gateway, as small frozen events for whoever displays it.

The core publishes; a front-end subscribes. The desktop app's one Qt bridge
(:mod:`approver.ui.signals`) turns these into Qt signals; the headless ``approver serve`` simply
has no subscriber. Pending approvals are not events here: they live in the
:class:`~approver.approval.broker.Broker`, which has its own observers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from approver.audit.log import DecisionRecord, OutcomeRecord, ReviewRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A row was committed to the audit log."""

    row_id: int
    record: DecisionRecord | OutcomeRecord | ReviewRecord


@dataclass(frozen=True, slots=True)
class AuditFailed:
    """A row could not be written: calls are being denied until writes succeed again."""

    error: str


@dataclass(frozen=True, slots=True)
class UpstreamChanged:
    """An upstream's state, tools, resources or prompts changed."""

    server: str
    what: str
    """``state``, ``tools``, ``resources`` or ``prompts``."""


@dataclass(frozen=True, slots=True)
class ToolChanged:
    """A tool's definition no longer matches its pin: it is quarantined until the user accepts it."""

    server: str
    tool: str
    """The upstream's own name for the tool."""


@dataclass(frozen=True, slots=True)
class ServersReloaded:
    """``servers.json`` changed and was applied, or the edit was rejected (``error`` says why)."""

    added: tuple[str, ...] = ()
    """Servers started because they are new (or were enabled)."""
    removed: tuple[str, ...] = ()
    """Servers stopped because they were removed (or disabled)."""
    restarted: tuple[str, ...] = ()
    """Servers whose entry changed: stopped and started again with the new entry."""
    error: str | None = None
    """Why the file was not applied; the running servers are unchanged then."""

    @property
    def changed(self) -> bool:
        """Whether any server was started, stopped or restarted."""
        return bool(self.added or self.removed or self.restarted)

    def describe(self) -> str:
        """One sentence for logs and windows."""
        if self.error is not None:
            return f"servers.json was not applied, the running servers are unchanged: {self.error}"
        parts = [
            f"{verb} {', '.join(names)}"
            for verb, names in (
                ("started", self.added),
                ("stopped", self.removed),
                ("restarted", self.restarted),
            )
            if names
        ]
        return "servers.json applied: " + ("; ".join(parts) if parts else "no server changed")


@dataclass(frozen=True, slots=True)
class PolicyChanged:
    """The policy file was (re)loaded, or an edit was rejected (``error`` says why)."""

    error: str | None


@dataclass(frozen=True, slots=True)
class PausedChanged:
    """Calls were paused (every new call is denied) or resumed."""

    paused: bool


Event = (
    Recorded | AuditFailed | UpstreamChanged | ToolChanged | ServersReloaded | PolicyChanged | PausedChanged
)
Listener = Callable[[Event], None]


class EventHub:
    """Synchronous publish/subscribe. A failing listener is logged and never stops the core."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every listener, in subscription order."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # A listener is a display; its bug must not fail a call or an audit write.
                logger.exception("event listener failed on %s", type(event).__name__)
