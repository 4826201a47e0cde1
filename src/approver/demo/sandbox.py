"""Prepare the demo: a sandbox folder with sample files, and approver's config for it.

:func:`prepare_demo` writes everything under one empty folder (normally a temporary one):
``sandbox/`` with the files the demo server offers, ``config/servers.json`` running the demo
server as ``files``, ``config/policy.json`` showing every outcome, and ``data/`` for the audit
log and tokens. Nothing outside that folder is touched.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from approver.config.paths import Paths, write_private_text
from approver.config.schema import schema_path
from approver.errors import ApproverError
from approver.policy.engine import Policy

SERVER_NAME: Final = "files"
"""The demo server's name in servers.json; its tools are exposed as ``files__<tool>``."""

PROTECTED_FOLDER: Final = "keep"
"""Files under this folder may not be deleted: the policy denies it."""

PROTECTED_REASON: Final = "files in keep/ are protected: the demo policy never lets an agent delete them"
"""The reason the policy gives when it denies deleting a protected file."""

SAMPLE_FILES: Final[Mapping[str, str]] = {
    "notes.txt": (
        "Meeting notes\n"
        "- approver sits between an AI agent and its tools.\n"
        "- Reads run, changes wait for a person, and some calls are never allowed.\n"
        "- Every decision lands in a tamper-evident audit log.\n"
    ),
    "todo.md": "# To do\n\n- [x] Install approver\n- [ ] Watch the demo agent\n- [ ] Write my own policy\n",
    "draft.txt": "An old draft nobody needs any more.\n",
    f"{PROTECTED_FOLDER}/contract.txt": "The signed contract. Keep this file.\n",
}
"""The files the sandbox starts with, by path relative to the sandbox."""


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """A prepared demo: where approver's files are, where the sandbox is, and what it shows."""

    paths: Paths
    """The demo's own config and data directories (servers.json, policy.json, audit log)."""
    sandbox: Path
    """The folder the demo server lets the agent use."""
    description: str
    """A few lines for the user: what the demo server offers and what the policy does."""


def demo_policy() -> dict[str, Any]:
    """The demo policy: reads run, writes and deletes ask first, deleting in keep/ is denied."""
    delete = f"{SERVER_NAME}__delete_file"
    return {
        "$schema": schema_path("policy").as_uri(),
        "description": (
            "approver's demo policy: reads run, writes and deletes ask you first, "
            "and deleting anything in keep/ is refused."
        ),
        "version": "1",
        "default": "require_approval",
        "risk_defaults": {
            "read": "allow",
            "write": "require_approval",
            "destructive": "require_approval",
        },
        "tools": {
            delete: {
                "action": "require_approval",
                "reason": "deleting a file cannot be undone",
                "conditions": [
                    {
                        "description": (
                            "(?i) ignores case: on macOS and Windows KEEP/ is the same folder. The demo "
                            "server refuses '.', '..' and symbolic links, so no other spelling reaches keep/."
                        ),
                        "when": {"path": {"matches": f"(?i){PROTECTED_FOLDER}/.*"}},
                        "action": "deny",
                        "reason": PROTECTED_REASON,
                    }
                ],
            }
        },
    }


def servers_config(sandbox: Path) -> dict[str, Any]:
    """servers.json running the demo server on ``sandbox`` with this Python."""
    return {
        "$schema": schema_path("servers").as_uri(),
        "mcpServers": {
            SERVER_NAME: {
                "command": sys.executable,
                "args": ["-m", "approver.demo.server", "--root", str(sandbox)],
                "description": "approver's demo file server (list, read, write and delete in a sandbox)",
            }
        },
    }


def prepare_demo(root: Path) -> DemoSetup:
    """Create the sandbox, sample files and demo config under ``root`` (missing or empty).

    Raises ApproverError when ``root`` already has files, so a demo never overwrites anything.
    """
    root = root.expanduser().absolute()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ApproverError(f"the demo needs an empty folder, and {root} is not empty; choose another one")
    sandbox = root / "sandbox"
    for relative, text in SAMPLE_FILES.items():
        file = sandbox / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, "utf-8")
    paths = Paths(config_dir=root / "config", data_dir=root / "data")
    paths.ensure()
    policy = demo_policy()
    Policy.from_data(policy, str(paths.policy_file))  # never write a policy that would not load
    write_private_text(paths.servers_file, json.dumps(servers_config(sandbox), indent=2) + "\n")
    write_private_text(paths.policy_file, json.dumps(policy, indent=2) + "\n")
    return DemoSetup(paths=paths, sandbox=sandbox, description=_describe(sandbox))


def _describe(sandbox: Path) -> str:
    files = ", ".join(SAMPLE_FILES)
    return (
        f"Demo sandbox: {sandbox} ({files}).\n"
        f"The demo server '{SERVER_NAME}' can list, read, write and delete files there, and nowhere else.\n"
        "Demo policy: reads run, writes and deletes ask you first, "
        f"and deleting anything in {PROTECTED_FOLDER}/ is refused."
    )
