"""The approval dialog: one waiting call at a time, shown in full, hard to approve by accident.

Everything from the agent's side (client, server, tool, description, reasons, arguments) is shown
as plain text with hidden characters revealed. Approving needs a deliberate act: the approve
buttons stay disabled for ``arm_delay_ms`` after the dialog appears, regains focus, changes call
or changes panel, they are never default buttons (Enter denies, whatever has the focus), and
Escape or closing the window denies. The dialog only *reports* answers through
:attr:`ApprovalDialog.answered`; whoever owns the broker settles the call and then removes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from approver.approval.broker import ApprovalRequest
from approver.ui.approval_text import describe_size, hidden_warning, pretty_arguments, waiting_text
from approver.ui.text import plain_label, plain_view, revealed, set_plain, set_view_text
from approver.visible import Revealed

CHOICES: Final = ("once", "session", "always", "deny")
"""The values :attr:`ApprovalDialog.answered` reports as its choice."""

IDLE_TITLE: Final = "approver: no calls waiting"
_TICK_MS: Final = 250
_HINT: Final = (
    "Approve buttons unlock a moment after this window gets the focus. "
    "Enter, Escape and closing the window deny."
)


def _button(text: str, name: str, description: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setAccessibleName(text.replace("&", "").rstrip("…"))
    button.setAccessibleDescription(description)
    # A focused autoDefault button becomes the dialog's default and takes Enter. None is one, so
    # Enter always reaches the one default button, Deny, whatever has the focus.
    button.setAutoDefault(False)
    return button


class ApprovalDialog(QDialog):
    """Shows waiting calls one at a time ("1 of 3") and reports the user's answer.

    ``rule_preview`` returns the policy rule "always allow" would add, shown for a second
    confirmation together with ``policy_path``. ``clock`` (``time.time`` by default) drives the
    countdown to each request's deadline; the broker enforces the timeout itself.
    """

    answered = Signal(str, str, str)
    """Request id, choice (one of :data:`CHOICES`) and the deny message (empty unless denying)."""

    def __init__(
        self,
        rule_preview: Callable[[ApprovalRequest], str],
        *,
        policy_path: Path | str | None = None,
        arm_delay_ms: int = 1000,
        clock: Callable[[], float] = time.time,
        open_scope: Callable[[ApprovalRequest], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._rule_preview = rule_preview
        self._open_scope = open_scope
        """Opens the scoped "Always approve…" confirmation (ui/rule_scope.py) instead of the page here."""
        self._policy_path = str(policy_path) if policy_path is not None else "the policy file"
        self._arm_delay_ms = arm_delay_ms
        self._clock = clock
        self._queue: list[ApprovalRequest] = []
        self._current_id: str | None = None
        self._shown_id: str | None = None
        self._errors: dict[str, str] = {}
        self._armed = False
        self._arm_timer = QTimer(self)
        self._arm_timer.setSingleShot(True)
        self._arm_timer.timeout.connect(self._arm)
        self._tick = QTimer(self)
        self._tick.setInterval(_TICK_MS)
        self._tick.timeout.connect(self._update_countdown)
        self.setModal(False)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setWindowTitle(IDLE_TITLE)
        self.setAccessibleName("Approve a tool call")
        self.resize(820, 780)
        self._build()
        self._refresh()

    # --- public API -------------------------------------------------------------------------

    def add(self, request: ApprovalRequest) -> None:
        """Queue a waiting call. The call on screen stays; the first one arriving is shown."""
        if any(waiting.id == request.id for waiting in self._queue):
            return
        self._queue.append(request)
        if self._current_id is None:
            self._current_id = request.id
        self._refresh()

    def remove(self, request_id: str) -> None:
        """Drop a call that ended (answered, timed out, cancelled); hide when none remain.

        When it was on screen, the oldest waiting call takes its place (and the delay re-arms).
        """
        if not any(waiting.id == request_id for waiting in self._queue):
            return
        self._queue = [waiting for waiting in self._queue if waiting.id != request_id]
        self._errors.pop(request_id, None)
        if request_id == self._current_id:
            self._current_id = self._queue[0].id if self._queue else None
        self._refresh()
        if not self._queue:
            self.hide()

    def select(self, request_id: str) -> bool:
        """Put a queued call on screen (the user picked it elsewhere); False when it is not queued."""
        if not any(waiting.id == request_id for waiting in self._queue):
            return False
        self._current_id = request_id
        self._refresh()
        return True

    def requests(self) -> list[ApprovalRequest]:
        """Every queued call, oldest first."""
        return list(self._queue)

    def current(self) -> ApprovalRequest | None:
        """The call on screen, if any."""
        return next((waiting for waiting in self._queue if waiting.id == self._current_id), None)

    def show_error(self, request_id: str, message: str) -> None:
        """Show why an answer failed (plain text); the call stays for another choice."""
        self._errors[request_id] = message
        self._refresh()

    @property
    def armed(self) -> bool:
        """Whether the approve buttons are enabled now (the delay has passed)."""
        return self._armed

    # --- building ---------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self._position = self._named(plain_label(reveal=False), "position", "Position in the queue")
        self._heading = self._named(plain_label(wrap=True), "heading", "What is asked")
        font = self._heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self._heading.setFont(font)
        layout.addWidget(self._position)
        layout.addWidget(self._heading)

        grid = QGridLayout()
        self._fields: dict[str, QLabel] = {}
        rows = [
            ("client", "Client"),
            ("server", "Server"),
            ("tool", "Tool"),
            ("risk", "Risk"),
            ("reasons", "Why"),
            ("rule", "Asked by rule"),
            ("countdown", "Time left"),
        ]
        for row, (name, caption) in enumerate(rows):
            grid.addWidget(plain_label(caption + ":", reveal=False), row, 0, Qt.AlignmentFlag.AlignTop)
            value = self._named(plain_label(wrap=True, selectable=True), name, caption)
            grid.addWidget(value, row, 1)
            self._fields[name] = value
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)

        self._warning = self._named(plain_label(wrap=True, reveal=False), "warning", "Hidden characters")
        self._warning.setStyleSheet("QLabel { background: #fff0d0; color: #5a3a00; padding: 6px; }")
        layout.addWidget(self._warning)

        self._concern = self._named(plain_label(wrap=True, reveal=False), "concern", "Tool concerns")
        self._concern.setStyleSheet("QLabel { background: #fdecea; color: #8a1c1c; padding: 6px; }")
        layout.addWidget(self._concern)
        self._pin_diff = plain_view(monospace=True)
        self._pin_diff.setObjectName("pin_diff")
        self._pin_diff.setAccessibleName("How the tool's definition changed")
        self._pin_diff.setMaximumHeight(140)
        layout.addWidget(self._pin_diff)

        layout.addWidget(plain_label("Tool description:", reveal=False))
        self._description = plain_view()
        self._description.setObjectName("description")
        self._description.setAccessibleName("Tool description")
        self._description.setMaximumHeight(96)
        layout.addWidget(self._description)

        self._arguments_caption = self._named(plain_label(reveal=False), "arguments_size", "Arguments size")
        layout.addWidget(self._arguments_caption)
        self._arguments = plain_view(monospace=True)
        self._arguments.setObjectName("arguments")
        self._arguments.setAccessibleName("Arguments")
        self._arguments.setAccessibleDescription("The exact arguments of the call, as indented JSON")
        self._arguments.setMinimumHeight(140)
        layout.addWidget(self._arguments, 1)

        self._error = self._named(plain_label(wrap=True, reveal=False), "error", "Error")
        self._error.setStyleSheet("QLabel { background: #ffe0e0; color: #700000; padding: 6px; }")
        layout.addWidget(self._error)

        self._pages = QStackedWidget()
        self._pages.addWidget(self._build_choices())
        self._pages.addWidget(self._build_confirmation())
        layout.addWidget(self._pages)
        layout.addLayout(self._build_deny_row())
        layout.addWidget(plain_label(_HINT, reveal=False, wrap=True))

    def _build_choices(self) -> QWidget:
        page = QWidget()
        row = QHBoxLayout(page)
        row.setContentsMargins(0, 0, 0, 0)
        self._once = _button("&Approve", "approve", "Run this call once")
        self._session = _button(
            "Approve for this &session",
            "approve_session",
            "Run this tool without asking for the rest of this client's session",
        )
        self._always = _button(
            "A&lways approve…",
            "approve_always",
            "Add a rule to the policy file that always allows this tool; asks for confirmation first",
        )
        self._once.clicked.connect(lambda: self._answer("once"))
        self._session.clicked.connect(lambda: self._answer("session"))
        self._always.clicked.connect(self._open_confirmation)
        for button in (self._once, self._session, self._always):
            row.addWidget(button)
        row.addStretch(1)
        return page

    def _build_confirmation(self) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        self._confirm_text = self._named(plain_label(wrap=True), "confirm_text", "Rule to add")
        column.addWidget(self._confirm_text)
        self._rule_view = plain_view(monospace=True)
        self._rule_view.setObjectName("rule")
        self._rule_view.setAccessibleName("The rule that will be added")
        self._rule_view.setMaximumHeight(110)
        column.addWidget(self._rule_view)
        row = QHBoxLayout()
        self._confirm = _button(
            "&Confirm: add the rule and approve",
            "confirm_always",
            "Write the rule shown above to the policy file, then run this call",
        )
        self._back = _button("&Back", "back", "Return to the other choices")
        self._confirm.clicked.connect(lambda: self._answer("always"))
        self._back.clicked.connect(self._close_confirmation)
        row.addWidget(self._confirm)
        row.addWidget(self._back)
        row.addStretch(1)
        column.addLayout(row)
        return page

    def _build_deny_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self._message = QLineEdit()
        self._message.setObjectName("deny_message")
        self._message.setPlaceholderText("Optional message for the agent when denying")
        self._message.setAccessibleName("Message for the agent")
        self._message.setAccessibleDescription("Sent to the agent with the denial")
        self._deny = _button("&Deny", "deny", "Refuse this call; the agent gets the message")
        self._deny.setDefault(True)
        self._deny.clicked.connect(lambda: self._answer("deny"))
        row.addWidget(self._message, 1)
        row.addWidget(self._deny)
        return row

    @staticmethod
    def _named(label: QLabel, name: str, accessible: str) -> QLabel:
        # Never squeezed below the text's height: the arguments view gives up the space instead.
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        label.setObjectName(name)
        label.setAccessibleName(accessible)
        return label

    # --- showing a request ------------------------------------------------------------------

    def _refresh(self) -> None:
        request = self.current()
        if request is None:
            self._shown_id = None
            self._clear()
        elif request.id != self._shown_id:
            self._shown_id = request.id
            self._fill(request)
            self._message.clear()
            self._pages.setCurrentIndex(0)
            self._rearm()
            if self.isVisible():
                self._arguments.setFocus()
        index = next((i for i, waiting in enumerate(self._queue) if waiting.id == self._current_id), 0)
        set_plain(self._position, f"Call {index + 1} of {len(self._queue)}", reveal=False)
        error = self._errors.get(self._current_id or "", "")
        set_plain(self._error, error)
        self._error.setVisible(bool(error))
        self._update_buttons()

    def _clear(self) -> None:
        self.setWindowTitle(IDLE_TITLE)
        set_plain(self._heading, "No calls are waiting.", reveal=False)
        for label in self._fields.values():
            set_plain(label, "", reveal=False)
        self._description.clear()
        self._arguments.clear()
        set_plain(self._arguments_caption, "", reveal=False)
        self._warning.hide()
        self._concern.hide()
        self._pin_diff.clear()
        self._pin_diff.hide()
        self._pages.setCurrentIndex(0)
        self._disarm()

    def _fill(self, request: ApprovalRequest) -> None:
        tool = request.tool
        # "[*]" in a window title is Qt's "modified" placeholder; doubled, it shows as itself.
        self.setWindowTitle(f"Approve {revealed(tool.name).text}?".replace("[*]", "[*][*]"))
        risk = request.risk
        conflict = " (its annotations contradict its name or description)" if risk.conflict else ""
        values = {
            "client": request.client,
            "server": tool.server,
            "tool": f"{tool.tool} (exposed as {tool.name})" if tool.tool != tool.name else tool.name,
            "risk": f"{risk.risk_class.value}, {risk.level.value}{conflict}",
            "reasons": "; ".join(risk.reasons) or "none given",
            "rule": request.rule,
        }
        found: list[tuple[str, Revealed]] = []
        for name, value in values.items():
            shown = revealed(value)
            self._fields[name].setText(shown.text)
            found.append((self._fields[name].accessibleName(), shown))
        set_plain(self._heading, f"{tool.name}, called by {request.client}")
        found.append(("Tool description", set_view_text(self._description, request.description or "(none)")))
        pretty = pretty_arguments(request.arguments)
        found.append(("Arguments", set_view_text(self._arguments, pretty)))
        lines = pretty.count("\n") + 1
        set_plain(
            self._arguments_caption,
            f"Arguments: {describe_size(len(request.arguments))}, {lines:,} line"
            + ("" if lines == 1 else "s"),
            reveal=False,
        )
        warning = hidden_warning(found)
        set_plain(self._warning, warning, keep_newlines=True)
        self._warning.setVisible(bool(warning))
        self._show_concerns(request)
        self._update_countdown()

    def _show_concerns(self, request: ApprovalRequest) -> None:
        """A changed definition (with its diff) and look-alike names, above everything else."""
        lines = []
        if request.pin_change:
            lines.append(
                "This tool's definition changed since approver first saw it, so this call needs you even "
                "if the policy allows it. A server that swaps a trusted tool's description or hints may be "
                "attacking you: read the change below."
            )
        if request.lookalikes:
            lines.append("Other tools have names that look like this one (it may be impersonating one):")
            lines += [f"• {line}" for line in request.lookalikes]
        set_plain(self._concern, "\n".join(lines), keep_newlines=True)
        self._concern.setVisible(bool(lines))
        set_view_text(self._pin_diff, request.pin_change)
        self._pin_diff.setVisible(bool(request.pin_change))

    def _update_countdown(self) -> None:
        request = self.current()
        text = waiting_text(request, self._clock()) if request else ""
        set_plain(self._fields["countdown"], text, reveal=False)

    # --- answering --------------------------------------------------------------------------

    def _answer(self, choice: str) -> None:
        request = self.current()
        if request is None or (choice != "deny" and not self._armed):
            return
        message = self._message.text().strip() if choice == "deny" else ""
        self._errors.pop(request.id, None)
        if choice == "always":
            self._pages.setCurrentIndex(0)
        self.answered.emit(request.id, choice, message)

    def _open_confirmation(self) -> None:
        request = self.current()
        if request is None or not self._armed:
            return
        if self._open_scope is not None:
            self._open_scope(request)
            return
        try:
            rule = self._rule_preview(request)
        except Exception as error:  # any failure just means there is no rule to confirm
            self.show_error(request.id, f"Could not prepare the rule for always allowing this tool: {error}")
            return
        set_plain(
            self._confirm_text,
            f"Always allow {request.tool.name}? This rule will be added to {self._policy_path}, and from "
            "then on this tool runs without asking:",
        )
        set_view_text(self._rule_view, rule)
        self._pages.setCurrentIndex(1)
        self._rearm()

    def _close_confirmation(self) -> None:
        self._pages.setCurrentIndex(0)
        self._rearm()

    def reject(self) -> None:
        """Escape and the window's close button deny the call on screen (and close when none remain)."""
        if self.current() is not None:
            self._answer("deny")
        if not self._queue:
            super().reject()

    # --- the arm delay ----------------------------------------------------------------------

    def _approve_buttons(self) -> tuple[QPushButton, ...]:
        return (self._once, self._session, self._always, self._confirm)

    def _disarm(self) -> None:
        self._arm_timer.stop()
        self._armed = False
        self._update_buttons()

    def _rearm(self) -> None:
        self._disarm()
        if self._arm_delay_ms <= 0:
            self._arm()
        else:
            self._arm_timer.start(self._arm_delay_ms)

    def _arm(self) -> None:
        self._armed = self.current() is not None and self.isVisible()
        self._update_buttons()

    def _update_buttons(self) -> None:
        enabled = self._armed and self.current() is not None
        focused = self.focusWidget()
        if not enabled and focused in self._approve_buttons():
            # Disabling a focused button hands the focus to the next widget, maybe another approve button.
            self._arguments.setFocus()
        for button in self._approve_buttons():
            button.setEnabled(enabled)
        self._deny.setEnabled(self.current() is not None)

    def event(self, event: QEvent) -> bool:
        """Re-arm the delay when the window regains focus; disarm while it is inactive."""
        if event.type() == QEvent.Type.WindowDeactivate:
            self._disarm()
        elif event.type() == QEvent.Type.WindowActivate:
            self._rearm()
        return super().event(event)

    def showEvent(self, event: QShowEvent) -> None:
        """Start the delay and the countdown; put the focus on the arguments, not a button."""
        super().showEvent(event)
        self._rearm()
        self._tick.start()
        self._update_countdown()
        self._arguments.setFocus()

    def hideEvent(self, event: QHideEvent) -> None:
        """Nothing may be approved while hidden; stop the countdown."""
        super().hideEvent(event)
        self._tick.stop()
        self._disarm()
