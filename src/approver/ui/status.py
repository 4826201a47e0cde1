"""What the desktop shows of the running service: the tray's state, a headline and detail lines.

One place reads the service for the tray icon, its tooltip and the main window, so they always
agree.
"""

from __future__ import annotations

from approver.approval.presentation import most_severe
from approver.service import Service
from approver.ui.icons import TrayState
from approver.upstream.status import UpstreamState
from approver.visible import reveal_text

_TROUBLE_STATES = (UpstreamState.FAILED, UpstreamState.RESTARTING, UpstreamState.NEEDS_SIGN_IN)

SIGN_IN_NEEDED = "Sign in needed"
"""What a person sees for a server in :attr:`UpstreamState.NEEDS_SIGN_IN`."""


def state_label(state: UpstreamState) -> str:
    """An upstream state as the windows and the tray word it."""
    return SIGN_IN_NEEDED if state is UpstreamState.NEEDS_SIGN_IN else state.value


def tray_state(service: Service, audit_error: str | None, changed_tools: tuple[str, ...]) -> TrayState:
    """What the tray icon shows now: paused, calls waiting (and the most severe), problems."""
    troubled = [
        reveal_text(
            f"{status.name}: {state_label(status.state)}" + (f" ({status.error})" if status.error else "")
        )
        for status in (upstream.status() for upstream in service.upstreams.values())
        if status.state in _TROUBLE_STATES
    ]
    if audit_error:
        troubled.insert(0, reveal_text(f"audit log cannot be written, calls are denied: {audit_error}"))
    if service.policy.error:
        troubled.append("policy.json has an error; the last good policy is in force")
    waiting = service.broker.pending()
    return TrayState(
        service.paused,
        len(waiting),
        tuple(troubled),
        changed_tools=changed_tools,
        waiting_level=most_severe(waiting),
    )


def status_headline(state: TrayState) -> str:
    """The main window's headline for ``state``."""
    if state.paused:
        return "Paused: every call is denied"
    if state.waiting:
        return f"{state.waiting} call{'s' if state.waiting != 1 else ''} waiting for your approval"
    if state.troubled:
        return "Running, with problems"
    return "Running: guarding your agents' tool calls"


def status_details(service: Service, audit_error: str | None) -> list[str]:
    """The main window's detail lines: gateway, servers (and those not ready), policy, audit log."""
    statuses = [upstream.status() for upstream in service.upstreams.values()]
    ready = sum(status.state is UpstreamState.READY for status in statuses)
    # Not the bare URL: without a client's token it fails when pasted (Connect a client gives one).
    lines = [
        f"Gateway: {service.host}:{service.port} (clients connect with their own token: Connect a client…)",
        f"Servers: {ready} of {len(statuses)} ready",
    ]
    lines += [
        reveal_text(f"  {s.name}: {state_label(s.state)}" + (f": {s.error}" if s.error else ""))
        for s in statuses
        if s.state is not UpstreamState.READY
    ]
    lines.append(reveal_text("Policy: " + service.policy.describe()))
    if audit_error:
        lines.append(reveal_text(f"Audit log: cannot be written ({audit_error}); every call is denied"))
    else:
        lines.append(f"Audit log: {service.paths.audit_db}")
    return lines
