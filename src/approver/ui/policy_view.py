"""The Policy window: which policy is in force, the file's last load error, Open file and Reload."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from approver.config.paths import write_private_text
from approver.config.schema import schema_path
from approver.policy.engine import DEFAULT_POLICY_DATA, Policy
from approver.service import Service
from approver.ui.text import plain_label
from approver.visible import reveal_text

NO_ERROR: Final = "The file loaded without errors."
"""What the error box says when the policy file is fine."""

_LISTED_RULES: Final = 8


def default_policy_text() -> str:
    """The default policy as approver writes a new policy.json (with ``$schema`` for editors)."""
    data = {"$schema": schema_path("policy").as_uri(), **copy.deepcopy(dict(DEFAULT_POLICY_DATA))}
    Policy.from_data(data, "<new policy file>")
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def summarize(policy: Policy) -> str:
    """A few lines on ``policy``: default action, risk defaults, tool rules and overrides."""
    data: dict[str, Any] = policy.data
    lines = [f"Default action: {data.get('default', 'deny')}"]
    risk_defaults = data.get("risk_defaults", {})
    if risk_defaults:
        lines.append(
            "By risk class: " + ", ".join(f"{cls} {action}" for cls, action in risk_defaults.items())
        )
    patterns = policy.tool_patterns
    rules = f"{len(patterns)} tool rule{'' if len(patterns) == 1 else 's'}"
    if patterns:
        shown = ", ".join(patterns[:_LISTED_RULES])
        rules += f": {shown}" + (
            f" and {len(patterns) - _LISTED_RULES} more" if len(patterns) > _LISTED_RULES else ""
        )
    lines.append(rules)
    overrides = len(data.get("risk_overrides", {}))
    if overrides:
        lines.append(f"{overrides} risk override{'' if overrides == 1 else 's'}")
    return "\n".join(lines)


class PolicyWindow(QWidget):
    """Shows the policy file, what is in force and why a broken edit was rejected."""

    def __init__(self, service: Service, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Policy")  # the desktop adds the application's name
        self._service = service
        layout = QVBoxLayout(self)
        self.path_label = plain_label(wrap=True, selectable=True, name="path")
        self.in_force = plain_label(wrap=True, selectable=True, name="in_force")
        self.summary = plain_label(wrap=True, selectable=True, name="summary")
        heading = plain_label(wrap=True, selectable=True, name="error_heading")
        heading.setText("Last load of the file:")
        self.error_box = QPlainTextEdit()
        self.error_box.setObjectName("error")
        self.error_box.setReadOnly(True)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open file")
        self.open_button.setObjectName("open_file")
        self.open_button.setToolTip(
            "Open policy.json in your editor (created with the default policy if missing)"
        )
        self.open_button.clicked.connect(self._open_file)
        self.reload_button = QPushButton("Reload")
        self.reload_button.setObjectName("reload")
        self.reload_button.setToolTip("Load policy.json now (approver also reloads it when it changes)")
        self.reload_button.clicked.connect(self._reload)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.reload_button)
        buttons.addStretch()
        self.message = plain_label(wrap=True, selectable=True, name="message")
        for widget in (self.path_label, self.in_force, self.summary, heading, self.error_box):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        self.resize(640, 420)
        self.refresh()

    @property
    def _path(self) -> Path:
        return self._service.policy.path or self._service.paths.policy_file

    @Slot()
    def refresh(self) -> None:
        """Show the policy's current state (connect to ``CoreSignals.policy_changed``)."""
        holder = self._service.policy
        self.path_label.setText(reveal_text(f"Policy file: {self._path}"))
        self.in_force.setText(reveal_text(f"In force: {holder.describe()}"))
        self.summary.setText(reveal_text(summarize(holder.policy), keep_newlines=True))
        if holder.error:
            error = f"{holder.error}\n\nThe last good policy stays in force until the file is fixed."
        elif not self._path.exists():
            error = (
                "There is no policy file yet, so the safe default policy is in force. Open file creates one."
            )
        else:
            error = NO_ERROR
        self.error_box.setPlainText(reveal_text(error, keep_newlines=True))

    @Slot()
    def _reload(self) -> None:
        error = self._service.reload_policy()
        self.refresh()
        if error:
            self.message.setText(
                "The file still has an error (see above); the last good policy stays in force."
            )
        elif not self._path.exists():
            self.message.setText("There is no policy file: the safe default policy is in force.")
        else:
            self.message.setText("Reloaded: the file loaded without errors and its rules are in force.")

    @Slot()
    def _open_file(self) -> None:
        path = self._path
        notes: list[str] = []
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_private_text(path, default_policy_text())
            except OSError as exc:
                self.message.setText(reveal_text(f"Could not create {path}: {exc.strerror or exc}"))
                return
            notes.append(f"Created {path} with the default policy.")
            self._service.reload_policy()
            self.refresh()
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            notes.append("Opened it in your editor; approver reloads it when you save.")
        else:
            notes.append(
                f"Could not open an editor for it: open {path} by hand; approver reloads it when you save."
            )
        self.message.setText(reveal_text(" ".join(notes)))
