"""Put approver in front of an app: Import its servers, Install approver in it, or Uninstall.

Pick an app, press Import…, Install… or Uninstall…: the panel shows the exact diff of the file
that would change in a read-only view, with every secret value masked, and only the confirm
button writes it. For Claude Code, Install hook… and Remove hook… do the same for the hook that
hands its own tools (Bash, Write, …) to approver (``~/.claude/settings.json``).
Import copies the app's servers into approver's ``servers.json`` (literal
secrets move into the keyring; the running gateway starts the new servers at once); Install
rewrites the app's config to reach its servers only through approver, keeping a timestamped
backup that Uninstall restores. Install never drops a server approver lacks unless asked to.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from approver.audit.redact import Redactor
from approver.clients.formats import CLIENTS, ClientFormat
from approver.clients.importing import ImportPlan
from approver.clients.routing import Change, apply_install, apply_uninstall, installed
from approver.clients.setup import Installer
from approver.clients.status import RoutingStatus
from approver.errors import ApproverError
from approver.ui.text import plain_label
from approver.visible import reveal_text

ERROR_STYLE: Final = "color: #c0392b;"
_CONFIRM: Final = {
    "import": "Import",
    "install": "Install",
    "uninstall": "Restore backup",
    "hook-install": "Install the hook",
    "hook-uninstall": "Restore backup",
}
HOOK_NOTE: Final = (
    "Claude Code's own tools (Bash, Write, Edit, WebFetch, …) run inside Claude Code, not through MCP. "
    "Its hook hands each of their calls to approver first, so one policy, one approval window and one "
    "audit log cover them too."
)


def masked_diff(diff: str) -> str:
    """A diff as the panel shows it: secret values masked, hidden characters revealed."""
    return reveal_text(Redactor().redact_config(diff), keep_newlines=True)


def status_text(status: RoutingStatus, lacking: tuple[str, ...]) -> str:
    """What the panel says about one app: whether it goes through approver and what to do next."""
    title, path = CLIENTS[status.client].title, status.path
    if status.state == "missing":
        return f"{title}: no config file at {path} yet. Install… creates one that reaches approver."
    if status.state == "unreadable":
        return status.detail
    if status.state == "empty":
        return f"{title} has no MCP servers in {path}. Install… adds approver."
    if status.state == "routed":
        return (
            f"{title} reaches its servers only through approver ({path}). approver keeps a backup that "
            "Uninstall… restores."
        )
    names = ", ".join(status.bypassing)
    first = (
        f"Import… copies {', '.join(lacking)} into approver; then " if lacking else "approver has them all; "
    )
    return (
        f"{title} reaches {names} directly, bypassing approver ({path}). {first}Install… routes {title} "
        "through approver."
    )


class ClientInstallPanel(QGroupBox):
    """Per-app Import / Install / Uninstall with the diff shown before anything is written."""

    imported = Signal()
    """servers.json was written by an import (the gateway applies it)."""

    def __init__(self, installer: Installer, parent: QWidget | None = None) -> None:
        super().__init__("Put approver in front of an app you use", parent)
        self._installer = installer
        self._pending: tuple[str, Change | ImportPlan] | None = None
        self._lacking: tuple[str, ...] = ()
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(plain_label("App:", reveal=False))
        self.client_box = QComboBox()
        self.client_box.setObjectName("install_client")
        for client in CLIENTS.values():
            self.client_box.addItem(client.title, client.name)
        self.client_box.currentIndexChanged.connect(self.refresh)
        row.addWidget(self.client_box, 1)
        self.import_button = self._button("Import…", "import", "Show how servers.json would change")
        self.install_button = self._button(
            "Install…", "install", "Show how the app's config would change to go through approver"
        )
        self.uninstall_button = self._button(
            "Uninstall…", "uninstall", "Show how restoring the backup would change the app's config"
        )
        for button in (self.import_button, self.install_button, self.uninstall_button):
            row.addWidget(button)
        layout.addLayout(row)
        self.status_label = plain_label(wrap=True, name="install_status")
        layout.addWidget(self.status_label)
        self.hook_box = QWidget()
        self.hook_box.setObjectName("hook_box")
        hook_row = QHBoxLayout(self.hook_box)
        hook_row.setContentsMargins(0, 0, 0, 0)
        self.hook_status = plain_label(wrap=True, name="hook_status")
        hook_row.addWidget(self.hook_status, 1)
        self.hook_install_button = self._button(
            "Install hook…",
            "hook-install",
            "Show how Claude Code's settings would change to run approver's hook",
        )
        self.hook_uninstall_button = self._button(
            "Remove hook…",
            "hook-uninstall",
            "Show how restoring Claude Code's settings from the backup changes them",
        )
        hook_row.addWidget(self.hook_install_button)
        hook_row.addWidget(self.hook_uninstall_button)
        layout.addWidget(self.hook_box)
        self.diff_view = QPlainTextEdit()
        self.diff_view.setObjectName("install_diff")
        self.diff_view.setReadOnly(True)
        self.diff_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.diff_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.diff_view.setPlaceholderText("The change appears here before anything is written.")
        self.diff_view.setMinimumHeight(120)
        layout.addWidget(self.diff_view, 1)
        self.drop_unknown = QCheckBox()
        self.drop_unknown.setObjectName("drop_unknown")
        self.drop_unknown.toggled.connect(self._arm)
        layout.addWidget(self.drop_unknown)
        buttons = QHBoxLayout()
        self.message = plain_label(wrap=True, name="install_message")
        buttons.addWidget(self.message, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("install_cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.cancel_button)
        self.confirm_button = QPushButton("Apply")
        self.confirm_button.setObjectName("install_confirm")
        self.confirm_button.clicked.connect(self.confirm)
        buttons.addWidget(self.confirm_button)
        layout.addLayout(buttons)
        self.refresh()

    def _button(self, text: str, action: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(action)
        button.setToolTip(tip)
        button.clicked.connect(lambda: self.preview(action))
        return button

    @property
    def client(self) -> ClientFormat:
        """The app picked in the box."""
        return CLIENTS[str(self.client_box.currentData())]

    @Slot()
    def refresh(self) -> None:
        """Show the picked app's state and what to do next; drop any pending change."""
        self._set_pending(None)
        self.diff_view.setPlainText("")
        status = self._installer.status(self.client)
        try:
            self._lacking = self._installer.plan_install(self.client).unknown
        except ApproverError:
            self._lacking = ()
        self.status_label.setText(reveal_text(status_text(status, self._lacking)))
        self.uninstall_button.setEnabled(status.installed)
        self.import_button.setEnabled(bool(self._lacking) and self._installer.secrets is not None)
        self.hook_box.setVisible(self.client.name == "claude-code")
        if self.client.name == "claude-code":
            settings = self._installer.hook_settings_path()
            state = (
                f"approver's hook is in {settings}."
                if self._installer.hook_installed()
                else f"Install hook… adds approver's hook to {settings}."
            )
            self.hook_status.setText(reveal_text(f"{HOOK_NOTE} {state}"))
            self.hook_uninstall_button.setEnabled(installed(settings))

    def preview(self, action: str) -> None:
        """Show the diff ``action`` (import, install or uninstall) would make, ready to confirm."""
        self.message.setStyleSheet("")
        try:
            change: Change | ImportPlan
            if action == "import":
                change = self._installer.plan_import(self.client)
            elif action == "install":
                change = self._installer.plan_install(self.client)
            elif action == "hook-install":
                change = self._installer.plan_hook_install()
            elif action == "hook-uninstall":
                change = self._installer.plan_hook_uninstall()
            else:
                change = self._installer.plan_uninstall(self.client)
        except ApproverError as exc:
            self._show_error(str(exc))
            return
        self.diff_view.setPlainText(masked_diff(change.diff()))
        if not change.changed:
            self._set_pending(None)
            nothing = "nothing new to import" if isinstance(change, ImportPlan) else "nothing to change"
            what = "" if isinstance(change, ImportPlan) else reveal_text(change.message) + ": "
            self.message.setText(f"{what}{nothing}.")
            return
        self.message.setText(reveal_text(self._explain(change)))
        self._set_pending((action, change))

    def _explain(self, change: Change | ImportPlan) -> str:
        if isinstance(change, ImportPlan):
            lines = [f"Adds {', '.join(change.added)} to {change.servers_file}."]
            lines += [
                f"The literal secret {m.where} moves into the keyring as {m.name}." for m in change.secrets
            ]
            lines += [f"{name} is not imported: {reason}" for name, reason in change.skipped]
            lines += list(change.notes)
            return " ".join(lines)
        if change.unknown:
            return (
                f"{change.message}. approver's servers.json lacks {', '.join(change.unknown)}: Import… them "
                f"first, or {self.client.title} loses them (they stay in the backup)."
            )
        if change.conflict:
            return f"{change.message}. {change.conflict.replace('uninstall with --force', 'apply')}"
        return change.message + "."

    @Slot()
    def confirm(self) -> None:
        """Write the previewed change."""
        if self._pending is None:
            return
        action, change = self._pending
        try:
            if isinstance(change, ImportPlan):
                self._installer.apply_import(change)
                done = (
                    f"Imported {', '.join(change.added)} into servers.json; approver starts them now. "
                    f"Next, Install… routes {self.client.title} through approver."
                )
            elif action in ("install", "hook-install"):
                backup = apply_install(change, drop_unknown=self.drop_unknown.isChecked())
                saved = f" The original is saved as {backup}." if backup else ""
                done = f"Installed.{saved} Restart {change.client.title} to apply it."
            else:
                apply_uninstall(change, force=True)
                done = f"Restored {change.path}. Restart {change.client.title} to apply it."
        except (ApproverError, OSError) as exc:
            self._show_error(str(exc))
            return
        self.refresh()
        self.message.setStyleSheet("")
        self.message.setText(reveal_text(done))
        if action == "import":
            self.imported.emit()

    @Slot()
    def cancel(self) -> None:
        """Forget the previewed change."""
        self.refresh()
        self.message.setText("Nothing was changed.")

    def _set_pending(self, pending: tuple[str, Change | ImportPlan] | None) -> None:
        self._pending = pending
        unknown = pending[1].unknown if pending is not None and isinstance(pending[1], Change) else ()
        self.drop_unknown.blockSignals(True)
        self.drop_unknown.setChecked(False)
        self.drop_unknown.blockSignals(False)
        self.drop_unknown.setVisible(bool(unknown))
        if unknown:
            names, title = ", ".join(unknown), self.client.title
            self.drop_unknown.setText(
                f"Install anyway and drop {names} from {title} (they stay in the backup)"
            )
        self.cancel_button.setEnabled(pending is not None)
        if pending is not None:
            self.confirm_button.setText(_CONFIRM[pending[0]])
        self._arm()

    def _arm(self) -> None:
        pending = self._pending
        unknown = pending[1].unknown if pending is not None and isinstance(pending[1], Change) else ()
        self.confirm_button.setEnabled(pending is not None and (not unknown or self.drop_unknown.isChecked()))

    def _show_error(self, text: str) -> None:
        self._set_pending(None)
        self.message.setText(reveal_text(text))
        self.message.setStyleSheet(ERROR_STYLE)
