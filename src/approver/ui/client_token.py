"""The Connect window's panel for one client's token and patience: rotate, revoke, how long to hold.

Rotating gives the client a new token (the old one stops working at once, also for a running
gateway); revoking deletes it, after a second click. The patience is how long a call held for
approval keeps this client waiting before approver answers it "call again" (settings.json).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSpinBox, QVBoxLayout, QWidget

from approver.config.patience import Patience
from approver.config.tokens import TokenStore
from approver.errors import ApproverError
from approver.ui.text import plain_label, set_plain

MAX_PATIENCE: Final = 3600
"""The largest patience the panel offers, in seconds (settings.json allows more)."""


class TokenPanel(QWidget):
    """Rotate or revoke the shown client's token, and set its patience."""

    rotated = Signal(str)
    """A client's token was replaced: show its new settings."""
    revoked = Signal(str)
    """A client's token was deleted."""

    def __init__(
        self,
        tokens: TokenStore,
        client: Callable[[], str | None],
        patience: Patience | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._tokens = tokens
        self._client = client
        self._patience = patience
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.rotate_button = self._button(
            "&Rotate token", "rotate_token", "Give this client a new token; the old one stops working at once"
        )
        self.revoke_button = self._button(
            "Re&voke token…", "revoke_token", "Delete this client's token; asks once more first"
        )
        self.confirm_revoke = self._button(
            "Confirm: revoke", "confirm_revoke", "Delete the token now; the client stops working at once"
        )
        self.keep_button = self._button("Keep it", "keep_token", "Do not revoke")
        self.rotate_button.clicked.connect(self.rotate)
        self.revoke_button.clicked.connect(self._ask_revoke)
        self.confirm_revoke.clicked.connect(self.revoke)
        self.keep_button.clicked.connect(self._keep)
        for button in (self.rotate_button, self.revoke_button, self.confirm_revoke, self.keep_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)

        self.patience_row = QWidget()
        patience_row = QHBoxLayout(self.patience_row)
        patience_row.setContentsMargins(0, 0, 0, 0)
        patience_row.addWidget(plain_label("Answer held calls “call again” after", reveal=False))
        self.patience = QSpinBox()
        self.patience.setObjectName("patience")
        self.patience.setRange(0, MAX_PATIENCE)
        self.patience.setSuffix(" s")
        self.patience.setSpecialValueText("never (wait)")
        self.patience.setAccessibleName("Patience in seconds")
        patience_row.addWidget(self.patience)
        self.save_patience = self._button(
            "Save", "save_patience", "Write this client's patience to settings.json"
        )
        self.default_patience = self._button(
            "Default", "default_patience", "Use the patience of every client"
        )
        self.save_patience.clicked.connect(self._save_patience)
        self.default_patience.clicked.connect(self._default_patience)
        patience_row.addWidget(self.save_patience)
        patience_row.addWidget(self.default_patience)
        patience_row.addStretch(1)
        layout.addWidget(self.patience_row)
        self.patience_row.setVisible(patience is not None)
        self.note = plain_label(wrap=True, name="token_note")
        layout.addWidget(self.note)
        self.refresh()

    def _button(self, text: str, name: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.setAutoDefault(False)
        return button

    @Slot()
    def refresh(self) -> None:
        """Follow the client shown in the window (call after it changes)."""
        client = self._client()
        has_token = client is not None and client in self._tokens.clients()
        self.rotate_button.setEnabled(has_token)
        self.revoke_button.setEnabled(has_token)
        self._keep()
        if self._patience is not None:
            self.patience_row.setEnabled(client is not None)
            own = self._patience.configured(client) if client is not None else None
            self.patience.setValue(int(own if own is not None else self._patience.default))
        set_plain(self.note, self._patience_note(client), reveal=False)

    def _patience_note(self, client: str | None) -> str:
        if self._patience is None or client is None:
            return ""
        own = self._patience.configured(client)
        whose = "its own" if own is not None else "the default"
        return (
            f"{client} uses {whose} patience. Many clients (those on the TypeScript MCP SDK) give up on a "
            "call after 60 s; approver answers a held call before that, tells the agent to call again, and "
            "keeps the approval window open. Choose “never” only for clients that keep waiting while they "
            "receive progress."
        )

    @Slot()
    def rotate(self) -> None:
        """Replace the client's token now."""
        client = self._client()
        if client is None:
            return
        try:
            self._tokens.rotate(client)
        except ApproverError as exc:
            set_plain(self.note, f"The token was not rotated: {exc}")
            return
        self.rotated.emit(client)
        set_plain(
            self.note,
            f"{client} has a new token: the old one stopped working. Paste the new URL or header into that "
            "client; clients set up with the stdio command pick it up by themselves.",
        )

    def _ask_revoke(self) -> None:
        self.confirm_revoke.show()
        self.keep_button.show()
        self.revoke_button.hide()
        client = self._client() or "this client"
        set_plain(self.note, f"Revoke the token of {client}? Every program using it stops working at once.")

    def _keep(self) -> None:
        self.confirm_revoke.hide()
        self.keep_button.hide()
        self.revoke_button.show()

    @Slot()
    def revoke(self) -> None:
        """Delete the client's token now (after the confirmation click)."""
        client = self._client()
        if client is None:
            return
        removed = self._tokens.revoke(client)
        self._keep()
        if removed:
            self.revoked.emit(client)
        self.refresh()
        set_plain(
            self.note,
            f"Revoked the token of {client}: it no longer works. A client set up with the stdio command gets "
            "a new token when it next starts; uninstall it to keep it out."
            if removed
            else f"{client} had no token.",
        )

    def _save_patience(self) -> None:
        self._set_patience(float(self.patience.value()))

    def _default_patience(self) -> None:
        self._set_patience(None)

    def _set_patience(self, seconds: float | None) -> None:
        client = self._client()
        if client is None or self._patience is None:
            return
        try:
            self._patience.set(client, seconds)
        except ApproverError as exc:
            set_plain(self.note, f"The patience was not saved: {exc}")
            return
        self.refresh()
