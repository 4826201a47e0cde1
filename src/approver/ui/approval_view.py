"""The approval dialog: what a waiting call will do at a glance, on any screen, hard to approve by accident.

From the top: a band in the risk level's colour with its symbol and words; one sentence saying
what will happen ("cursor wants to write 50 KB to notes.md"); then, in a scroll area, any
concerns (a changed definition, look-alike names, hidden characters), the arguments in the
tool's own order (short ones as a form, long ones as numbered text blocks with find, the raw
JSON one click away; *Edit arguments* makes them editable, ui/argument_edit.py), or a result
held for review, the tool's description and the details. With several calls waiting, a
queue lists them most severe first. The decision bar is pinned at the bottom, so Deny is always
visible, and the window opens inside the screen's available area at any scale factor.

Everything from the agent's side is plain text with hidden characters revealed. Approving needs
a deliberate act: the approve buttons stay disabled for ``arm_delay_ms`` after the dialog
appears, regains focus, changes call or changes panel; they are never default buttons (Enter
denies, whatever has the focus); Escape or closing the window denies. The dialog only *reports*
answers through :attr:`ApprovalDialog.answered`; whoever owns the broker settles the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from approver.approval.arguments import lay_out
from approver.approval.broker import ApprovalRequest
from approver.approval.editing import EditError
from approver.approval.headline import headline
from approver.approval.presentation import offers, queue_order
from approver.ui.approval_queue import QueuePanel
from approver.ui.approval_text import hidden_warning, waiting_text
from approver.ui.argument_edit import EditPanel
from approver.ui.argument_view import ArgumentView
from approver.ui.decision_bar import DecisionBar
from approver.ui.diff_view import show_unified_diff
from approver.ui.placement import place
from approver.ui.risk_band import RiskBand
from approver.ui.text import plain_label, plain_view, revealed, set_plain, set_view_text
from approver.visible import Revealed

CHOICES: Final = ("once", "session", "always", "deny")
"""The values :attr:`ApprovalDialog.answered` reports as its choice."""

IDLE_TITLE: Final = "approver: no calls waiting"
MINIMUM_SIZE: Final = QSize(560, 400)
"""The smallest the dialog gets, in logical pixels; the decision bar still fits."""
PREFERRED_SIZE: Final = QSize(960, 760)
"""The size the dialog opens at when the screen has room."""
_TICK_MS: Final = 250
_HINT: Final = "Approve unlocks a moment after this window gets the focus. Enter, Escape and closing deny."


class ApprovalDialog(QDialog):
    """Shows one waiting call at a time, lists the others, and reports the user's answer.

    ``rule_preview`` returns the policy rule "always allow" would add, shown for a second
    confirmation together with ``policy_path``. ``clock`` (``time.time`` by default) drives the
    countdown and the queue's ages; the broker enforces the timeout itself.
    """

    answered = Signal(str, str, str)
    """Request id, choice (one of :data:`CHOICES`) and the deny message (empty unless denying)."""
    approved_edited = Signal(str, bytes)
    """Request id and the canonical JSON of the arguments the person edited and approved, once."""

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
        self._placed = False
        self._ticks = 0
        self._arm_timer = QTimer(self)
        self._arm_timer.setSingleShot(True)
        self._arm_timer.timeout.connect(self._arm)
        self._tick = QTimer(self)
        self._tick.setInterval(_TICK_MS)
        self._tick.timeout.connect(self._on_tick)
        self.setModal(False)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setWindowTitle(IDLE_TITLE)
        self.setAccessibleName("Approve a tool call")
        self.setMinimumSize(MINIMUM_SIZE)
        self.resize(PREFERRED_SIZE)
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

        When it was on screen, the most severe waiting call takes its place (and the delay re-arms).
        """
        if not any(waiting.id == request_id for waiting in self._queue):
            return
        order = [waiting.id for waiting in self.ordered()]
        self._queue = [waiting for waiting in self._queue if waiting.id != request_id]
        self._errors.pop(request_id, None)
        if request_id == self._current_id:
            rest = [other for other in order if other != request_id]
            self._current_id = rest[0] if rest else None
        self._refresh()
        if not self._queue:
            self.hide()

    def select(self, request_id: str) -> bool:
        """Put a queued call on screen (the user picked it); False when it is not queued."""
        if not any(waiting.id == request_id for waiting in self._queue):
            return False
        self._current_id = request_id
        self._refresh()
        return True

    def requests(self) -> list[ApprovalRequest]:
        """Every queued call, oldest first."""
        return list(self._queue)

    def ordered(self) -> list[ApprovalRequest]:
        """Every queued call in review order: most severe first, then oldest."""
        return queue_order(self._queue)

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
        layout.setSpacing(4)
        self.band = RiskBand()
        layout.addWidget(self.band)
        self._who = self._named(plain_label(wrap=True), "who", "Who asks")
        layout.addWidget(self._who)
        self._action = self._named(plain_label(wrap=True, selectable=True), "heading", "What will happen")
        font = self._action.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self._action.setFont(font)
        layout.addWidget(self._action)
        # A held call adds a sentence or two about its client's retries: it must wrap, not run off.
        self._countdown = self._named(plain_label(reveal=False, wrap=True), "countdown", "Time left")
        layout.addWidget(self._countdown)

        self.queue = QueuePanel()
        self.queue.picked.connect(self.select)
        self.queue.deny_client.connect(self._deny_client)
        self._scroll = QScrollArea()
        self._scroll.setObjectName("content")
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._scroll.setWidget(self._build_content())
        self._split = QSplitter(Qt.Orientation.Horizontal)
        self._split.addWidget(self.queue)
        self._split.addWidget(self._scroll)
        self._split.setStretchFactor(1, 1)
        self._split.setSizes([250, 700])
        self._split.setChildrenCollapsible(False)
        self.queue.setMinimumWidth(160)
        layout.addWidget(self._split, 1)

        self._error = self._named(plain_label(wrap=True, reveal=False), "error", "Error")
        self._error.setStyleSheet("QLabel { background: #ffe0e0; color: #700000; padding: 4px; }")
        layout.addWidget(self._error)
        self.bar = DecisionBar()
        self.bar.chosen.connect(self._answer)
        self.bar.always_requested.connect(self._open_confirmation)
        self.bar.back_requested.connect(self._close_confirmation)
        layout.addWidget(self.bar)
        hint = plain_label(_HINT, reveal=False, wrap=True)
        hint.setStyleSheet("QLabel { color: #555; }")
        layout.addWidget(hint)

    def _build_content(self) -> QWidget:
        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 4, 0)
        self._concern = self._named(plain_label(wrap=True, reveal=False), "concern", "Tool concerns")
        self._concern.setStyleSheet("QLabel { background: #fdecea; color: #8a1c1c; padding: 6px; }")
        column.addWidget(self._concern)
        self._pin_diff = plain_view(monospace=True)
        self._pin_diff.setObjectName("pin_diff")
        self._pin_diff.setAccessibleName("How the tool's definition changed")
        self._pin_diff.setMinimumHeight(120)
        self._pin_diff.setMaximumHeight(220)
        column.addWidget(self._pin_diff)
        self._warning = self._named(plain_label(wrap=True, reveal=False), "warning", "Hidden characters")
        self._warning.setStyleSheet("QLabel { background: #fff0d0; color: #5a3a00; padding: 6px; }")
        column.addWidget(self._warning)
        self.edit_panel = EditPanel()
        self.edit_panel.toggled.connect(self._editing_changed)
        column.addWidget(self.edit_panel)
        self.arguments = ArgumentView()
        column.addWidget(self.arguments)
        column.addWidget(plain_label("Tool description:", reveal=False))
        self._description = plain_view()
        self._description.setObjectName("description")
        self._description.setAccessibleName("Tool description")
        self._description.setMaximumHeight(90)
        column.addWidget(self._description)
        grid = QGridLayout()
        self._fields: dict[str, QLabel] = {}
        for row, (name, caption) in enumerate(
            [("client", "Client"), ("server", "Server"), ("tool", "Tool"), ("rule", "Asked by rule")]
        ):
            grid.addWidget(plain_label(caption + ":", reveal=False), row, 0, Qt.AlignmentFlag.AlignTop)
            value = self._named(plain_label(wrap=True, selectable=True), name, caption)
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
            grid.addWidget(value, row, 1)
            self._fields[name] = value
        grid.setColumnStretch(1, 1)
        column.addLayout(grid)
        column.addStretch(1)
        return content

    @staticmethod
    def _named(label: QLabel, name: str, accessible: str) -> QLabel:
        label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
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
            self.bar.message.clear()
            self._rearm()
            if self.isVisible():
                self._scroll.setFocus()
        ordered = self.ordered()
        self.queue.set_requests(ordered, request, self._clock())
        self.queue.setVisible(len(ordered) > 1)
        error = self._errors.get(self._current_id or "", "")
        set_plain(self._error, error)
        self._error.setVisible(bool(error))
        self._update_buttons()

    def _clear(self) -> None:
        self.setWindowTitle(IDLE_TITLE)
        self.band.show_risk(None)
        set_plain(self._who, "", reveal=False)
        set_plain(self._action, "No calls are waiting.", reveal=False)
        for label in self._fields.values():
            set_plain(label, "", reveal=False)
        self._description.clear()
        self.arguments.clear()
        self.edit_panel.show_for(None, None)
        self._warning.hide()
        self._concern.hide()
        self._pin_diff.clear()
        self._pin_diff.hide()
        self.bar.show_choices()
        self._disarm()

    def _fill(self, request: ApprovalRequest) -> None:
        tool = request.tool
        # "[*]" in a window title is Qt's "modified" placeholder; doubled, it shows as itself.
        self.setWindowTitle(f"Approve {revealed(request.summary).text}?".replace("[*]", "[*][*]"))
        self.band.show_risk(request.risk)
        laid = lay_out(request.arguments, request.input_schema, request.argument_order)
        said = headline(request, laid)
        found: list[tuple[str, Revealed]] = []
        found.append(("Client", revealed(said.who)))
        set_plain(self._who, f"{said.who} wants to")
        found.append(("Headline", revealed(said.action)))
        set_plain(self._action, said.action)
        values = {
            "client": request.client,
            "server": tool.server,
            "tool": f"{tool.tool} (exposed as {tool.name})" if tool.tool != tool.name else tool.name,
            "rule": request.rule,
        }
        for name, value in values.items():
            shown = revealed(value)
            self._fields[name].setText(shown.text)
            found.append((self._fields[name].accessibleName(), shown))
        found.append(("Tool description", set_view_text(self._description, request.description or "(none)")))
        if request.result is None:
            found += self.arguments.show_arguments(laid, len(request.arguments))
        else:
            found += self.arguments.show_result(request.result)
        self.edit_panel.show_for(request, laid)
        self._editing_changed(False)
        self.bar.set_offers(offers(request))
        found += self._show_concerns(request)
        warning = hidden_warning(found)
        set_plain(self._warning, warning, keep_newlines=True)
        self._warning.setVisible(bool(warning))
        self._scroll.verticalScrollBar().setValue(0)
        self._update_countdown()

    def _show_concerns(self, request: ApprovalRequest) -> list[tuple[str, Revealed]]:
        """A changed definition (with its diff) and look-alike names, above the arguments."""
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
        shown = show_unified_diff(self._pin_diff, request.pin_change)
        self._pin_diff.setVisible(bool(request.pin_change))
        return [("Definition change", shown)]

    def _on_tick(self) -> None:
        self._update_countdown()
        self._ticks += 1
        if self._ticks % 4 == 0 and len(self._queue) > 1:
            self.queue.update_ages(self.ordered(), self._clock())

    def _update_countdown(self) -> None:
        request = self.current()
        text = waiting_text(request, self._clock()) if request else ""
        set_plain(self._countdown, text, reveal=False)

    # --- answering --------------------------------------------------------------------------

    def _answer(self, choice: str) -> None:
        request = self.current()
        if request is None or (choice != "deny" and not self._armed):
            return
        if choice in ("session", "always") and not getattr(offers(request), choice):
            return  # never for a quarantined tool, whatever reached this
        if choice == "once" and self.edit_panel.editing:
            try:
                edited = self.edit_panel.edited_bytes()
            except EditError as error:
                self.edit_panel.say(str(error))
                self.show_error(request.id, f"Not approved: {error}")
                return
            if edited is not None:
                self._errors.pop(request.id, None)
                self.approved_edited.emit(request.id, edited)
                return
        message = self.bar.message.text().strip() if choice == "deny" else ""
        self._errors.pop(request.id, None)
        if choice == "always":
            self.bar.show_choices()
        self.answered.emit(request.id, choice, message)

    def _editing_changed(self, editing: bool) -> None:
        """Edits replace the read-only arguments; approving them is a fresh, deliberate act."""
        self.arguments.setVisible(not editing)
        self.bar.set_editing(editing)
        if editing:
            self._rearm()

    def _deny_client(self, client: str) -> None:
        message = self.bar.message.text().strip()
        for request in [waiting for waiting in self.ordered() if waiting.client == client]:
            self.answered.emit(request.id, "deny", message)

    def _open_confirmation(self) -> None:
        request = self.current()
        if request is None or not self._armed or not offers(request).always:
            return
        if self._open_scope is not None:
            self._open_scope(request)
            return
        try:
            rule = self._rule_preview(request)
        except Exception as error:  # any failure just means there is no rule to confirm
            self.show_error(request.id, f"Could not prepare the rule for always allowing this tool: {error}")
            return
        self.bar.confirm_rule(
            f"Always allow {request.summary}? This rule will be added to {self._policy_path}, and from "
            "then on it runs without asking (while its definition stays as it is now):",
            rule,
        )
        self._rearm()

    def _close_confirmation(self) -> None:
        self.bar.show_choices()
        self._rearm()

    def reject(self) -> None:
        """Escape and the window's close button deny the call on screen (and close when none remain)."""
        if self.current() is not None:
            self._answer("deny")
        if not self._queue:
            super().reject()

    # --- the arm delay ----------------------------------------------------------------------

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
        has_call = self.current() is not None
        enabled = self._armed and has_call
        if not enabled and self.focusWidget() in self.bar.approve_widgets():
            # Disabling a focused button hands the focus to the next widget, maybe another approve button.
            self._scroll.setFocus()
        self.bar.set_armed(self._armed, has_call)

    def event(self, event: QEvent) -> bool:
        """Re-arm the delay when the window regains focus; disarm while it is inactive."""
        if event.type() == QEvent.Type.WindowDeactivate:
            self._disarm()
        elif event.type() == QEvent.Type.WindowActivate:
            self._rearm()
        return super().event(event)

    def showEvent(self, event: QShowEvent) -> None:
        """Open inside the screen; start the delay and the countdown; focus the content, not a button."""
        if not self._placed:
            self._placed = True
            place(self, PREFERRED_SIZE)
        super().showEvent(event)
        self._rearm()
        self._tick.start()
        self._update_countdown()
        self._scroll.setFocus()

    def hideEvent(self, event: QHideEvent) -> None:
        """Nothing may be approved while hidden; stop the countdown."""
        super().hideEvent(event)
        self._tick.stop()
        self._disarm()
