"""Every exposed tool with its risk and what the policy does with it: ``approver tools`` and *Servers…*.

The action is the one the gateway would take for a call without arguments: a tool whose
definition changed since it was pinned needs approval where the policy would allow it, as the
gateway does until the change is accepted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from approver.calls import Action, CallContext
from approver.gateway.catalog import Catalog
from approver.policy.file import PolicyFile


@dataclass(frozen=True, slots=True)
class ToolRow:
    """One exposed tool as a listing shows it."""

    name: str
    """The exposed name clients call."""
    server: str
    tool: str
    """The upstream's own name."""
    risk_class: str
    risk_level: str
    reasons: tuple[str, ...]
    conflict: bool
    action: str
    """``allow``, ``deny`` or ``require_approval``."""
    rule: str
    """The policy rule (or ``pin-changed``) that gives the action."""
    changed: bool
    """The definition changed since it was pinned, or the tool is new since (quarantined)."""
    new: bool
    """The tool is new on its server since the server's first pinning."""
    change: str
    description: str

    def as_json(self) -> dict[str, Any]:
        """The row as ``approver tools --json`` prints it."""
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


def tool_rows(catalog: Catalog, policy: PolicyFile, server: str | None = None) -> list[ToolRow]:
    """Every exposed tool (of ``server`` only, when given), server by server."""
    rows = []
    for entry in catalog.tools():
        if server is not None and entry.ref.server != server:
            continue
        decision = policy.policy.decide_without_arguments(
            CallContext(client="", tool=entry.ref, risk=entry.risk)
        )
        pin = catalog.pin_check(entry)
        action, rule = decision.action.value, decision.rule
        if pin.quarantined and decision.action is Action.ALLOW:
            action, rule = Action.REQUIRE_APPROVAL.value, "pin-changed"
        rows.append(
            ToolRow(
                name=entry.ref.name,
                server=entry.ref.server,
                tool=entry.ref.tool,
                risk_class=entry.risk.risk_class.value,
                risk_level=entry.risk.level.value,
                reasons=tuple(entry.risk.reasons),
                conflict=entry.risk.conflict,
                action=action,
                rule=rule,
                changed=pin.quarantined,
                new=pin.new,
                change=pin.reason if pin.quarantined else "",
                description=entry.exposed.description or "",
            )
        )
    return rows
