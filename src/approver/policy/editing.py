"""Changing the policy file from the app: reading it for an edit, and writing it back.

Every write validates the whole new policy first and replaces the file atomically, so a
failed edit leaves the old file in force and on disk. The rules "Always approve…" writes are
built in :mod:`approver.policy.scoped`; the Rules window's edits in :mod:`approver.policy.rules`.
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


def load_policy_data(path: Path) -> dict[str, Any]:
    """The policy file's JSON for an edit (the default policy when there is no file yet).

    Raises ConfigError for an invalid file: an edit must start from what is in force.
    """
    if path.exists():
        return with_schema(load_json_file(path, "policy"), "policy", add=False)
    return {"$schema": schema_path("policy").as_uri(), **copy.deepcopy(dict(DEFAULT_POLICY_DATA))}


def write_policy(path: Path, data: dict[str, Any]) -> Policy:
    """Validate ``data`` as a policy and replace the file with it atomically; returns the compiled policy.

    Raises ConfigError (the file untouched) when ``data`` is not a valid policy.
    """
    policy = Policy.from_data(data, str(path))
    _write_atomically(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return policy


def add_allow_rule(path: Path, tool: ToolRef) -> None:
    """Make the policy file at ``path`` always allow ``tool``, writing it atomically.

    A new entry is added under the exposed name; an existing entry for that exact name gets
    ``"action": "allow"`` and keeps its conditions and limits, so hand-written guards survive.
    A missing file is created from the default policy. The result is validated before it is
    written; an invalid existing file raises ConfigError and is left untouched.
    """
    data = load_policy_data(path)
    tools = data.setdefault("tools", {})
    if tool.name in tools:
        tools[tool.name]["action"] = "allow"
    else:
        tools.update(policy_rule_for_always_allow(tool))
    write_policy(path, data)


def _write_atomically(path: Path, text: str) -> None:
    target = Path(os.path.realpath(path))  # replace a symlink's target, not the link
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o600
    replace_file(target, text.encode("utf-8"), mode)
