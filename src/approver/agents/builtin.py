"""Claude Code's built-in tools as approver shows them: a description and an input schema each.

The agent's hook sends only a tool's name and input. The dialog lists the input in the order of
the schema's properties (key arguments first) and checks a person's edit against it before it
goes back as ``updatedInput``; the schemas declare what each tool takes and which keys it needs,
and leave other keys allowed, since a newer Claude Code may add some. A tool not listed here (a
new built-in, or an MCP tool of a server approver does not serve, ``mcp__github__...``) gets a
description that says so and a schema that only asks for an object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final


def _schema(required: tuple[str, ...], **properties: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": dict(properties), "required": list(required)}


_STRING: Final = {"type": "string"}
_NUMBER: Final = {"type": "number"}
_BOOLEAN: Final = {"type": "boolean"}
_STRINGS: Final = {"type": "array", "items": {"type": "string"}}


@dataclass(frozen=True, slots=True)
class BuiltinTool:
    """One of the agent's own tools."""

    description: str
    input_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})


BUILTIN_TOOLS: Final[Mapping[str, BuiltinTool]] = {
    "Bash": BuiltinTool(
        "Runs a shell command on your computer, in the agent's working directory.",
        _schema(
            ("command",),
            command=_STRING,
            description=_STRING,
            timeout=_NUMBER,
            run_in_background=_BOOLEAN,
        ),
    ),
    "Write": BuiltinTool(
        "Creates a file, or replaces all of an existing file's content.",
        _schema(("file_path", "content"), file_path=_STRING, content=_STRING),
    ),
    "Edit": BuiltinTool(
        "Replaces one piece of text in a file with another.",
        _schema(
            ("file_path", "old_string", "new_string"),
            file_path=_STRING,
            old_string=_STRING,
            new_string=_STRING,
            replace_all=_BOOLEAN,
        ),
    ),
    "MultiEdit": BuiltinTool(
        "Makes several replacements in one file.",
        _schema(
            ("file_path", "edits"),
            file_path=_STRING,
            edits={
                "type": "array",
                "items": _schema(
                    ("old_string", "new_string"),
                    old_string=_STRING,
                    new_string=_STRING,
                    replace_all=_BOOLEAN,
                ),
            },
        ),
    ),
    "NotebookEdit": BuiltinTool(
        "Changes, inserts or deletes a cell of a Jupyter notebook.",
        _schema(
            ("notebook_path", "new_source"),
            notebook_path=_STRING,
            new_source=_STRING,
            cell_id=_STRING,
            cell_type={"enum": ["code", "markdown"]},
            edit_mode={"enum": ["replace", "insert", "delete"]},
        ),
    ),
    "Read": BuiltinTool(
        "Reads a file (text, image, PDF or notebook).",
        _schema(("file_path",), file_path=_STRING, offset=_NUMBER, limit=_NUMBER),
    ),
    "Glob": BuiltinTool(
        "Lists files whose names match a pattern.", _schema(("pattern",), pattern=_STRING, path=_STRING)
    ),
    "Grep": BuiltinTool(
        "Searches file contents for a regular expression.",
        _schema(("pattern",), pattern=_STRING, path=_STRING, glob=_STRING, type=_STRING),
    ),
    "LS": BuiltinTool("Lists a directory.", _schema(("path",), path=_STRING, ignore=_STRINGS)),
    "WebFetch": BuiltinTool(
        "Fetches a web page and has a model answer a question about it.",
        _schema(("url", "prompt"), url=_STRING, prompt=_STRING),
    ),
    "WebSearch": BuiltinTool(
        "Searches the web.",
        _schema(("query",), query=_STRING, allowed_domains=_STRINGS, blocked_domains=_STRINGS),
    ),
    "Task": BuiltinTool(
        "Starts a sub-agent with a task; its own tool calls come through this hook too.",
        _schema(("prompt",), description=_STRING, prompt=_STRING, subagent_type=_STRING),
    ),
    "TodoWrite": BuiltinTool("Updates the agent's to-do list.", _schema(("todos",), todos={"type": "array"})),
    "BashOutput": BuiltinTool("Reads the output of a shell command running in the background."),
    "KillShell": BuiltinTool("Stops a shell command running in the background."),
    "ExitPlanMode": BuiltinTool("Ends planning and presents the plan to you."),
}
"""The built-in tools approver describes, by the name Claude Code gives them."""


def builtin_tool(name: str) -> BuiltinTool:
    """The description and schema of the agent's tool ``name`` (a generic one for tools not listed)."""
    found = BUILTIN_TOOLS.get(name)
    if found is not None:
        return found
    if name.startswith("mcp__"):
        return BuiltinTool(
            "A tool of an MCP server that this agent reaches directly, not through approver "
            "(approver sees only the call, not the tool's own description)."
        )
    return BuiltinTool("One of the agent's own tools that approver has no description of.")
