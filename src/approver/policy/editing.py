"""Changing the policy file from the app: the rule "Always approve…" writes.

Every write validates the whole new policy first and replaces the file atomically, so a
failed edit leaves the old file in force and on disk.
"""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path
from typing import Any

from approver.calls import ToolRef
from approver.config.paths import replace_file
from approver.config.schema import load_json_file, schema_path, with_schema
from approver.policy.engine import DEFAULT_POLICY_DATA, Policy


def policy_rule_for_always_allow(tool: ToolRef) -> dict[str, Any]:
    """The ``tools`` fragment that always allows ``tool``: ``{exposed name: {"action": "allow"}}``."""
    return {tool.name: {"action": "allow"}}


def add_allow_rule(path: Path, tool: ToolRef) -> None:
    """Make the policy file at ``path`` always allow ``tool``, writing it atomically.

    A new entry is added under the exposed name; an existing entry for that exact name gets
    ``"action": "allow"`` and keeps its conditions and limits, so hand-written guards survive.
    A missing file is created from the default policy. The result is validated before it is
    written; an invalid existing file raises ConfigError and is left untouched.
    """
    if path.exists():
        data: dict[str, Any] = with_schema(load_json_file(path, "policy"), "policy", add=False)
    else:
        data = {"$schema": schema_path("policy").as_uri(), **copy.deepcopy(dict(DEFAULT_POLICY_DATA))}
    tools = data.setdefault("tools", {})
    if tool.name in tools:
        tools[tool.name]["action"] = "allow"
    else:
        tools.update(policy_rule_for_always_allow(tool))
    Policy.from_data(data, str(path))
    _write_atomically(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _write_atomically(path: Path, text: str) -> None:
    target = Path(os.path.realpath(path))  # replace a symlink's target, not the link
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o600
    replace_file(target, text.encode("utf-8"), mode)
