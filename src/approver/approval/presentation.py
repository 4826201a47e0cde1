"""How waiting calls are presented: risk looks, the queue's order, ages, and the choices offered.

Risk is shown the same way everywhere (dialog band, queue list, notification, tray badge): a
colour, a symbol and words per level, never colour alone. The queue puts the most severe call
first, then the oldest. Which approve buttons a call gets depends on what it could do: a
quarantined tool (its definition changed) can only be approved once; critical calls and
destructive or financial ones keep the broader approvals behind a "More…" menu. Qt-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from approver.approval.broker import ApprovalRequest
from approver.calls import Risk, RiskClass, RiskLevel


@dataclass(frozen=True, slots=True)
class Look:
    """How one risk level is drawn."""

    word: str
    """The level in capitals, always shown next to the colour."""
    background: str
    foreground: str
    symbol: str
    """The shape drawn in the level's icon: ``octagon``, ``triangle``, ``diamond`` or ``circle``."""


LOOKS: Final[dict[RiskLevel, Look]] = {
    RiskLevel.CRITICAL: Look("CRITICAL", "#8e0000", "#ffffff", "octagon"),
    RiskLevel.HIGH: Look("HIGH", "#d84315", "#ffffff", "triangle"),
    RiskLevel.MEDIUM: Look("MEDIUM", "#f9a825", "#1a1a1a", "diamond"),
    RiskLevel.LOW: Look("LOW", "#2e7d32", "#ffffff", "circle"),
}
"""Each level's look; the colours keep at least 4.5:1 contrast with their text."""

_CLASS_DANGER: Final = {
    RiskClass.FINANCIAL: 5,
    RiskClass.DESTRUCTIVE: 4,
    RiskClass.EXECUTE: 3,
    RiskClass.WRITE: 2,
    RiskClass.READ: 1,
    RiskClass.OTHER: 0,
}

CAREFUL_CLASSES: Final = frozenset({RiskClass.DESTRUCTIVE, RiskClass.FINANCIAL})
"""Classes whose broader approvals (session, always) sit behind "More…"."""


def risk_words(risk: Risk) -> str:
    """``"CRITICAL risk · financial"``: the level and the class in words."""
    return f"{LOOKS[risk.level].word} risk · {risk.risk_class.value}"


def severity(request: ApprovalRequest) -> tuple[int, int, float]:
    """A sort key: most severe level first, then the more dangerous class, then the oldest."""
    return (-request.risk.level.rank, -_CLASS_DANGER.get(request.risk.risk_class, 0), request.received)


def queue_order(requests: Iterable[ApprovalRequest]) -> list[ApprovalRequest]:
    """Waiting calls in the order to review them: most severe first, then oldest."""
    return sorted(requests, key=severity)


def most_severe(requests: Iterable[ApprovalRequest]) -> RiskLevel | None:
    """The highest level among ``requests``, or None when there are none."""
    levels = [request.risk.level for request in requests]
    return max(levels, key=lambda level: level.rank) if levels else None


def age_text(seconds: float) -> str:
    """How long a call has waited: ``"12 s"``, ``"3 min"``, ``"1 h 5 min"``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


@dataclass(frozen=True, slots=True)
class Offers:
    """Which approvals the dialog offers for one call (Deny is always offered)."""

    session: bool
    """"Approve for this session" is offered."""
    always: bool
    """"Always approve…" is offered."""
    behind_more: bool
    """The offered broader approvals sit in a "More…" menu, not on the bar."""
    why: str = ""
    """Why approvals are limited, for the dialog to say (empty when they are not)."""


def offers(request: ApprovalRequest) -> Offers:
    """The approvals offered for ``request``."""
    if request.result is not None:
        return Offers(
            session=False,
            always=False,
            behind_more=False,
            why=(
                "This call already ran. Approve passes its result to the agent; Deny withholds it, and the "
                "agent gets your message instead."
            ),
        )
    if request.pin_change:
        return Offers(
            session=False,
            always=False,
            behind_more=False,
            why=(
                "This tool's definition changed since you last trusted it, so it is quarantined: you can "
                "approve this one call, not a session or a rule. To trust the new definition, review and "
                "accept it in Servers."
            ),
        )
    careful = request.risk.level is RiskLevel.CRITICAL or request.risk.risk_class in CAREFUL_CLASSES
    if careful:
        what = "critical" if request.risk.level is RiskLevel.CRITICAL else request.risk.risk_class.value
        return Offers(
            session=True,
            always=True,
            behind_more=True,
            why=f"For a {what} call, approving more than this one call is under More…",
        )
    return Offers(session=True, always=True, behind_more=False)
