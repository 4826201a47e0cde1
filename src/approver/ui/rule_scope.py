"""The confirm step of "Always approve…": what the rule covers, the rule itself, and its history.

The approval dialog opens :class:`RuleScopeDialog` for the call on screen. The person chooses
who the rule is for (this client or all clients) and how each argument must look (any value,
exactly this, a path under a folder, a glob, a command's first words, a URL's host); the dialog
shows the JSON rule, the file it goes into, and what it would have decided over the tool's last
calls in the audit log (read on a worker thread). It only *reports* the choice through
:attr:`RuleScopeDialog.confirmed`; the approval controller writes the rule and approves.
Like the approval dialog, its confirm button unlocks only a moment after the window has the
focus, and Enter or Escape cancel.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from PySide6.QtCore import QEvent, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from approver.approval.broker import ApprovalRequest
from approver.policy.scoped import ArgumentChoice, RuleScope, Scope, ScopedRule
from approver.policy.simulate import LoggedCall, RulePreview
from approver.ui.jobs import Job, deliver_to
from approver.ui.text import plain_label, plain_view, set_plain, set_view_text
from approver.visible import reveal_text

EDITABLE: Final = frozenset({Scope.PATH_UNDER, Scope.GLOB, Scope.COMMAND_PREFIX, Scope.URL_HOST})
"""Choices whose operand the person may change (a folder, a glob, words, a host)."""
PREVIEW_CALLS: Final = 200
"""How many of the tool's latest calls the history looks at."""
_LISTED: Final = 12
_SHOWN_ARGUMENTS: Final = 90
_DEBOUNCE_MS: Final = 250


class RuleDrafts(Protocol):
    """What the dialog needs from the core (:class:`approver.service.Service` is one)."""

    def rule_choices(self, request: ApprovalRequest) -> dict[str, list[ArgumentChoice]]:
        """How a rule can match each argument."""
        ...

    def draft_rule(self, request: ApprovalRequest, scope: RuleScope) -> ScopedRule:
        """The policy with the rule; raises ConfigError when the rule cannot be made."""
        ...

    def preview_rule(
        self, request: ApprovalRequest, draft: ScopedRule, calls: int = PREVIEW_CALLS
    ) -> RulePreview:
        """What the rule would have decided over the tool's last calls (run on a worker thread)."""
        ...


class RuleScopeDialog(QDialog):
    """Choose what an "Always approve…" rule covers, see it and its history, then confirm."""

    confirmed = Signal(object)
    """The chosen :class:`RuleScope`."""

    def __init__(
        self,
        request: ApprovalRequest,
        drafts: RuleDrafts,
        *,
        policy_path: str,
        arm_delay_ms: int = 1000,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.request = request
        self._drafts = drafts
        self._policy_path = policy_path
        self._arm_delay_ms = arm_delay_ms
        self._draft: ScopedRule | None = None
        self._armed = False
        self._jobs: list[Job] = []
        self._generation = 0
        self.preview: RulePreview | None = None
        """The history shown now (None while it is being read)."""
        self._choices = drafts.rule_choices(request)
        self._rows: dict[str, tuple[QComboBox, QLineEdit]] = {}
        self._arm_timer = QTimer(self)
        self._arm_timer.setSingleShot(True)
        self._arm_timer.timeout.connect(self._arm)
        self._update_timer = QTimer(self)
        self._update_timer.setSingleShot(True)
        self._update_timer.setInterval(_DEBOUNCE_MS)
        self._update_timer.timeout.connect(self._update)
        self.setWindowTitle(reveal_text(f"Always approve {request.tool.name}?"))
        self.setAccessibleName("Choose what the rule covers")
        self._building = True
        self._build()
        self._building = False
        self._fit_screen(760, 720)
        self._update()

    # --- building ---------------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        # Everything but the buttons scrolls: on a small or scaled screen they stay in view.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        scroll.setWidget(content)
        outer.addWidget(scroll, 1)
        heading = plain_label(
            f"From now on, run {self.request.tool.name} without asking when the call is like this one:",
            wrap=True,
            name="heading",
        )
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        layout.addWidget(heading)

        layout.addWidget(plain_label("Which clients:", reveal=False))
        self.this_client = QRadioButton(reveal_text(f"Only {self.request.client}"))
        self.this_client.setObjectName("this_client")
        self.all_clients = QRadioButton("All clients")
        self.all_clients.setObjectName("all_clients")
        self._group(self.this_client, self.all_clients, layout)
        self.this_client.setChecked(True)

        layout.addWidget(plain_label("Which arguments:", reveal=False))
        self.like_these = QRadioButton("Arguments like these:")
        self.like_these.setObjectName("like_these")
        self.any_arguments = QRadioButton("Any arguments")
        self.any_arguments.setObjectName("any_arguments")
        self._group(self.like_these, self.any_arguments, layout)
        self.like_these.setChecked(bool(self._choices))
        self.any_arguments.setChecked(not self._choices)
        self.like_these.setEnabled(bool(self._choices))
        layout.addLayout(self._build_arguments())

        self.where = plain_label(wrap=True, name="where")
        layout.addWidget(self.where)
        self.rule_view = plain_view(monospace=True)
        self.rule_view.setObjectName("rule")
        self.rule_view.setAccessibleName("The rule that will be added")
        self.rule_view.setMaximumHeight(170)
        layout.addWidget(self.rule_view)
        self.error = plain_label(wrap=True, name="error")
        self.error.setStyleSheet("QLabel { background: #ffe0e0; color: #700000; padding: 6px; }")
        self.error.hide()
        layout.addWidget(self.error)

        self.history = plain_label(wrap=True, name="history")
        layout.addWidget(self.history)
        self.history_list = plain_view(monospace=True)
        self.history_list.setObjectName("history_list")
        self.history_list.setAccessibleName("Calls the rule would have decided")
        self.history_list.setMinimumHeight(120)
        layout.addWidget(self.history_list, 1)

        layout = outer
        row = QHBoxLayout()
        self.confirm = QPushButton("&Add the rule and approve")
        self.confirm.setObjectName("confirm_rule")
        self.confirm.setAccessibleDescription(
            "Write the rule shown above to the policy file, then run this call"
        )
        self.confirm.setAutoDefault(False)
        self.confirm.clicked.connect(self._confirm)
        self.cancel = QPushButton("&Cancel")
        self.cancel.setObjectName("cancel_rule")
        self.cancel.setDefault(True)
        self.cancel.clicked.connect(self.reject)
        row.addWidget(self.confirm)
        row.addWidget(self.cancel)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(
            plain_label(
                "The confirm button unlocks a moment after this window gets the focus. Enter and Escape "
                "cancel; the call then still waits in the approval window.",
                reveal=False,
                wrap=True,
            )
        )

    def _group(self, first: QRadioButton, second: QRadioButton, layout: QVBoxLayout) -> None:
        group = QButtonGroup(self)
        row = QHBoxLayout()
        for button in (first, second):
            group.addButton(button)
            button.toggled.connect(self._changed)
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)

    def _build_arguments(self) -> QGridLayout:
        grid = QGridLayout()
        for row, (name, options) in enumerate(self._choices.items()):
            grid.addWidget(plain_label(name + ":"), row, 0)
            combo = QComboBox()
            combo.setObjectName(f"choice_{name}")
            combo.setAccessibleName(f"How {name} must look")
            for option in options:
                combo.addItem(reveal_text(option.describe()))
            combo.setCurrentIndex(1)  # exactly this value: the narrowest, widened on purpose
            operand = QLineEdit()
            operand.setObjectName(f"operand_{name}")
            operand.setAccessibleName(f"The {name} the rule allows")
            combo.currentIndexChanged.connect(lambda _index, name=name: self._choice_changed(name))
            operand.textEdited.connect(self._changed)
            grid.addWidget(combo, row, 1)
            grid.addWidget(operand, row, 2)
            self._rows[name] = (combo, operand)
            self._choice_changed(name)
        grid.setColumnStretch(2, 1)
        return grid

    def _fit_screen(self, width: int, height: int) -> None:
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            room = screen.availableGeometry()
            width, height = min(width, room.width() - 40), min(height, room.height() - 60)
        self.resize(width, height)

    # --- what the person chose --------------------------------------------------------------

    def scope(self) -> RuleScope:
        """The rule's scope as chosen now."""
        client = self.request.client if self.this_client.isChecked() else None
        if self.any_arguments.isChecked():
            return RuleScope(client)
        chosen = []
        for name, (combo, operand) in self._rows.items():
            option = self._choices[name][combo.currentIndex()]
            if option.scope in EDITABLE:
                option = ArgumentChoice(name, option.scope, operand.text())
            chosen.append(option)
        return RuleScope(client, tuple(chosen))

    def choose(self, argument: str, scope: Scope, operand: str | None = None) -> None:
        """Pick how ``argument`` must look (and its operand, for editable choices); for tests and keys."""
        combo, edit = self._rows[argument]
        index = next(i for i, option in enumerate(self._choices[argument]) if option.scope is scope)
        combo.setCurrentIndex(index)
        if operand is not None:
            edit.setText(operand)
        self._update()

    def _choice_changed(self, name: str) -> None:
        combo, operand = self._rows[name]
        option = self._choices[name][combo.currentIndex()]
        editable = option.scope in EDITABLE
        operand.setEnabled(editable)
        operand.setText(
            str(option.operand) if editable else "" if option.scope is Scope.ANY else _shown(option.operand)
        )
        operand.setCursorPosition(0)
        self._changed()

    def _changed(self, *_: object) -> None:
        if self._building:
            return
        for combo, operand in self._rows.values():
            combo.setEnabled(self.like_these.isChecked())
            if not self.like_these.isChecked():
                operand.setEnabled(False)
        self._draft = None
        self._update_buttons()
        self._update_timer.start()

    # --- the rule and its history -------------------------------------------------------------

    def _update(self) -> None:
        self._update_timer.stop()
        self._generation += 1
        try:
            draft = self._drafts.draft_rule(self.request, self.scope())
        except Exception as exc:  # a bad folder or glob: say why, offer nothing to confirm
            self._draft = None
            set_plain(self.error, f"This rule cannot be added: {exc}")
            self.error.show()
            self.rule_view.clear()
            set_plain(self.history, "")
            self.history_list.clear()
            self._update_buttons()
            return
        self._draft = draft
        self.error.hide()
        set_plain(self.where, f"It goes into {self._policy_path} as {draft.rule}:")
        set_view_text(self.rule_view, json.dumps(draft.fragment, indent=2, ensure_ascii=False))
        self.preview = None
        set_plain(self.history, "Looking through the audit log…", reveal=False)
        self.history_list.clear()
        self._update_buttons()
        generation, request, drafts = self._generation, self.request, self._drafts
        job = Job()
        deliver_to(job, self, lambda result, error: self._previewed(generation, result, error))
        job.start(lambda _job: drafts.preview_rule(request, draft, PREVIEW_CALLS), self._jobs)

    def _previewed(self, generation: int, preview: RulePreview | None, error: BaseException | None) -> None:
        if generation != self._generation:
            return  # the choice changed meanwhile; a newer history is on its way
        if error is not None or preview is None:
            set_plain(self.history, f"The audit log could not be read: {error}")
            return
        self.preview = preview
        if not preview.calls:
            set_plain(self.history, "The audit log has no calls of this tool yet.", reveal=False)
            return
        ending = ":" if preview.matched else "."
        set_plain(self.history, f"Over the audit log, this rule {preview.summary()}{ending}")
        denied = {call.id for call in preview.denied_by_you}
        lines = [_history_line(call, call.id in denied) for call in preview.matched[:_LISTED]]
        if len(preview.matched) > _LISTED:
            lines.append(f"… and {len(preview.matched) - _LISTED} more")
        set_view_text(self.history_list, "\n".join(lines))

    # --- confirming ---------------------------------------------------------------------------

    def _confirm(self) -> None:
        if self._draft is None or not self.confirm.isEnabled():
            return
        self.confirmed.emit(self.scope())

    def show_error(self, message: str) -> None:
        """Say why the rule was not added (plain text); the dialog stays for another try."""
        set_plain(self.error, message)
        self.error.show()

    def _update_buttons(self) -> None:
        self.confirm.setEnabled(self._armed and self._draft is not None)

    def done(self, result: int) -> None:
        """Closing drops any history still being read (its result is not shown)."""
        self._generation += 1
        self._update_timer.stop()
        super().done(result)

    def _arm(self) -> None:
        self._armed = self.isVisible()
        self._update_buttons()

    def _rearm(self) -> None:
        self._armed = False
        self._update_buttons()
        if self._arm_delay_ms <= 0:
            self._arm()
        else:
            self._arm_timer.start(self._arm_delay_ms)

    def showEvent(self, event: QShowEvent) -> None:
        """Start the arm delay; the focus goes to the first choice, not a button."""
        super().showEvent(event)
        self._rearm()
        self.this_client.setFocus()

    def event(self, event: QEvent) -> bool:
        """Re-arm when the window regains focus; disarm while it is inactive."""
        if event.type() == QEvent.Type.WindowDeactivate:
            self._arm_timer.stop()
            self._armed = False
            self._update_buttons()
        elif event.type() == QEvent.Type.WindowActivate:
            self._rearm()
        return super().event(event)

    def jobs_running(self) -> bool:
        """Whether a history is still being read (for tests)."""
        return any(job.running for job in self._jobs)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _history_line(call: LoggedCall, denied: bool) -> str:
    arguments = call.arguments or ""
    if len(arguments) > _SHOWN_ARGUMENTS:
        arguments = arguments[:_SHOWN_ARGUMENTS] + "…"
    mark = "  (you denied it)" if denied else ""
    return f"{call.ts[:16].replace('T', ' ')}  {call.client}  {arguments}{mark}"
