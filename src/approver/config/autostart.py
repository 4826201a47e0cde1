"""Start at login: an XDG autostart entry on Linux and other freedesktop systems.

The entry is ``$XDG_CONFIG_HOME/autostart/approver.desktop`` (``~/.config/autostart`` by
default), which GNOME, KDE, Xfce, Cinnamon, MATE and LXQt all honour. macOS (a LaunchAgent) and
Windows (a Run key) are not implemented; :attr:`Autostart.supported` is False there and the UI
says so instead of offering a switch that does nothing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Final

from approver.errors import ApproverError

ENTRY_NAME: Final = "approver.desktop"


class AutostartError(ApproverError):
    """The autostart entry could not be written or removed."""


def default_command() -> list[str]:
    """How to start the desktop app: the frozen app itself, the ``approver`` script, else this
    Python with ``-m approver``."""
    if getattr(sys, "frozen", False):  # a PyInstaller build: sys.executable is the app
        return [sys.executable]
    script = shutil.which("approver")
    if script:
        return [str(Path(script).resolve())]
    return [sys.executable, "-m", "approver"]


def _exec_line(command: Sequence[str]) -> str:
    # The desktop entry spec quotes with double quotes and escapes ", `, $ and \ inside them;
    # arguments without special characters stay bare.
    def quote(arg: str) -> str:
        if arg and all(c.isalnum() or c in "/._-+=:," for c in arg):
            return arg
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        return f'"{escaped}"'

    return " ".join(quote(arg) for arg in command)


def icon_file() -> Path | None:
    """The application icon shipped inside the package (an SVG), or None if it is missing."""
    path = Path(str(resources.files("approver").joinpath("resources", "approver.svg")))
    return path if path.is_file() else None


class Autostart:
    """Reads and switches the autostart entry. ``environ`` and ``platform`` are for tests."""

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        platform: str = sys.platform,
    ) -> None:
        environ = os.environ if environ is None else environ
        self.command = list(command) if command is not None else default_command()
        self.supported = platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))
        config_home = environ.get("XDG_CONFIG_HOME") or str(
            Path(environ.get("HOME", "~")).expanduser() / ".config"
        )
        self.path = Path(config_home) / "autostart" / ENTRY_NAME

    def unsupported_reason(self) -> str:
        """Why the switch is unavailable on this system ("" when it is available)."""
        if self.supported:
            return ""
        return "Start at login is only built for Linux desktops (XDG autostart) so far."

    def enabled(self) -> bool:
        """Whether approver starts at login (an entry exists and is not hidden)."""
        try:
            text = self.path.read_text("utf-8")
        except OSError:
            return False
        lines = {line.strip() for line in text.splitlines()}
        return "Hidden=true" not in lines and "X-GNOME-Autostart-enabled=false" not in lines

    def set_enabled(self, enabled: bool) -> None:
        """Create or remove the entry. Raises :class:`AutostartError` with what went wrong."""
        if not self.supported:
            raise AutostartError(self.unsupported_reason())
        try:
            if enabled:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                temp = self.path.with_name(f".{ENTRY_NAME}.tmp")
                temp.write_text(self.entry(), "utf-8")
                temp.replace(self.path)
            else:
                self.path.unlink(missing_ok=True)
        except OSError as exc:
            action = "create" if enabled else "remove"
            raise AutostartError(f"could not {action} {self.path}: {exc.strerror or exc}") from None

    def entry(self) -> str:
        """The text of the desktop entry."""
        return (
            "[Desktop Entry]\n"
            "Type=Application\n"
            "Name=approver\n"
            "Comment=Approve or deny what AI agents do through MCP\n"
            f"Exec={_exec_line(self.command)}\n"
            # An absolute path works whether or not the icon was copied into an icon theme.
            f"Icon={icon_file() or 'approver'}\n"
            "Terminal=false\n"
            "X-GNOME-Autostart-enabled=true\n"
            f"# Written by approver; {shlex.join(self.command)}\n"
        )
