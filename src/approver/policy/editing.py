"""Changing the policy file from the app: reading it for an edit, and writing it back.

The rule always names the server, so no other server's tool or resource can fall under it: a
tool's exposed name when its server has a prefix (``gh__delete_repo``), else ``server__tool``;
a resource as ``server__<uri>``; a prompt like a tool; a completion by its server's name.
Characters that would make the rule a glob are escaped (``[*]``).

Every write validates the whole new policy first and replaces the file atomically, so a
failed edit leaves the old file in force and on disk. The rules "Always approve…" writes are
built in :mod:`approver.policy.scoped`; the Rules window's edits in :mod:`approver.policy.rules`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from approver.calls import RequestKind, RequestRef, ToolRef
from approver.config.paths import replace_file
from approver.config.schema import load_json_file, schema_path, with_schema
from approver.policy.engine import DEFAULT_POLICY_DATA, REQUEST_SECTIONS, Policy
from approver.policy.matching import SEPARATOR

_GLOB_CHARACTERS = re.compile(r"([*?\[])")


def _literal(text: str) -> str:
    """``text`` as a pattern that matches only itself."""
    return _GLOB_CHARACTERS.sub(r"[\1]", text)


def _named(server: str, prefix: str, upstream: str, exposed: str) -> str:
    # An unprefixed exposed name is the server's own choice, which another server could copy.
    return exposed if prefix else f"{_literal(server)}{SEPARATOR}{_literal(upstream)}"


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


def tool_rule_key(tool: ToolRef) -> str:
    """The ``tools`` key that names ``tool`` and no tool of another server."""
    return _named(tool.server, tool.prefix, tool.tool, tool.name)


def always_allow_section(target: ToolRef | RequestRef) -> str:
    """The policy section the always-allow rule for ``target`` goes in (``tools``, ``resources``, ...)."""
    return REQUEST_SECTIONS[target.kind] if isinstance(target, RequestRef) else "tools"


def policy_rule_for_always_allow(target: ToolRef | RequestRef) -> dict[str, Any]:
    """The entry that always allows ``target``, keyed for its section: ``{"gh__x": {"action": "allow"}}``."""
    if isinstance(target, ToolRef):
        key = tool_rule_key(target)
    elif target.kind is RequestKind.RESOURCE:
        key = f"{_literal(target.server)}{SEPARATOR}{_literal(target.target)}"
    elif target.kind is RequestKind.PROMPT:
        key = _named(target.server, target.prefix, target.target, target.name or target.target)
    else:
        key = _literal(target.server)
    return {key: {"action": "allow"}}


def add_allow_rule(path: Path, target: ToolRef | RequestRef) -> None:
    """Make the policy file at ``path`` always allow ``target``, writing it atomically.

    A new entry is added under the key :func:`policy_rule_for_always_allow` gives; an existing
    entry for that exact key gets ``"action": "allow"`` and keeps its conditions and limits, so
    hand-written guards survive. A missing file is created from the default policy. The result
    is validated before it is written; an invalid existing file raises ConfigError and is left
    untouched.
    """
    data = load_policy_data(path)
    entries = data.setdefault(always_allow_section(target), {})
    rule = policy_rule_for_always_allow(target)
    for key, entry in rule.items():
        if key in entries:
            entries[key]["action"] = "allow"
        else:
            entries[key] = entry
    write_policy(path, data)


def _write_atomically(path: Path, text: str) -> None:
    target = Path(os.path.realpath(path))  # replace a symlink's target, not the link
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o600
    replace_file(target, text.encode("utf-8"), mode)
