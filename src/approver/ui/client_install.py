"""Install or uninstall approver in an MCP client from the Connect a client window.

Pick a client, press Install… or Uninstall…: the panel shows the exact diff of the client's config
file in a read-only view, and only the confirm button writes it (through
:mod:`approver.clients.routing`, which keeps a timestamped backup). File contents are shown as
plain text.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from approver.clients.formats import CLIENTS, ClientFormat
from approver.clients.routing import Change, apply_install, apply_uninstall
from approver.clients.setup import Installer
from approver.errors import ApproverError
from approver.ui.text import plain_label
from approver.visible import reveal_text

ERROR_STYLE: Final = "color: #c0392b;"


class ClientInstallPanel(QGroupBox):
    """Per-client Install / Uninstall with the diff shown before anything is written."""

    def __init__(self, installer: Installer, parent: QWidget | None = None) -> None:
        super().__init__("Put approver in front of a client", parent)
        self._installer = installer
        self._pending: tuple[str, Change] | None = None
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.client_box = QComboBox()
        self.client_box.setObjectName("install_client")
        for client in CLIENTS.values():
            self.client_box.addItem(client.title, client.name)
        self.client_box.currentIndexChanged.connect(self.refresh)
        row.addWidget(self.client_box, 1)
        self.install_button = QPushButton("Install…")
        self.install_button.setObjectName("install")
        self.install_button.setToolTip("Show how the client's config would change to go through approver")
        self.install_button.clicked.connect(lambda: self.preview("install"))
        row.addWidget(self.install_button)
        self.uninstall_button = QPushButton("Uninstall…")
        self.uninstall_button.setObjectName("uninstall")
        self.uninstall_button.setToolTip("Show how restoring the backup would change the client's config")
        self.uninstall_button.clicked.connect(lambda: self.preview("uninstall"))
        row.addWidget(self.uninstall_button)
        layout.addLayout(row)
        self.status_label = plain_label(wrap=True, name="install_status")
        layout.addWidget(self.status_label)
        self.diff_view = QPlainTextEdit()
        self.diff_view.setObjectName("install_diff")
        self.diff_view.setReadOnly(True)
        self.diff_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.diff_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.diff_view.setMinimumHeight(140)
        layout.addWidget(self.diff_view)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("install_cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.cancel_button)
        self.confirm_button = QPushButton("Apply")
        self.confirm_button.setObjectName("install_confirm")
        self.confirm_button.clicked.connect(self.confirm)
        buttons.addWidget(self.confirm_button)
        layout.addLayout(buttons)
        self.message = plain_label(wrap=True, name="install_message")
        layout.addWidget(self.message)
        self.refresh()

    @property
    def client(self) -> ClientFormat:
        """The client picked in the box."""
        return CLIENTS[str(self.client_box.currentData())]

    @Slot()
    def refresh(self) -> None:
        """Show the picked client's file and whether it goes through approver; drop any pending change."""
        self._set_pending(None)
        self.diff_view.setPlainText("")
        status = self._installer.status(self.client)
        backup = " approver keeps a backup of it that Uninstall restores." if status.installed else ""
        self.status_label.setText(reveal_text(f"{status.path}: {status.detail}.{backup}"))
        self.uninstall_button.setEnabled(status.installed)

    def preview(self, action: str) -> None:
        """Show the diff that ``action`` (``install`` or ``uninstall``) would make, and arm Apply."""
        self.message.setStyleSheet("")
        try:
            change = (
                self._installer.plan_install(self.client)
                if action == "install"
                else self._installer.plan_uninstall(self.client)
            )
        except ApproverError as exc:
            self._show_error(str(exc))
            return
        self.diff_view.setPlainText(reveal_text(change.diff(), keep_newlines=True))
        if not change.changed:
            self._set_pending(None)
            self.message.setText(reveal_text(change.message) + ": nothing to change.")
            return
        warning = ""
        if change.unknown:
            warning = (
                f" approver's servers.json lacks {', '.join(change.unknown)}: import them first "
                "(approver import), or apply anyway to drop them from the client (they stay in the backup)."
            )
        elif change.conflict:
            warning = " " + change.conflict.replace("uninstall with --force", "apply")
        self.message.setText(reveal_text(change.message + "." + warning))
        self._set_pending((action, change))

    @Slot()
    def confirm(self) -> None:
        """Write the previewed change."""
        if self._pending is None:
            return
        action, change = self._pending
        try:
            if action == "install":
                backup = apply_install(change, drop_unknown=True)
                done = f"Installed. The original is saved as {backup}." if backup else "Installed."
            else:
                apply_uninstall(change, force=True)
                done = f"Restored {change.path}."
        except (ApproverError, OSError) as exc:
            self._show_error(str(exc))
            return
        self.refresh()
        self.message.setStyleSheet("")
        self.message.setText(reveal_text(f"{done} Restart {change.client.title} to apply it."))

    @Slot()
    def cancel(self) -> None:
        """Forget the previewed change."""
        self.refresh()
        self.message.setText("Nothing was changed.")

    def _set_pending(self, pending: tuple[str, Change] | None) -> None:
        self._pending = pending
        self.confirm_button.setEnabled(pending is not None)
        self.cancel_button.setEnabled(pending is not None)
        if pending is not None:
            self.confirm_button.setText("Install" if pending[0] == "install" else "Restore backup")

    def _show_error(self, text: str) -> None:
        self._set_pending(None)
        self.message.setText(reveal_text(text))
        self.message.setStyleSheet(ERROR_STYLE)
