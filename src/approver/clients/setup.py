"""One object with everything install and uninstall need, for front-ends that offer both (the desktop app)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from approver.clients.formats import ClientFormat, read_client_file
from approver.clients.hooks import CLAUDE_CODE, hook_command, hook_installed, plan_hook_install, settings_path
from approver.clients.importing import ImportFailed, ImportPlan, apply_import, plan_import
from approver.clients.routing import Change, Route, plan_install, plan_uninstall
from approver.clients.status import RoutingStatus, routing_status
from approver.config.paths import Paths
from approver.config.secrets import SecretStore
from approver.config.servers import read_servers_data


def bridge_data_dir(paths: Paths) -> Path | None:
    """The ``--data-dir`` the bridge needs to find ``paths``' tokens, or None for the default one.

    A client starts the bridge without approver's environment, so an override given by flag or
    ``APPROVER_DATA_DIR`` must be written into the command.
    """
    return None if paths.data_dir == Paths.resolve(environ={}).data_dir else paths.data_dir


@dataclass(frozen=True)
class Installer:
    """Plans installs and uninstalls of the stdio bridge into any known client."""

    servers_file: Path
    bridge_command: tuple[str, ...]
    data_dir: Path | None = None
    locate: Callable[[ClientFormat], Path] | None = None
    """Where each client's config is; default: its user-level file."""
    secrets: SecretStore | None = None
    """Where import moves a client's literal secrets; None: import is not offered."""
    home: Path | None = None
    """The home directory ``${userHome}`` means (default: the user's)."""
    hook_settings: Path | None = None
    """Claude Code's settings, where its hook goes (default: ``~/.claude/settings.json`` of ``home``)."""

    def path(self, client: ClientFormat) -> Path:
        """The config file of ``client`` that install and uninstall change."""
        return self.locate(client) if self.locate is not None else client.default_path()

    def plan_install(self, client: ClientFormat) -> Change:
        """The rewrite that routes ``client`` through approver's stdio bridge."""
        known = set(read_servers_data(self.servers_file).get("mcpServers", {}))
        route = Route(client.name, self.bridge_command, self.data_dir)
        return plan_install(client, self.path(client), route, known)

    def plan_uninstall(self, client: ClientFormat) -> Change:
        """The restore of ``client``'s config from approver's newest backup."""
        return plan_uninstall(client, self.path(client))

    def plan_import(self, client: ClientFormat) -> ImportPlan:
        """What importing ``client``'s servers into servers.json would change (nothing is written)."""
        if self.secrets is None:
            raise ImportFailed("importing is not available here")
        source = read_client_file(client, self.path(client))
        return plan_import(source, self.servers_file, self.secrets, self.home or Path.home())

    def apply_import(self, plan: ImportPlan) -> None:
        """Store the plan's secrets, then write servers.json (see :func:`apply_import`)."""
        if self.secrets is None:
            raise ImportFailed("importing is not available here")
        self.servers_file.parent.mkdir(parents=True, exist_ok=True)
        apply_import(plan, self.secrets)

    def status(self, client: ClientFormat) -> RoutingStatus:
        """Whether ``client`` is routed through approver now."""
        return routing_status(client, self.path(client))

    # -- Claude Code's own tools (its PreToolUse hook) -----------------------------------------

    def hook_settings_path(self) -> Path:
        """The Claude Code settings file that the hook is installed in."""
        return self.hook_settings if self.hook_settings is not None else settings_path(self.home)

    def plan_hook_install(self) -> Change:
        """The change that makes Claude Code hand its own tool calls to approver (:mod:`clients.hooks`)."""
        command = hook_command(self.bridge_command, self.data_dir)
        return plan_hook_install(self.hook_settings_path(), command)

    def plan_hook_uninstall(self) -> Change:
        """The restore of Claude Code's settings from the backup the hook install made."""
        return plan_uninstall(CLAUDE_CODE, self.hook_settings_path())

    def hook_installed(self) -> bool:
        """Whether Claude Code's settings run approver's hook now."""
        return hook_installed(self.hook_settings_path())
