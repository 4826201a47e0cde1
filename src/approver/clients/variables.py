"""Translate a client's variable syntax into approver's ``${env:NAME}`` / ``${keyring:NAME}`` references.

- Claude Desktop expands nothing: every ``${`` is literal, so it becomes ``$${`` in approver.
- Claude Code: ``${VAR}`` -> ``${env:VAR}``, ``${VAR:-default}`` -> ``${env:VAR:-default}``.
- Cursor, VS Code and Windsurf: ``${env:NAME}`` stays; ``${userHome}``, ``${workspaceFolder}``,
  ``${workspaceFolderBasename}`` and ``${pathSeparator}`` (``${/}``) are resolved at import, with a
  note; VS Code's ``${input:id}`` (a value VS Code prompts for) becomes ``${keyring:vscode-input-ID}``,
  a secret the user stores once. Anything else is kept as literal text, with a note.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from approver.clients.formats import Syntax
from approver.config.servers import NAME_PATTERN

_PLACEHOLDER: Final = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEFAULTED: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):-(.*)", re.DOTALL)
_NOT_IN_NAME: Final = re.compile(r"[^A-Za-z0-9_.-]")


def literal(text: str) -> str:
    """``text`` as a literal in servers.json: every ``${`` escaped as ``$${``."""
    return text.replace("${", "$${")


def input_secret_name(input_id: str) -> str:
    """The keyring secret that stands in for VS Code's ``${input:ID}``."""
    name = "vscode-input-" + _NOT_IN_NAME.sub("-", input_id)
    return name[:64]


@dataclass
class Translation:
    """What translating one string found besides its new text."""

    notes: list[str] = field(default_factory=list)
    inputs: set[str] = field(default_factory=set)
    """VS Code input ids turned into keyring references."""
    references: bool = False
    """True when the string holds a reference that approver resolves at startup."""


@dataclass(frozen=True)
class Context:
    """What editor-style placeholders resolve to at import."""

    home: Path
    workspace: Path | None = None


def translate(text: str, syntax: Syntax, context: Context, where: str, found: Translation) -> str:
    """``text`` from a client config as approver text; notes and inputs are added to ``found``."""
    if syntax == "none":
        return literal(text)
    pieces: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        pieces.append(literal(text[position : match.start()]))
        position = match.end()
        inner = match.group(1)
        if syntax == "claude-code":
            pieces.append(_claude_code(inner, match.group(0), where, found))
        else:
            pieces.append(_editor(inner, match.group(0), context, where, found))
    pieces.append(literal(text[position:]))
    return "".join(pieces)


def _claude_code(inner: str, whole: str, where: str, found: Translation) -> str:
    if _ENV_NAME.fullmatch(inner):
        found.references = True
        return f"${{env:{inner}}}"
    defaulted = _DEFAULTED.fullmatch(inner)
    if defaulted:
        found.references = True
        return f"${{env:{defaulted.group(1)}:-{defaulted.group(2)}}}"
    found.notes.append(f"{where}: {whole} is not a variable Claude Code expands; kept as literal text")
    return literal(whole)


def _editor(inner: str, whole: str, context: Context, where: str, found: Translation) -> str:
    kind, _, name = inner.partition(":")
    if kind == "env" and _ENV_NAME.fullmatch(name):
        found.references = True
        return f"${{env:{name}}}"
    if kind == "input" and name:
        secret = input_secret_name(name)
        if NAME_PATTERN.fullmatch(secret):
            found.references = True
            found.inputs.add(name)
            return f"${{keyring:{secret}}}"
    if inner == "userHome":
        found.notes.append(f"{where}: ${{userHome}} resolved to {context.home}")
        return literal(str(context.home))
    if inner in ("pathSeparator", "/"):
        return literal(os.sep)
    if inner in ("workspaceFolder", "workspaceFolderBasename", "workspaceRoot"):
        if context.workspace is None:
            found.notes.append(
                f"{where}: {whole} has no meaning outside a project; kept as literal text, "
                "edit it in servers.json"
            )
            return literal(whole)
        value = context.workspace.name if inner == "workspaceFolderBasename" else str(context.workspace)
        found.notes.append(f"{where}: {whole} resolved to {value}")
        return literal(value)
    found.notes.append(
        f"{where}: approver cannot resolve {whole}; kept as literal text, edit it in servers.json"
    )
    return literal(whole)
