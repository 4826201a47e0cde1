"""Is a client routed through approver? :func:`routing_status` answers for ``approver doctor``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from approver.clients.formats import ClientFormat, client_format, read_client_file
from approver.clients.routing import installed, is_approver
from approver.errors import ApproverError

State = Literal["missing", "unreadable", "empty", "direct", "partial", "routed"]
"""``routed``: every server goes through approver; ``partial``: approver and others side by side;
``direct``: approver is not there; ``empty``: no servers; ``missing``: no config file."""


@dataclass(frozen=True)
class RoutingStatus:
    """Whether one client reaches its servers only through approver."""

    client: str
    path: Path
    state: State
    bypassing: tuple[str, ...] = ()
    """Servers the client reaches directly, not through approver."""
    installed: bool = False
    """True when ``approver install`` left a backup that ``approver uninstall`` can restore."""
    detail: str = ""
    """One sentence for the user."""

    @property
    def routed(self) -> bool:
        """True when the client has approver and nothing that bypasses it."""
        return self.state == "routed"


def routing_status(
    client: str | ClientFormat, path: Path | None = None, home: Path | None = None
) -> RoutingStatus:
    """The routing state of ``client``'s config at ``path`` (default: its user-level file).

    Never raises for a bad file: an unreadable one is reported as ``unreadable`` with the reason.
    Claude Code's project-scoped servers in ``~/.claude.json`` count as bypassing.
    """
    fmt = client if isinstance(client, ClientFormat) else client_format(client)
    path = path if path is not None else fmt.default_path(home)
    try:
        source = read_client_file(fmt, path)
        has_backup = installed(path)
    except ApproverError as exc:
        return RoutingStatus(fmt.name, path, "unreadable", detail=str(exc))
    if not source.exists:
        return RoutingStatus(fmt.name, path, "missing", detail=f"{fmt.title}: no config file at {path}")
    through = [n for n, e in source.servers.items() if is_approver(fmt, n, e)]
    bypassing = [n for n, e in source.servers.items() if not is_approver(fmt, n, e)]
    projects = source.data.get("projects") if fmt.name == "claude-code" else None
    if isinstance(projects, dict):
        bypassing += [
            f"{name} (project {project})"
            for project, settings in projects.items()
            if isinstance(settings, dict) and isinstance(settings.get("mcpServers"), dict)
            for name in settings["mcpServers"]
        ]
    state: State
    if through and not bypassing:
        state, detail = "routed", f"{fmt.title} reaches its servers only through approver"
    elif through:
        state = "partial"
        detail = f"{fmt.title} reaches {', '.join(bypassing)} directly, bypassing approver"
    elif bypassing:
        state = "direct"
        detail = f"{fmt.title} does not use approver; run `approver install {fmt.name}`"
    else:
        state, detail = "empty", f"{fmt.title} has no MCP servers in {path}"
    return RoutingStatus(fmt.name, path, state, tuple(bypassing), has_backup, detail)
