"""The one bridge from the core to Qt: broker observations and core events become Qt signals.

No other UI module subscribes to the core. Every signal is emitted on the thread that owns the
bridge (the GUI thread): the core publishes from the event loop, which under qasync *is* the GUI
thread, so slots run directly and in order.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from approver.approval.broker import ApprovalRequest, Broker, Resolution
from approver.events import (
    AuditFailed,
    Event,
    EventHub,
    PausedChanged,
    PolicyChanged,
    Recorded,
    ServersReloaded,
    ToolChanged,
    UpstreamChanged,
)


class CoreSignals(QObject):
    """Qt signals for everything the desktop shows. Payloads are the core's frozen dataclasses."""

    approval_arrived = Signal(object)
    """An :class:`ApprovalRequest` started waiting."""
    approval_ended = Signal(object, object)
    """An :class:`ApprovalRequest` ended with a :class:`Resolution` (by anyone: user, timeout, client)."""
    recorded = Signal(object)
    """A :class:`~approver.events.Recorded` row was committed to the audit log."""
    audit_failed = Signal(str)
    upstream_changed = Signal(str, str)
    """Server name and what changed (``state``, ``tools``, ...)."""
    tool_changed = Signal(str, str)
    """Server and upstream tool name of a tool whose definition changed since it was pinned."""
    servers_reloaded = Signal(object)
    """A :class:`~approver.events.ServersReloaded`: servers.json was applied (or rejected)."""
    policy_changed = Signal(object)
    """The policy load error, or None when the file is fine."""
    paused_changed = Signal(bool)

    def __init__(self, broker: Broker, events: EventHub, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._unsubscribe: list[Callable[[], None]] = [
            broker.subscribe(self._on_approval),
            events.subscribe(self._on_event),
        ]

    def disconnect_core(self) -> None:
        """Stop listening to the core (on quit, before the widgets go away)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def _on_approval(self, request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None:
            self.approval_arrived.emit(request)
        else:
            self.approval_ended.emit(request, resolution)

    def _on_event(self, event: Event) -> None:
        match event:
            case Recorded():
                self.recorded.emit(event)
            case AuditFailed(error):
                self.audit_failed.emit(error)
            case UpstreamChanged(server, what):
                self.upstream_changed.emit(server, what)
            case ToolChanged(server, tool):
                self.tool_changed.emit(server, tool)
            case ServersReloaded():
                self.servers_reloaded.emit(event)
            case PolicyChanged(error):
                self.policy_changed.emit(error)
            case PausedChanged(paused):
                self.paused_changed.emit(paused)
