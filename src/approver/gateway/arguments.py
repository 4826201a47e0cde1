"""Limits on a tool call's arguments that hold on every path in (the fast path, the SDK, the bridge).

Arguments nested deeper than :data:`MAX_ARGUMENT_DEPTH` levels are refused before anything is
decided: the MCP Python SDK's JSON parser gives up at about 200 levels counting the message
around the arguments (and Rust's serde_json at 128), so an upstream could not read the call,
and a call it cannot read is never answered. Each path used to stop such arguments somewhere
else, or not at all (the fast path and the 2026-era path forwarded 300 to 900 levels, and the
call hung).
"""

from __future__ import annotations

from typing import Any, Final

MAX_ARGUMENT_DEPTH: Final = 100
"""The deepest nesting of a call's arguments approver accepts; the arguments object is level 1."""

TOO_DEEP: Final = (
    f"approver denied this call: its arguments are nested more than {MAX_ARGUMENT_DEPTH} levels deep "
    f"(approver accepts up to {MAX_ARGUMENT_DEPTH}, which every upstream can read); nothing was forwarded"
)
"""The tool error for arguments nested too deep."""


def deeper_than(value: Any, limit: int = MAX_ARGUMENT_DEPTH) -> bool:
    """Whether ``value`` (JSON: dicts, lists and scalars) nests more than ``limit`` levels deep.

    Walks one level at a time without recursion, and only descends into containers.
    """
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for container in level:
            for item in container.values() if isinstance(container, dict) else container:
                if isinstance(item, dict | list):
                    below.append(item)
        level = below
    return False
