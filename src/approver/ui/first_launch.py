"""The main window's next step when approver guards no server yet: import, add, open the file, or the demo.

A first start has no ``servers.json``. Rather than a green icon and "0 of 0 ready", the main
window says what approver is for and offers the ways in: import the servers of an app found on
this computer (the same diff-and-confirm as Connect a client), add one by hand, open
``servers.json``, or try the demo (which runs apart, on a throwaway configuration).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PySide6.QtCore import QProcess, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from approver.clients.formats import CLIENTS, ClientFormat
from approver.clients.status import routing_status
from approver.config.paths import write_private_text
from approver.config.schema import schema_uri
from approver.ui.text import plain_label

INTRO: Final = (
    "No servers yet. approver guards the tools of the MCP servers your apps use: bring those servers "
    "in here, and let your apps reach them through approver."
)
_MAX_NAMES: Final = 3


@dataclass(frozen=True, slots=True)
class FoundClient:
    """An app on this computer whose own config lists MCP servers approver could guard."""

    name: str
    title: str
    servers: tuple[str, ...]

    def label(self) -> str:
        """The import button's text: ``Import from Cursor (github, filesystem)…``."""
        names = ", ".join(self.servers[:_MAX_NAMES]) + (", …" if len(self.servers) > _MAX_NAMES else "")
        return f"Import from {self.title} ({names})…"


def found_clients(locate: Callable[[ClientFormat], Path] | None = None) -> list[FoundClient]:
    """The apps whose user-level config lists servers that do not go through approver yet."""
    found = []
    for client in CLIENTS.values():
        status = routing_status(client, locate(client) if locate is not None else None)
        servers = tuple(name for name in status.bypassing if " (project " not in name)
        if status.state in ("direct", "partial") and servers:
            found.append(FoundClient(client.name, client.title, servers))
    return found


class FirstLaunchPanel(QFrame):
    """What to do when approver has no server; hidden once it has one."""

    import_requested = Signal(str)
    """The user wants to import the servers of this app (a client name)."""
    add_requested = Signal()
    """The user wants to add a server by hand."""

    def __init__(
        self, servers_file: Path, bridge_command: Sequence[str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("first_launch")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("QFrame#first_launch { background: #eef5ff; }")
        self._file = servers_file
        self._bridge = list(bridge_command)
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(INTRO, reveal=False, wrap=True))
        self.found_label = plain_label(wrap=True, name="found")
        layout.addWidget(self.found_label)
        self._imports = QGridLayout()
        layout.addLayout(self._imports)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add a server…")
        self.add_button.clicked.connect(self.add_requested)
        self.open_button = QPushButton("Open servers.json")
        self.open_button.setToolTip(f"{servers_file}: approver starts what you add as soon as you save")
        self.open_button.clicked.connect(self.open_servers_file)
        self.demo_button = QPushButton("Try the demo")
        self.demo_button.setToolTip("A sandboxed demo server and a scripted agent, in a window of their own")
        self.demo_button.clicked.connect(self.start_demo)
        for button in (self.add_button, self.open_button, self.demo_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.message = plain_label(wrap=True, name="first_launch_message")
        self.message.hide()  # shown with its first text: an empty line would only pad the panel
        layout.addWidget(self.message)
        self.import_buttons: list[QPushButton] = []

    def set_found(self, found: Sequence[FoundClient]) -> None:
        """Offer an import button for each app found."""
        for button in self.import_buttons:
            self._imports.removeWidget(button)
            button.deleteLater()
        self.import_buttons = []
        if found:
            self.found_label.setText("Found on this computer:")
        else:
            apps = ", ".join(client.title for client in CLIENTS.values())
            self.found_label.setText(f"No app with MCP servers was found on this computer ({apps}).")
        for index, client in enumerate(found):
            button = QPushButton(client.label())
            button.setObjectName(f"import_{client.name}")
            button.clicked.connect(lambda _checked=False, name=client.name: self.import_requested.emit(name))
            self._imports.addWidget(button, index // 2, index % 2)
            self.import_buttons.append(button)

    def open_servers_file(self) -> None:
        """Open servers.json in the desktop's editor, creating an empty one first if there is none."""
        if not self._file.exists():
            self._file.parent.mkdir(parents=True, exist_ok=True)
            empty = {"$schema": schema_uri("servers"), "mcpServers": {}}
            write_private_text(self._file, json.dumps(empty, indent=2) + "\n")
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._file))):
            self._say(f"Opened {self._file}; approver starts what you add as soon as you save it.")
        else:
            self._say(f"Could not open {self._file} with your desktop's editor; open it by hand.")

    def start_demo(self) -> None:
        """Start ``approver demo`` as a process of its own (its own configuration, its own window)."""
        started, _pid = QProcess.startDetached(self._bridge[0], [*self._bridge[1:], "demo"])
        self._say(
            "The demo starts in a window of its own, on a throwaway configuration that leaves yours alone."
            if started
            else f"Could not start the demo: run `{' '.join(self._bridge)} demo` in a terminal."
        )

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()
