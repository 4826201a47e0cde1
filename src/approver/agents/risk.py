"""Risk classes of an agent's own tool calls, read from each call's input.

An MCP tool is classified once, by its name and description. A built-in tool of a coding agent
says little by its name (``Bash`` can list a folder or wipe a disk), so approver classifies each
call by what it will do:

* ``Bash`` by its command: each command of a pipeline or list (``a && b; c | d``) is classified
  by its first word (and git's subcommand); the most dangerous one decides. Listing and reading
  commands are ``read``; ``mkdir``, ``cp``, ``git commit`` and writing redirections ``write``;
  ``rm``, ``git reset --hard``, ``git push --force`` ``destructive`` (critical for a recursive
  ``rm`` or one aimed at ``/``, ``~`` or ``*``); anything else runs code: ``execute``. ``sudo``
  raises the level. A command that cannot be split as a shell would (an open quote) is
  ``execute``, high.
* ``Write``, ``Edit``, ``MultiEdit``, ``NotebookEdit`` by their path: ``write``, medium inside the
  agent's working directory, high outside it or in a place that holds secrets or runs at login,
  critical in approver's own folders or the agent's settings (an agent that rewrites those can
  switch approver off).
* ``Read``, ``Glob``, ``Grep``, ``LS`` are ``read``, high where secrets are kept.
* ``WebFetch`` by its URL: ``read``, medium for plain ``http``, a bare IP address or this
  computer, and for a long query string, through which data can leave.

Any other tool is classified by :func:`approver.policy.risk.classify` from its name and input keys.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from approver.calls import Risk, RiskClass, RiskLevel
from approver.policy.risk import classify


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_READ, _WRITE, _EXECUTE = RiskClass.READ, RiskClass.WRITE, RiskClass.EXECUTE
_DESTRUCTIVE, _OTHER = RiskClass.DESTRUCTIVE, RiskClass.OTHER
_DANGER: Final = {_OTHER: 0, _READ: 1, _WRITE: 2, _EXECUTE: 3, _DESTRUCTIVE: 4}
_BASE: Final = {
    _OTHER: RiskLevel.LOW,
    _READ: RiskLevel.LOW,
    _WRITE: RiskLevel.MEDIUM,
    _EXECUTE: RiskLevel.HIGH,
    _DESTRUCTIVE: RiskLevel.HIGH,
}

_READ_COMMANDS: Final = _words(
    """cd pushd popd ls ll dir cat head tail less more pwd echo printf grep egrep fgrep rg ag wc du df
    stat file which whereis type whoami id date printenv uname tree diff cmp sort uniq cut tr jq yq column
    basename dirname realpath readlink hostname uptime nproc free ps true false test man help
    md5sum sha1sum sha256sum shasum cksum nl od hexdump xxd strings zcat lsblk locale groups"""
)
_WRITE_COMMANDS: Final = _words(
    "mkdir touch cp mv ln chmod chown chgrp tee install patch tar zip unzip gzip gunzip"
)
_DESTRUCTIVE_COMMANDS: Final = _words(
    "rm rmdir shred dd wipefs mkfs fdisk parted truncate kill killall pkill unlink srm"
)
_WRAPPERS: Final = _words("sudo doas env nohup time command nice exec xargs")
"""Words that run the next word as the command (``sudo rm``, ``env A=1 make``)."""
_VALUE_OPTIONS: Final = frozenset({"-u", "-g", "-h", "-p", "-C", "-U", "-D", "-r", "-t", "-n", "-c"})
"""Options of the wrappers, and of git, whose value is the next word (``sudo -u root``, ``git -C dir``)."""
_GIT_READ: Final = _words(
    "status log diff show blame shortlog ls-files ls-tree rev-parse describe reflog grep whatchanged"
)
_GIT_DESTRUCTIVE: Final = _words("clean rm filter-branch")
_OPERATORS: Final = frozenset({";", "&&", "||", "|", "&", "|&", "\n"})
_SUBSTITUTION: Final = re.compile(r"\$\(|`|<\(|>\(")
_WIDE_TARGETS: Final = frozenset({"/", "/*", "~", "~/", "~/*", "$HOME", "${HOME}", "*", ".", "..", "./*"})

_SECRET_PLACES: Final = (".ssh", ".aws", ".gnupg", ".config/gcloud", ".kube", ".docker", ".netrc", ".pgpass")
"""Folders and files under the home directory where secrets are kept."""
_LOGIN_FILES: Final = (".bashrc", ".bash_profile", ".profile", ".zshrc", ".zprofile", ".config/autostart")
"""Files and folders under the home directory whose content runs at login."""
_AGENT_SETTINGS: Final = re.compile(r"(^|/)\.claude/settings(\.local)?\.json$|(^|/)\.claude\.json$")
_WRITE_TOOLS: Final = {"Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path"}
_READ_TOOLS: Final = {"Read": "file_path", "Glob": "path", "Grep": "path", "LS": "path"}
_QUIET_TOOLS: Final = frozenset({"Task", "TodoWrite", "ExitPlanMode", "BashOutput", "KillShell", "WebSearch"})
LONG_QUERY: Final = 200
"""A URL query longer than this many characters can carry data away; it raises a fetch's level."""


def builtin_risk(
    tool: str,
    tool_input: Mapping[str, Any],
    *,
    cwd: str = "",
    home: Path | None = None,
    protected: Sequence[Path] = (),
) -> Risk:
    """The risk of one call of the agent's tool ``tool`` with ``tool_input``.

    ``cwd`` is the agent's working directory, ``home`` the user's home (default: this process's),
    ``protected`` approver's own config and data directories.
    """
    places = _Places(cwd, home if home is not None else Path.home(), protected)
    if tool == "Bash":
        return command_risk(tool_input.get("command"))
    if tool in _WRITE_TOOLS or tool == "NotebookEdit":
        key = _WRITE_TOOLS.get(tool, "notebook_path")
        return places.write_risk(tool_input.get(key))
    if tool in _READ_TOOLS:
        return places.read_risk(tool_input.get(_READ_TOOLS[tool]))
    if tool == "WebFetch":
        return url_risk(tool_input.get("url"))
    if tool in _QUIET_TOOLS:
        risk_class = _READ if tool in ("WebSearch", "BashOutput") else _OTHER
        return Risk(risk_class, RiskLevel.LOW, (f"{tool} is one of the agent's own tools",))
    name = tool.split("__")[-1] if tool.startswith("mcp__") else tool
    schema = {"type": "object", "properties": {key: {} for key in tool_input}}
    return classify(name, None, schema, None)


def command_risk(command: Any) -> Risk:
    """The risk of running ``command`` in a shell (see the module docstring)."""
    if not isinstance(command, str) or not command.strip():
        return Risk(_EXECUTE, RiskLevel.HIGH, ("the command is missing or not text",))
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace = " \t\r"  # a line break separates commands
        lexer.wordchars += "$[]{}:%+@,^!"
        words = list(lexer)
    except ValueError as exc:
        return Risk(_EXECUTE, RiskLevel.HIGH, (f"the command cannot be split as a shell would ({exc})",))
    found: list[tuple[RiskClass, RiskLevel, str]] = []
    if _SUBSTITUTION.search(command):
        found.append((_EXECUTE, RiskLevel.HIGH, "it runs a command substitution"))
    for segment, redirects in _segments(words):
        found.append(_segment_risk(segment))
        for target in redirects:
            if target not in ("/dev/null", "&1", "&2", "1", "2"):
                found.append((_WRITE, RiskLevel.MEDIUM, f"it writes to {target} (redirection)"))
    if not found:
        return Risk(_EXECUTE, RiskLevel.HIGH, ("no command was found in it",))
    risk_class = max((cls for cls, _, _ in found), key=lambda cls: _DANGER[cls])
    level = max((lvl for _, lvl, _ in found), key=lambda lvl: lvl.rank)
    reasons = tuple(dict.fromkeys(reason for _, _, reason in found))
    return Risk(risk_class, level, reasons)


def _segments(words: list[str]) -> list[tuple[list[str], list[str]]]:
    """Each simple command's words, and the files its output is redirected to."""
    result: list[tuple[list[str], list[str]]] = []
    current: list[str] = []
    redirects: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in _OPERATORS or word in ("(", ")"):
            if current:
                result.append((current, redirects))
            current, redirects = [], []
        elif word.isdigit() and index + 1 < len(words) and words[index + 1].startswith(">"):
            pass  # the file descriptor of a redirection (2>&1)
        elif word in (">", ">>", ">|", "&>", ">&") or word.endswith(">"):
            if index + 1 < len(words):
                redirects.append(words[index + 1].lstrip("|"))
                index += 1
        elif word == "<":
            index += 1  # reading a file in changes nothing
        else:
            current.append(word)
        index += 1
    if current:
        result.append((current, redirects))
    return result


def _segment_risk(words: list[str]) -> tuple[RiskClass, RiskLevel, str]:
    raised = False
    while words and (words[0] in _WRAPPERS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0])):
        raised = raised or words[0] in ("sudo", "doas")
        words = words[1:]
        while words and words[0].startswith("-") and len(words) > 1:
            # The wrapper's own options (sudo -u root ...), with their values.
            words = words[2:] if words[0] in _VALUE_OPTIONS else words[1:]
    if not words:
        return _OTHER, RiskLevel.LOW, "only sets variables"
    name = os.path.basename(words[0])
    risk_class, level, reason = _command_class(name, words[1:])
    if raised:
        return risk_class, level.raised(), f"{reason}, as root (sudo)"
    return risk_class, level, reason


def _command_class(name: str, args: list[str]) -> tuple[RiskClass, RiskLevel, str]:
    said = f"`{' '.join([name, *args])[:60]}`"
    if name in _DESTRUCTIVE_COMMANDS:
        if name == "rm" and _recursive(args):
            return _DESTRUCTIVE, RiskLevel.CRITICAL, f"it deletes recursively: {said}"
        if any(arg in _WIDE_TARGETS for arg in args):
            return _DESTRUCTIVE, RiskLevel.CRITICAL, f"it is aimed at a whole folder or disk: {said}"
        return _DESTRUCTIVE, RiskLevel.HIGH, f"it deletes or destroys: {said}"
    if name == "git":
        return _git_class(args, said)
    if name in ("sed", "perl") and any(arg.startswith("-i") for arg in args):
        return _WRITE, RiskLevel.MEDIUM, f"it edits files in place: {said}"
    if name == "find" and any(arg in ("-delete", "-exec", "-execdir", "-ok") for arg in args):
        return _DESTRUCTIVE, RiskLevel.HIGH, f"find that deletes or runs commands: {said}"
    if name in _READ_COMMANDS or (name == "find"):
        return _READ, RiskLevel.LOW, f"it only reads: {said}"
    if name in _WRITE_COMMANDS:
        return _WRITE, RiskLevel.MEDIUM, f"it changes files: {said}"
    return _EXECUTE, RiskLevel.HIGH, f"it runs a program: {said}"


def _recursive(args: list[str]) -> bool:
    return any(
        arg in ("--recursive", "-R") or (re.fullmatch(r"-[a-zA-Z]+", arg) is not None and "r" in arg.lower())
        for arg in args
    )


def _git_class(args: list[str], said: str) -> tuple[RiskClass, RiskLevel, str]:
    at = 0
    while at < len(args) and args[at].startswith("-"):
        at += 2 if args[at] in _VALUE_OPTIONS or args[at] in ("--git-dir", "--work-tree") else 1
    sub = args[at] if at < len(args) else ""
    rest = args[at + 1 :]
    forced = any(arg in ("-f", "--force", "--force-with-lease", "--mirror", "--delete", "-d") for arg in rest)
    if sub in _GIT_DESTRUCTIVE or (sub == "reset" and "--hard" in rest):
        return _DESTRUCTIVE, RiskLevel.HIGH, f"it throws work away: {said}"
    if sub == "push" and (forced or any(arg.startswith("+") or arg.startswith(":") for arg in rest)):
        return _DESTRUCTIVE, RiskLevel.CRITICAL, f"it rewrites or deletes remote history: {said}"
    if sub == "branch" and any(arg in ("-D", "-d", "--delete") for arg in rest):
        return _DESTRUCTIVE, RiskLevel.HIGH, f"it deletes a branch: {said}"
    if sub in ("checkout", "restore") and ("--" in rest or "." in rest):
        return _DESTRUCTIVE, RiskLevel.HIGH, f"it discards changes: {said}"
    if sub in ("stash",) and rest[:1] and rest[0] in ("drop", "clear"):
        return _DESTRUCTIVE, RiskLevel.HIGH, f"it discards stashed work: {said}"
    if sub in _GIT_READ or (sub in ("branch", "tag", "remote", "stash") and not rest) or sub == "":
        return _READ, RiskLevel.LOW, f"it only reads: {said}"
    if sub == "push":
        return _WRITE, RiskLevel.HIGH, f"it sends commits to another computer: {said}"
    return _WRITE, RiskLevel.MEDIUM, f"it changes the repository: {said}"


def url_risk(url: Any) -> Risk:
    """The risk of fetching ``url``: ``read``, raised where data can leave or local services answer."""
    if not isinstance(url, str) or not url:
        return Risk(_READ, RiskLevel.MEDIUM, ("the URL is missing or not text",))
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return Risk(_READ, RiskLevel.MEDIUM, ("the URL cannot be read",))
    reasons = [f"it fetches {host or url[:60]}"]
    level = RiskLevel.LOW
    if parts.scheme != "https":
        reasons.append(f"not https ({parts.scheme or 'no scheme'})")
        level = RiskLevel.MEDIUM
    if host in ("localhost", "") or re.fullmatch(r"[\d.]+|\[?[0-9a-fA-F:]+\]?", host):
        reasons.append("a bare address or this computer, where local services answer")
        level = RiskLevel.MEDIUM
    if len(parts.query) > LONG_QUERY:
        reasons.append(f"its query is {len(parts.query):,} characters long: data can leave in it")
        level = RiskLevel.MEDIUM
    return Risk(_READ, level, tuple(reasons))


class _Places:
    """Where a path lies: the working directory, secrets, login files, approver's own folders."""

    def __init__(self, cwd: str, home: Path, protected: Sequence[Path]) -> None:
        self.cwd = os.path.normpath(cwd) if cwd and os.path.isabs(cwd) else ""
        self.home = os.path.normpath(str(home))
        self.protected = [os.path.normpath(str(path)) for path in protected]

    def _absolute(self, path: Any) -> str | None:
        if not isinstance(path, str) or not path:
            return None
        expanded = os.path.expanduser(path) if path.startswith("~") else path
        if not os.path.isabs(expanded):
            if not self.cwd:
                return None
            expanded = os.path.join(self.cwd, expanded)
        return os.path.normpath(expanded)

    def _under(self, path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip("/") + "/")

    def _in_home(self, path: str, places: Sequence[str]) -> str | None:
        return next((place for place in places if self._under(path, os.path.join(self.home, place))), None)

    def write_risk(self, path: Any) -> Risk:
        where = self._absolute(path)
        if where is None:
            return Risk(
                _WRITE, RiskLevel.HIGH, ("the path is missing, or relative with no working directory",)
            )
        if any(self._under(where, folder) for folder in self.protected):
            return Risk(_WRITE, RiskLevel.CRITICAL, (f"it changes approver's own files: {where}",))
        if _AGENT_SETTINGS.search(where):
            return Risk(
                _WRITE, RiskLevel.CRITICAL, (f"it changes the agent's own settings (its hooks): {where}",)
            )
        secret = self._in_home(where, _SECRET_PLACES)
        if secret is not None or self._under(where, "/etc"):
            return Risk(_WRITE, RiskLevel.HIGH, (f"it writes where secrets or system settings are: {where}",))
        login = self._in_home(where, _LOGIN_FILES)
        if login is not None:
            return Risk(_WRITE, RiskLevel.HIGH, (f"it changes what runs at login ({login}): {where}",))
        if self.cwd and not self._under(where, self.cwd):
            return Risk(
                _WRITE, RiskLevel.HIGH, (f"it writes outside the working directory {self.cwd}: {where}",)
            )
        return Risk(_WRITE, RiskLevel.MEDIUM, (f"it writes a file: {where}",))

    def read_risk(self, path: Any) -> Risk:
        where = self._absolute(path)
        if where is None:
            return Risk(_READ, RiskLevel.LOW, ("it reads in the working directory",))
        if any(self._under(where, folder) for folder in self.protected):
            return Risk(
                _READ,
                RiskLevel.HIGH,
                (f"it reads approver's own files (client tokens may be there): {where}",),
            )
        secret = self._in_home(where, _SECRET_PLACES)
        if secret is not None or os.path.basename(where).startswith(".env"):
            return Risk(_READ, RiskLevel.HIGH, (f"it reads where secrets are kept: {where}",))
        return Risk(_READ, RiskLevel.LOW, (f"it reads: {where}",))
