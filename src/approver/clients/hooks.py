"""``approver install claude-code --hooks``: hand Claude Code's own tool calls to approver, and undo it.

Claude Code reads hooks from ``~/.claude/settings.json`` (a project's ``.claude/settings.json``
with ``--path``). Install adds one ``PreToolUse`` hook that matches every tool and runs ``approver
hook claude-code`` with a generous timeout::

    {"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [{"type": "command",
        "command": "/usr/bin/approver hook claude-code --timeout 600", "timeout": 600}]}]}}

Only ``hooks.PreToolUse`` changes: the hooks already there stay, after approver's, and every other
key of the file stays as it was (:mod:`approver.clients.jsonedit`). The backup, its record and
the byte-exact restore are :mod:`approver.clients.routing`'s, as for the server table: apply the
:class:`~approver.clients.routing.Change` with ``apply_install`` and undo it with
``plan_uninstall``/``apply_uninstall``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from approver.clients import jsonedit
from approver.clients.formats import CLIENTS, ClientFormat
from approver.clients.routing import Change
from approver.config.schema import parse_json
from approver.errors import ConfigError

HOOK_TIMEOUT: Final = 600
"""Seconds Claude Code lets the hook run (its own default for command hooks): well above approver's
approval timeout (120 s by default), so a person's decision, or approver's timeout, comes first."""

MATCHER: Final = "*"
"""Every tool: approver's policy decides which ones run without asking."""

CLAUDE_CODE: Final[ClientFormat] = CLIENTS["claude-code"]


def settings_path(home: Path | None = None) -> Path:
    """Claude Code's user settings, where install adds the hook by default."""
    return (home if home is not None else Path.home()) / ".claude" / "settings.json"


def hook_command(approver: Sequence[str], data_dir: Path | None = None, client: str = "claude-code") -> str:
    """The shell command Claude Code runs: ``approver [--data-dir D] hook claude-code ...``."""
    words = [*approver]
    if data_dir is not None:
        words += ["--data-dir", str(data_dir)]
    words += ["hook", "claude-code"]
    if client != "claude-code":
        words += ["--client", client]
    words += ["--timeout", str(HOOK_TIMEOUT)]
    return shlex.join(words)


def is_approver_hook(hook: Any) -> bool:
    """Whether one entry of a matcher's ``hooks`` list runs approver's hook."""
    if not isinstance(hook, dict) or not isinstance(hook.get("command"), str):
        return False
    try:
        words = shlex.split(hook["command"])
    except ValueError:
        return False
    return any(words[i : i + 2] == ["hook", "claude-code"] for i in range(len(words)))


def plan_hook_install(path: Path, command: str) -> Change:
    """The change to ``path`` (Claude Code's settings) that runs ``command`` before every tool call.

    An approver hook already there is replaced by this one; other hooks are kept, after it.
    """
    path = path.resolve()
    text = _read(path)
    data = parse_json(text, str(path)) if text is not None and text.strip() else {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "expected a JSON object at the top level")
    hooks = data.get("hooks", {})
    if not isinstance(hooks, dict):
        raise ConfigError(str(path), "/hooks", "expected an object of hook events")
    current = hooks.get("PreToolUse", [])
    if not isinstance(current, list):
        raise ConfigError(str(path), "/hooks/PreToolUse", "expected a list of matchers")
    ours = {"matcher": MATCHER, "hooks": [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT}]}
    others = [_without_ours(entry) for entry in current]
    wanted = [ours, *[entry for entry in others if entry is not None]]
    if current == wanted:
        message = f"Claude Code already sends its own tool calls to approver ({path})"
        return Change(CLAUDE_CODE, path, text, text, message)
    if text is None or not text.strip():
        after = jsonedit.new_document({"hooks": {"PreToolUse": wanted}})
    else:
        after = jsonedit.set_member(text, ["hooks", "PreToolUse"], wanted)
    message = (
        f"Claude Code will hand every call of its own tools (Bash, Write, Edit, WebFetch, ...) to approver "
        f"before running it ({path})"
    )
    return Change(CLAUDE_CODE, path, text, after, message)


def hook_installed(path: Path) -> bool:
    """Whether Claude Code's settings at ``path`` run approver's hook now."""
    try:
        text = _read(path.resolve())
        data = parse_json(text, str(path)) if text else {}
    except (ConfigError, OSError):
        return False
    hooks = data.get("hooks") if isinstance(data, dict) else None
    entries = hooks.get("PreToolUse") if isinstance(hooks, dict) else None
    return isinstance(entries, list) and any(
        isinstance(entry, dict) and any(is_approver_hook(hook) for hook in entry.get("hooks", []) or [])
        for entry in entries
    )


def _without_ours(entry: Any) -> Any:
    """A matcher entry without approver's hooks (None when nothing else was in it)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("hooks"), list):
        return entry
    kept = [hook for hook in entry["hooks"] if not is_approver_hook(hook)]
    if len(kept) == len(entry["hooks"]):
        return entry
    return {**entry, "hooks": kept} if kept else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None
