"""The Connect a client window: the URL, command and config snippets one named client pastes in.

Each client gets its own token, so the audit log records who made each call. The token is a
secret: it is masked on screen until the user asks to see it, and copied only on request.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QGuiApplication, QHideEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from approver.clients.setup import Installer
from approver.config.patience import Patience
from approver.config.servers import NAME_PATTERN
from approver.config.tokens import TokenStore
from approver.errors import ApproverError
from approver.gateway.front import MCP_PATH
from approver.service import HOST, client_url
from approver.ui.client_install import ClientInstallPanel
from approver.ui.client_token import TokenPanel
from approver.ui.placement import place
from approver.ui.text import plain_label
from approver.visible import reveal_text

WINDOW_TITLE: Final = "Connect a client"
"""The title (the desktop adds the application's name)."""

MASK: Final = "••••••••"
"""What stands in for the token on screen until "Show token" is checked."""

SERVER_KEY: Final = "approver"
"""The name the snippets give approver under ``mcpServers``."""

INVALID_NAME: Final = "A client name is 1 to 64 letters, digits, '.', '_' or '-' (no spaces)."

FIELDS: Final = ("url_with_token", "plain_url", "auth_header", "stdio_command", "stdio_json", "http_json")
"""The object names of the value fields, in display order (each has a ``copy_<name>`` button)."""

_TITLES: Final = {
    "url_with_token": "URL with the token, for clients that only take a URL",
    "plain_url": "URL, for clients that can send a header",
    "auth_header": "Header to send with that URL",
    "stdio_command": "Command, for clients that start a program (stdio)",
    "stdio_json": "mcpServers entry for stdio clients (Claude Desktop and others)",
    "http_json": "mcpServers entry for HTTP clients (Claude Code, Cursor and others)",
}
_SHORT_NAMES: Final = {
    "url_with_token": "URL with the token",
    "plain_url": "URL",
    "auth_header": "Authorization header",
    "stdio_command": "command",
    "stdio_json": "mcpServers entry for stdio clients",
    "http_json": "mcpServers entry for HTTP clients",
}
_WITH_TOKEN: Final = frozenset({"url_with_token", "auth_header", "http_json"})


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Everything one client needs to reach approver; every field but ``token`` is ready to paste."""

    client: str
    token: str
    url_with_token: str
    plain_url: str
    auth_header: str
    stdio_command: str
    stdio_json: str
    http_json: str

    def text(self, field: str, *, masked: bool) -> str:
        """Field ``field`` (one of :data:`FIELDS`), with the token masked when ``masked``."""
        value: str = getattr(self, field)
        return value.replace(self.token, MASK) if masked else value


def client_settings(client: str, token: str, port: int, bridge_command: Sequence[str]) -> ClientSettings:
    """The settings for ``client`` (holding ``token``) to reach approver on ``port``."""
    plain_url = f"http://{HOST}:{port}{MCP_PATH}"
    command = [*bridge_command, "connect", "--client", client]
    stdio = {"command": command[0], "args": command[1:]}
    http = {"type": "http", "url": plain_url, "headers": {"Authorization": f"Bearer {token}"}}
    return ClientSettings(
        client=client,
        token=token,
        url_with_token=client_url(port, token),
        plain_url=plain_url,
        auth_header=f"Authorization: Bearer {token}",
        stdio_command=shlex.join(command),
        stdio_json=_snippet(stdio),
        http_json=_snippet(http),
    )


def _snippet(entry: Mapping[str, object]) -> str:
    """A ``{"mcpServers": {"approver": entry}}`` document, one line per field of ``entry``."""
    fields = ",\n".join(f"      {json.dumps(key)}: {json.dumps(value)}" for key, value in entry.items())
    return f'{{\n  "mcpServers": {{\n    {json.dumps(SERVER_KEY)}: {{\n{fields}\n    }}\n  }}\n}}'


class ConnectWindow(QWidget):
    """Set up an app through approver, or pick a client name and copy its URL, header and snippets.

    Nothing is created by opening the window: a token is made only when the user asks for one.
    """

    def __init__(
        self,
        tokens: TokenStore,
        port: int,
        bridge_command: Sequence[str],
        parent: QWidget | None = None,
        *,
        installer: Installer | None = None,
        patience: Patience | None = None,
    ) -> None:
        super().__init__(parent)
        if not bridge_command:
            raise ValueError("bridge_command must name the approver program")
        self.setWindowTitle(WINDOW_TITLE)
        self._tokens = tokens
        self._port = port
        self._bridge = list(bridge_command)
        self._settings: ClientSettings | None = None
        self._values: dict[str, QLineEdit | QPlainTextEdit] = {}
        self._copy_buttons: list[QPushButton] = []
        self.install_panel: ClientInstallPanel | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(scroll)
        content = QWidget()
        self._content = QVBoxLayout(content)
        scroll.setWidget(content)
        self._content.addWidget(
            plain_label(
                "Each MCP client (an agent, an editor, a chat app) reaches approver under its own name: "
                "approver records which client made each call, and you can revoke one client without "
                "touching the others.",
                reveal=False,
                wrap=True,
            )
        )
        if installer is not None:
            self.install_panel = ClientInstallPanel(installer, self)
            self._content.addWidget(self.install_panel)
        self._content.addWidget(self._build_manual(tokens, patience))
        self._content.addStretch(1)
        clients = tokens.clients()
        if clients:
            self.name_edit.setText(clients[0])
            self.apply()
        else:
            self._name_edited()
            self._render()
        place(self, QSize(780, 900 if installer is not None else 640))

    def _build_manual(self, tokens: TokenStore, patience: Patience | None) -> QGroupBox:
        box = QGroupBox("Or connect any client by hand")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        row.addWidget(plain_label("Name of the client, as the audit log records it:", reveal=False))
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("client_name")
        self.name_edit.setPlaceholderText("for example cursor or my-agent")
        self.name_edit.textChanged.connect(self._name_edited)
        self.name_edit.returnPressed.connect(self.apply)
        row.addWidget(self.name_edit, 1)
        self.apply_button = QPushButton("Show settings")
        self.apply_button.setObjectName("apply")
        self.apply_button.setToolTip("Show this client's settings (its token is made only when you ask)")
        self.apply_button.clicked.connect(self.apply)
        row.addWidget(self.apply_button)
        self.create_button = QPushButton("Create a token")
        self.create_button.setObjectName("create")
        self.create_button.setToolTip("Make a token for this new client name")
        self.create_button.clicked.connect(self.create_token)
        self.create_button.hide()
        row.addWidget(self.create_button)
        layout.addLayout(row)
        self.name_message = plain_label(wrap=True, name="name_message")
        layout.addWidget(self.name_message)
        self.clients_label = plain_label(wrap=True, name="clients")
        layout.addWidget(self.clients_label)

        self.show_token = QCheckBox("Show token")
        self.show_token.setObjectName("show_token")
        self.show_token.toggled.connect(self._render)
        layout.addWidget(self.show_token)
        self.secret_note = plain_label(wrap=True, name="secret_note")
        layout.addWidget(self.secret_note)
        self.token_panel = TokenPanel(
            tokens, lambda: self._settings.client if self._settings else None, patience
        )
        self.token_panel.rotated.connect(lambda _client: self.apply())
        self.token_panel.revoked.connect(self._revoked)
        layout.addWidget(self.token_panel)

        grid = QGridLayout()
        for row_index, field in enumerate(FIELDS):
            value: QLineEdit | QPlainTextEdit
            if field.endswith("_json"):
                value = QPlainTextEdit()
                value.setMinimumHeight(110)
            else:
                value = QLineEdit()
            value.setObjectName(field)
            value.setReadOnly(True)
            copy = QPushButton("Copy")
            copy.setObjectName(f"copy_{field}")
            copy.clicked.connect(lambda _checked=False, field=field: self.copy(field))
            grid.addWidget(
                plain_label(_TITLES[field], reveal=False, wrap=True), row_index, 0, Qt.AlignmentFlag.AlignTop
            )
            grid.addWidget(value, row_index, 1)
            grid.addWidget(copy, row_index, 2, Qt.AlignmentFlag.AlignTop)
            self._values[field] = value
            self._copy_buttons.append(copy)
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        self.message = plain_label(wrap=True, name="message")
        layout.addWidget(self.message)
        return box

    def _revoked(self, client: str) -> None:
        self._settings = None
        self.name_message.setText(f'{client} has no token now. "Create a token" would make a new one.')
        self.create_button.show()
        self._render()

    @property
    def settings(self) -> ClientSettings | None:
        """The settings shown now, or None while the name field holds another (or an invalid) name."""
        return self._settings

    @Slot()
    def _name_edited(self) -> None:
        name = self.name_edit.text()
        valid = NAME_PATTERN.fullmatch(name) is not None
        self.apply_button.setEnabled(valid)
        self.create_button.hide()
        if not name:
            self.name_message.setText("Type a name for a new client, or one of the clients below.")
            self.name_message.setStyleSheet("")
        elif not valid:
            self.name_message.setText(INVALID_NAME)
            self.name_message.setStyleSheet("color: #c0392b;")
        elif self._settings is None or name != self._settings.client:
            self.name_message.setText(f'Press Enter or click "Show settings" to get the settings for {name}.')
            self.name_message.setStyleSheet("")
        if self._settings is not None and name != self._settings.client:
            self._settings = None
            self._render()

    @Slot()
    def apply(self) -> None:
        """Show the settings of the client named in the field; a new name is offered a token."""
        name = self.name_edit.text()
        if NAME_PATTERN.fullmatch(name) is None:
            self.name_message.setText(INVALID_NAME)
            self.name_message.setStyleSheet("color: #c0392b;")
            return
        token = self._tokens.get(name)
        if token is None and name in self._tokens.problems:
            self._failed(name, self._tokens.problems[name])
            return
        if token is None:
            self._settings = None
            self.name_message.setText(
                f'{name} has no token yet. "Create a token" makes one; any program that has it can use '
                f"approver as {name}."
            )
            self.name_message.setStyleSheet("")
            self.create_button.show()
            self._render()
            return
        self._show(name, token)

    @Slot()
    def create_token(self) -> None:
        """Create the token of the (new) client named in the field and show its settings."""
        name = self.name_edit.text()
        if NAME_PATTERN.fullmatch(name) is None:
            return
        try:
            token = self._tokens.get_or_create(name)
        except (ApproverError, ValueError) as exc:
            self._failed(name, str(exc))
            return
        self._show(name, token)

    def _failed(self, name: str, problem: str) -> None:
        self._settings = None
        self.create_button.hide()
        self.name_message.setText(reveal_text(f"Could not get a token for {name}: {problem}"))
        self.name_message.setStyleSheet("color: #c0392b;")
        self._render()

    def _show(self, name: str, token: str) -> None:
        self._settings = client_settings(name, token, self._port, self._bridge)
        self.create_button.hide()
        self.name_message.setText(f"Settings for the client {name}:")
        self.name_message.setStyleSheet("")
        self.message.setText("")
        self._render()

    @Slot()
    def _render(self) -> None:
        settings = self._settings
        masked = not self.show_token.isChecked()
        for field, widget in self._values.items():
            text = settings.text(field, masked=masked) if settings is not None else ""
            if isinstance(widget, QLineEdit):
                widget.setText(text)
                widget.setCursorPosition(0)
            else:
                widget.setPlainText(text)
        for button in self._copy_buttons:
            button.setEnabled(settings is not None)
        clients = self._tokens.clients()
        self.clients_label.setText("Clients with a token: " + (", ".join(clients) if clients else "none yet"))
        who = settings.client if settings is not None else "a client"
        self.secret_note.setText(
            f"The token is a secret: any program that has it can use approver as {who}. Paste it only "
            "into that client's settings, never into a chat or a shared file. The stdio command "
            f"contains no token: it reads it from approver's store. {self._tokens.storage_note}"
        )
        self.token_panel.refresh()

    def copy(self, field: str) -> None:
        """Put ``field`` (one of :data:`FIELDS`), token included, on the clipboard."""
        if self._settings is None:
            return
        QGuiApplication.clipboard().setText(self._settings.text(field, masked=False))
        secret = " It contains the token: paste it only into the client." if field in _WITH_TOKEN else ""
        self.message.setText(f"Copied the {_SHORT_NAMES[field]} to the clipboard.{secret}")

    def hideEvent(self, event: QHideEvent) -> None:
        """Mask the token again whenever the window is hidden."""
        self.show_token.setChecked(False)
        super().hideEvent(event)
