"""Add, enable, disable or remove a server from the Servers window: the diff first, then the write.

:class:`ServerEditDialog` shows the exact change of ``servers.json`` (secret values masked) and
writes it only on "Write servers.json", as Install does for a client's file. Adding starts from a
small form: a name, and either a command line or a URL. The running gateway applies the written
file by itself.
"""

from __future__ import annotations

import shlex
from typing import Any, Final

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from approver.audit.redact import Redactor
from approver.config.servers_edit import EditError, ServersEdit, apply_edit, plan_add
from approver.errors import ApproverError
from approver.ui.text import plain_label
from approver.visible import reveal_text

ERROR_STYLE: Final = "color: #c0392b;"
STDIO: Final = "A program approver starts (stdio)"
HTTP: Final = "A URL (Streamable HTTP)"


def parse_pairs(text: str, separator: str) -> dict[str, str]:
    """``NAME=value`` (or ``Name: value``) lines as a dict; ValueError naming a line without one."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, found, value = line.partition(separator)
        if not found or not name.strip():
            raise ValueError(f"line {number} needs the form name{separator}value")
        pairs[name.strip()] = value.strip()
    return pairs


def entry_from_form(kind: str, command: str, url: str, pairs: str, description: str) -> dict[str, Any]:
    """The ``mcpServers`` entry the add form describes; ValueError saying what is missing."""
    entry: dict[str, Any] = {}
    if kind == HTTP:
        if not url.strip():
            raise ValueError("type the server's URL")
        entry = {"type": "http", "url": url.strip()}
        if headers := parse_pairs(pairs, ":"):
            entry["headers"] = headers
    else:
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise ValueError(f"the command line cannot be read: {exc}") from None
        if not words:
            raise ValueError("type the command that starts the server")
        entry = {"command": words[0]}
        if words[1:]:
            entry["args"] = words[1:]
        if env := parse_pairs(pairs, "="):
            entry["env"] = env
    if description.strip():
        entry["description"] = description.strip()
    return entry


class ServerEditDialog(QDialog):
    """One change of servers.json: a form (to add a server), then its diff and a confirm button."""

    written = Signal(str)
    """servers.json was written; the text says what changed."""

    def __init__(
        self, servers_file: Any, edit: ServersEdit | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._file = servers_file
        self._edit: ServersEdit | None = None
        self.setWindowTitle("Add a server" if edit is None else "Change servers.json")
        layout = QVBoxLayout(self)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self._form())
        self.pages.addWidget(self._review())
        layout.addWidget(self.pages, 1)
        self.message = plain_label(wrap=True, name="edit_message")
        layout.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.cancel_button)
        self.next_button = QPushButton("Show the change")
        self.next_button.setObjectName("show_change")
        self.next_button.clicked.connect(self.show_change)
        buttons.addWidget(self.next_button)
        self.write_button = QPushButton("Write servers.json")
        self.write_button.setObjectName("write")
        self.write_button.clicked.connect(self.write)
        buttons.addWidget(self.write_button)
        layout.addLayout(buttons)
        self.resize(720, 460)
        if edit is None:
            self._show_page(0)
        else:
            self._review_edit(edit)

    def _form(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        outer.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        outer.addLayout(form)
        outer.addStretch(1)
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("server_name")
        self.name_edit.setPlaceholderText("letters, digits, '.', '_' or '-', such as time")
        form.addRow("Name:", self.name_edit)
        self.kind = QComboBox()
        self.kind.addItems([STDIO, HTTP])
        self.kind.currentIndexChanged.connect(self._kind_changed)
        form.addRow("The server is:", self.kind)
        self.command_edit = QLineEdit()
        self.command_edit.setObjectName("command")
        self.command_edit.setPlaceholderText("uvx mcp-server-time")
        form.addRow("Command line:", self.command_edit)
        self.url_edit = QLineEdit()
        self.url_edit.setObjectName("url")
        self.url_edit.setPlaceholderText("https://example.com/mcp")
        form.addRow("URL:", self.url_edit)
        self.pairs_edit = QPlainTextEdit()
        self.pairs_edit.setObjectName("pairs")
        self.pairs_edit.setMaximumHeight(90)
        form.addRow("Environment:", self.pairs_edit)
        self.pairs_note = plain_label(wrap=True, reveal=False)
        form.addRow("", self.pairs_note)
        self.description_edit = QLineEdit()
        form.addRow("Description:", self.description_edit)
        self._form_layout = form
        self._kind_changed()
        return page

    def _review(self) -> QWidget:
        page = QWidget()
        box = QVBoxLayout(page)
        self.summary = plain_label(wrap=True, name="edit_summary")
        box.addWidget(self.summary)
        self.diff_view = QPlainTextEdit()
        self.diff_view.setObjectName("edit_diff")
        self.diff_view.setReadOnly(True)
        self.diff_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.diff_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        box.addWidget(self.diff_view, 1)
        return page

    def _kind_changed(self) -> None:
        http = self.kind.currentText() == HTTP
        self._form_layout.setRowVisible(self.command_edit, not http)
        self._form_layout.setRowVisible(self.url_edit, http)
        label = self._form_layout.labelForField(self.pairs_edit)
        if isinstance(label, QLabel):
            label.setText("Headers:" if http else "Environment:")
        self.pairs_note.setText(
            ("One Name: value per line. " if http else "One NAME=value per line. ")
            + "For a secret write ${keyring:NAME} and store its value with `approver secret set NAME`: "
            "servers.json then never holds it."
        )

    def _show_page(self, index: int) -> None:
        self.pages.setCurrentIndex(index)
        self.next_button.setVisible(index == 0)
        self.write_button.setVisible(index == 1)
        self.write_button.setEnabled(index == 1 and self._edit is not None)

    @Slot()
    def show_change(self) -> None:
        """Plan the addition the form describes and show its diff (or say what is wrong)."""
        try:
            entry = entry_from_form(
                self.kind.currentText(),
                self.command_edit.text(),
                self.url_edit.text(),
                self.pairs_edit.toPlainText(),
                self.description_edit.text(),
            )
            edit = plan_add(self._file, self.name_edit.text().strip(), entry)
        except (ValueError, ApproverError) as exc:
            self._error(str(exc))
            return
        self._review_edit(edit)

    def _review_edit(self, edit: ServersEdit) -> None:
        self._edit = edit
        self.summary.setText(
            reveal_text(
                f"This change {edit.message}: once it is written, {edit.effect}. Nothing is written until "
                "you confirm."
            )
        )
        self.diff_view.setPlainText(reveal_text(Redactor().redact_config(edit.diff()), keep_newlines=True))
        self.message.setText("")
        self._show_page(1)

    @Slot()
    def write(self) -> None:
        """Write the change shown, then close."""
        if self._edit is None:
            return
        try:
            apply_edit(self._edit)
        except (EditError, ApproverError, OSError) as exc:
            self._error(str(exc))
            return
        self.written.emit(f"Wrote servers.json ({self._edit.message}): {self._edit.effect}.")
        self.accept()

    def _error(self, text: str) -> None:
        self.message.setText(reveal_text(text))
        self.message.setStyleSheet(ERROR_STYLE)
