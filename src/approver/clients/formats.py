"""Where each MCP client keeps its server table, and how to read it and write it back.

Five clients are known, each by the name the command line uses: ``claude-desktop``,
``claude-code``, ``cursor``, ``vscode`` and ``windsurf``. A :class:`ClientFile` is one client's
config file as read from disk; :meth:`ClientFile.with_servers` returns the file's text with only
the server table replaced, so every other key, the comments and the indentation stay as they were.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from approver.clients import jsonedit
from approver.errors import ApproverError, ConfigError

Syntax = Literal["none", "claude-code", "editor"]
"""How a client expands variables in its config: not at all; ``${VAR}`` and ``${VAR:-default}``;
or editor style ``${env:NAME}``, ``${userHome}``, ``${workspaceFolder}`` (and VS Code's ``${input:id}``)."""


class UnknownClientError(ApproverError):
    """A client name approver does not know."""


@dataclass(frozen=True)
class ClientFormat:
    """One MCP client's config format."""

    name: str
    """The name on the command line, also the client name approver records for its calls."""
    title: str
    table_key: str
    """The top-level key of the server table: ``mcpServers``, or ``servers`` for VS Code."""
    syntax: Syntax
    url_key: str = "url"
    """The key of a remote server's URL (Windsurf uses ``serverUrl``)."""
    http: bool = True
    """True when the client can reach an HTTP server with an Authorization header."""
    writes_type: bool = False
    """True when the client's own entries carry ``"type": "stdio"``."""
    project_files: tuple[str, ...] = ()
    """Per-project config files, relative to the project directory (use them with ``--path``)."""

    def default_path(
        self, home: Path | None = None, platform: str = sys.platform, environ: Mapping[str, str] = os.environ
    ) -> Path:
        """The user-level config file on ``platform`` (``home`` and ``environ`` are for tests)."""
        home = home if home is not None else Path.home()
        return _DEFAULT_PATHS[self.name](home, platform, environ)


def _app_config_dir(home: Path, platform: str, environ: Mapping[str, str]) -> Path:
    """Where desktop apps keep their settings: Application Support, %APPDATA% or XDG config."""
    if platform == "darwin":
        return home / "Library" / "Application Support"
    if platform.startswith("win"):
        return Path(environ.get("APPDATA") or home / "AppData" / "Roaming")
    return Path(environ.get("XDG_CONFIG_HOME") or home / ".config")


_DEFAULT_PATHS: Final[Mapping[str, Callable[[Path, str, Mapping[str, str]], Path]]] = {
    "claude-desktop": lambda h, p, e: _app_config_dir(h, p, e) / "Claude" / "claude_desktop_config.json",
    "claude-code": lambda h, p, e: h / ".claude.json",
    "cursor": lambda h, p, e: h / ".cursor" / "mcp.json",
    "vscode": lambda h, p, e: _app_config_dir(h, p, e) / "Code" / "User" / "mcp.json",
    "windsurf": lambda h, p, e: h / ".codeium" / "windsurf" / "mcp_config.json",
}

CLIENTS: Final[Mapping[str, ClientFormat]] = {
    f.name: f
    for f in (
        ClientFormat("claude-desktop", "Claude Desktop", "mcpServers", "none", http=False),
        ClientFormat(
            "claude-code",
            "Claude Code",
            "mcpServers",
            "claude-code",
            writes_type=True,
            project_files=(".mcp.json",),
        ),
        ClientFormat("cursor", "Cursor", "mcpServers", "editor", project_files=(".cursor/mcp.json",)),
        ClientFormat(
            "vscode", "VS Code", "servers", "editor", writes_type=True, project_files=(".vscode/mcp.json",)
        ),
        ClientFormat("windsurf", "Windsurf", "mcpServers", "editor", url_key="serverUrl"),
    )
}
"""Every known client, by command-line name."""


def client_format(name: str) -> ClientFormat:
    """The format of client ``name``, or UnknownClientError listing the known names."""
    try:
        return CLIENTS[name]
    except KeyError:
        raise UnknownClientError(f"unknown client {name!r}: use one of {', '.join(CLIENTS)}") from None


@dataclass(frozen=True)
class ClientFile:
    """One client config file as it is on disk (``text`` is None when there is no file yet)."""

    client: ClientFormat
    path: Path
    text: str | None = field(repr=False)
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def exists(self) -> bool:
        """True when the file exists."""
        return self.text is not None

    @property
    def servers(self) -> dict[str, Any]:
        """The server table (empty when the file or the table is missing)."""
        table = self.data.get(self.client.table_key, {})
        return table if isinstance(table, dict) else {}

    @property
    def workspace(self) -> Path | None:
        """The project directory of a per-project file (``.vscode/mcp.json`` -> the project), else None."""
        for relative in self.client.project_files:
            parts = Path(relative).parts
            if self.path.parts[-len(parts) :] == parts:
                return self.path.parents[len(parts) - 1]
        return None

    def with_servers(self, table: Mapping[str, Any]) -> str:
        """The file's text with the server table replaced by ``table``, everything else unchanged."""
        if self.text is None or not self.text.strip():
            return jsonedit.new_document({self.client.table_key: dict(table)})
        return jsonedit.set_member(self.text, [self.client.table_key], dict(table))


def read_client_file(client: ClientFormat, path: Path) -> ClientFile:
    """Read ``path`` as ``client``'s config; a missing file reads as an empty one.

    Raises ConfigError when the file cannot be read, is not JSON, or its table is not an object.
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ClientFile(client, path, None)
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(file, "", f"cannot be read: {exc.strerror or exc}") from None
    if not text.strip():
        return ClientFile(client, path, text)
    data = jsonedit.parse(text, file)
    if not isinstance(data, dict):
        raise ConfigError(file, "", "expected a JSON object at the top level")
    table = data.get(client.table_key, {})
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ConfigError(file, f"/{client.table_key}", "expected an object of server entries")
    return ClientFile(client, path, text, data)
