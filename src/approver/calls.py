"""The shared vocabulary of the core: tools, risk, actions, decisions and call requests.

Every core module speaks in these frozen dataclasses and enums, so the UI and the tests can
hold them without reaching into the gateway's sessions.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class RiskClass(enum.StrEnum):
    """What a tool does to the world, in PolicyLayer's vocabulary."""

    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"
    DESTRUCTIVE = "destructive"
    FINANCIAL = "financial"
    OTHER = "other"


class RiskLevel(enum.StrEnum):
    """How bad a mistaken call could be."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for low up to 3 for critical, for comparisons."""
        return _LEVEL_ORDER.index(self)

    def raised(self, steps: int = 1) -> RiskLevel:
        """This level raised by ``steps``, capped at critical."""
        return _LEVEL_ORDER[min(self.rank + steps, len(_LEVEL_ORDER) - 1)]


_LEVEL_ORDER = (RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.CRITICAL)


@dataclass(frozen=True, slots=True)
class Risk:
    """A tool's risk class and level, with the reasons that led there."""

    risk_class: RiskClass
    level: RiskLevel
    reasons: tuple[str, ...] = ()
    conflict: bool = False
    """True when the tool's annotations contradict what its name or description say."""


class Action(enum.StrEnum):
    """What the policy does with a call."""

    ALLOW = "allow"
    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"


@dataclass(frozen=True, slots=True)
class ToolRef:
    """One upstream tool as approver exposes it."""

    server: str
    """The server's name in servers.json."""
    tool: str
    """The upstream's own tool name."""
    name: str
    """The collision-free name clients see."""
    prefix: str = ""
    """The server's prefix in exposed names (``""`` when its names are exposed unprefixed)."""


class RequestKind(enum.StrEnum):
    """A client request besides ``tools/call`` that the policy decides on, by its MCP method."""

    RESOURCE = "resources/read"
    PROMPT = "prompts/get"
    COMPLETION = "completion/complete"


@dataclass(frozen=True, slots=True)
class RequestRef:
    """A resource read, a prompt get or a completion, as the policy and the audit log see it."""

    kind: RequestKind
    server: str
    """The server in servers.json that the request goes to."""
    target: str
    """The resource's URI; the prompt's upstream name; for a completion, the upstream name of
    the prompt or the URI template whose argument is completed."""
    name: str = ""
    """The prompt's exposed name, for a prompt or a prompt's completion (else empty)."""
    prefix: str = ""
    """The server's prefix in exposed names (prompts are named like tools)."""

    def describe(self) -> str:
        """What the request does, for a person: ``read file:///a from fs``."""
        if self.kind is RequestKind.RESOURCE:
            return f"read {self.target} from {self.server}"
        if self.kind is RequestKind.PROMPT:
            return f"get the prompt {self.name or self.target} from {self.server}"
        return f"complete an argument of {self.name or self.target} on {self.server}"


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the policy sees of one tool call."""

    client: str
    tool: ToolRef
    risk: Risk
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's verdict on one call, with the rule that made it."""

    action: Action
    rule: str
    """Which rule decided, e.g. ``tools["github__*"]``, ``risk_defaults.read`` or ``default``."""
    reason: str
    """Why, in words an agent and a person can read."""
    retry_after: float | None = None
    """Seconds until a rate-limited call may be retried, when a limit denied it."""
    review_result: bool = False
    """The deciding ``tools`` entry says ``review_result``: a person sees the upstream's result before
    the agent gets it."""
