"""The Rules window: every rule of the policy, where it came from, how often it decided; Edit and Remove.

Each row is a rule as :func:`approver.policy.rules.list_rules` names it (a tools entry with its
conditions and limits below it, the risk defaults, the default), with its origin (the file, or
the approval dialog on a date for a call) and how many calls it decided in the last 7 days.
Before an edit or a removal is saved, the window replays the last 30 days of the audit log
against the policy as it would be (:func:`approver.policy.simulate.simulate_log`) and shows what
would change; saving writes the file atomically and loads it at once. Reading the log runs on a
worker thread.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from approver.audit.log import AuditLog, CallFilter
from approver.config.paths import Paths
from approver.errors import ConfigError
from approver.policy.editing import load_policy_data, write_policy
from approver.policy.engine import Policy
from approver.policy.rules import RuleInfo, list_rules, with_rule_removed, with_rule_replaced
from approver.policy.simulate import report, simulate_log
from approver.ui.jobs import Job, deliver_to
from approver.ui.text import plain_label, plain_tooltip, plain_view, set_plain, set_view_text
from approver.visible import reveal_text

MATCH_DAYS: Final = 7
"""Days over which the Matches column counts decisions."""
SIMULATE_DAYS: Final = 30
"""Days of the audit log an edit is replayed against before it is saved."""
COLUMNS: Final = ("Rule", "What it does", "From", f"Matches ({MATCH_DAYS} days)")


class PolicyOwner(Protocol):
    """What the window needs of the running service."""

    paths: Paths

    def reload_policy(self) -> str | None:
        """Load policy.json now; the error, or None."""
        ...


class RulesWindow(QWidget):
    """Lists every rule with its origin and matches; edits and removals are replayed first, then saved."""

    def __init__(self, service: PolicyOwner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("approver: Rules")
        self._service = service
        self._rules: list[RuleInfo] = []
        self._jobs: list[Job] = []
        self._generation = 0
        self._pending: tuple[str, str, Any] | None = None
        """What Save would do: (``remove`` or ``replace``, pointer, fragment), once it was replayed."""
        self._editing: RuleInfo | None = None
        self._build()
        self.resize(1000, 720)
        self.refresh()

    @property
    def _path(self) -> Path:
        return self._service.paths.policy_file

    # --- building ---------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.heading = plain_label(wrap=True, selectable=True, name="heading")
        layout.addWidget(self.heading)
        self.tree = QTreeWidget()
        self.tree.setObjectName("rules")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setAccessibleName("Rules of the policy")
        header = self.tree.header()
        header.setStretchLastSection(False)
        for column, mode in enumerate(
            (
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.Stretch,
                QHeaderView.ResizeMode.Interactive,
                QHeaderView.ResizeMode.ResizeToContents,
            )
        ):
            header.setSectionResizeMode(column, mode)
        header.resizeSection(2, 280)  # origins can be long: the tooltip has the whole text
        self.tree.itemSelectionChanged.connect(self._selected)
        layout.addWidget(self.tree, 2)

        buttons = QHBoxLayout()
        self.edit_button = self._button(
            "&Edit…", "edit", "Edit the selected rule's JSON; see what changes before saving"
        )
        self.remove_button = self._button(
            "&Remove…", "remove", "Remove the selected rule; see what changes first"
        )
        self.refresh_button = self._button(
            "Re&fresh", "refresh", "Read the policy file and the audit log again"
        )
        self.edit_button.clicked.connect(self.start_edit)
        self.remove_button.clicked.connect(self.start_remove)
        self.refresh_button.clicked.connect(self.refresh)
        for button in (self.edit_button, self.remove_button, self.refresh_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.panel = QWidget()
        panel = QVBoxLayout(self.panel)
        panel.setContentsMargins(0, 0, 0, 0)
        self.panel_heading = plain_label(wrap=True, name="panel_heading")
        panel.addWidget(self.panel_heading)
        self.editor = QPlainTextEdit()
        self.editor.setObjectName("editor")
        self.editor.setAccessibleName("The rule's JSON")
        self.editor.setMaximumHeight(160)
        self.editor.textChanged.connect(self._edited)
        panel.addWidget(self.editor)
        row = QHBoxLayout()
        self.check_button = self._button(
            "&Check what changes", "check", "Replay the audit log against the edit"
        )
        self.save_button = self._button("&Save", "save", "Write the policy file and apply it now")
        self.cancel_button = self._button("Ca&ncel", "cancel", "Leave the rule as it is")
        self.check_button.clicked.connect(self.check)
        self.save_button.clicked.connect(self.save)
        self.cancel_button.clicked.connect(self._close_panel)
        for button in (self.check_button, self.save_button, self.cancel_button):
            row.addWidget(button)
        row.addStretch(1)
        panel.addLayout(row)
        self.report = plain_view(monospace=True)
        self.report.setObjectName("report")
        self.report.setAccessibleName("What would change")
        panel.addWidget(self.report)
        self.panel.hide()
        layout.addWidget(self.panel, 2)
        self.message = plain_label(wrap=True, selectable=True, name="message")
        layout.addWidget(self.message)

    def _button(self, text: str, name: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.setAutoDefault(False)
        return button

    # --- the list ---------------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Read the policy file (and the audit log's counts) again (connect to ``policy_changed``)."""
        self.tree.clear()
        try:
            data = load_policy_data(self._path)
        except ConfigError as exc:
            self._rules = []
            set_plain(self.heading, f"The policy file cannot be listed: {exc}")
            self._selected()
            return
        self._rules = list_rules(data)
        state = (
            str(self._path) if self._path.exists() else f"{self._path} (not written yet: the default policy)"
        )
        set_plain(self.heading, f"Rules of {state}. Matches count the calls each rule decided.")
        parents: list[QTreeWidgetItem] = []
        for rule in self._rules:
            item = QTreeWidgetItem(
                [reveal_text(rule.name), reveal_text(rule.summary), reveal_text(rule.origin), "…"]
            )
            for column, text in enumerate((rule.name, rule.summary, rule.origin)):
                item.setToolTip(column, plain_tooltip(text))
            item.setData(0, Qt.ItemDataRole.UserRole, rule.pointer)
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if rule.depth and parents:
                parents[-1].addChild(item)
            else:
                self.tree.addTopLevelItem(item)
                parents.append(item)
        self.tree.expandAll()
        self._selected()
        self._count_matches()

    def _count_matches(self) -> None:
        audit_db = self._service.paths.audit_db
        since = datetime.now(UTC) - timedelta(days=MATCH_DAYS)

        def count(_job: Job) -> dict[str, int]:
            if not audit_db.exists():
                return {}
            with AuditLog(audit_db, read_only=True) as log:
                return log.rule_counts(CallFilter(since=since))

        job = Job()
        job.finished.connect(self._counted)
        job.start(count, self._jobs)

    def _counted(self, counts: dict[str, int] | None, error: BaseException | None) -> None:
        for item in self._items():
            rule = self._rule_at(item)
            text = "?" if counts is None or rule is None else f"{counts.get(rule.name, 0):,}"
            item.setText(3, text)
        if error is not None:
            set_plain(self.message, f"The audit log could not be read for the matches: {error}")

    def _items(self) -> list[QTreeWidgetItem]:
        found: list[QTreeWidgetItem] = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top is None:
                continue
            found.append(top)
            found += [child for j in range(top.childCount()) if (child := top.child(j)) is not None]
        return found

    def _rule_at(self, item: QTreeWidgetItem) -> RuleInfo | None:
        pointer = item.data(0, Qt.ItemDataRole.UserRole)
        return next((rule for rule in self._rules if rule.pointer == pointer), None)

    def selected_rule(self) -> RuleInfo | None:
        """The rule selected in the list, if any."""
        items = self.tree.selectedItems()
        return self._rule_at(items[0]) if items else None

    def select(self, name: str) -> bool:
        """Select the rule called ``name``; False when there is none (for tests and keyboard users)."""
        for item in self._items():
            rule = self._rule_at(item)
            if rule is not None and rule.name == name:
                self.tree.setCurrentItem(item)
                return True
        return False

    def busy(self) -> bool:
        """Whether the audit log is being read (counts or a replay)."""
        return any(job.running for job in self._jobs)

    def _selected(self) -> None:
        rule = self.selected_rule()
        self.edit_button.setEnabled(rule is not None)
        self.remove_button.setEnabled(rule is not None and rule.pointer != "/default")

    # --- edit and remove ----------------------------------------------------------------------

    @Slot()
    def start_edit(self) -> None:
        """Open the selected rule's JSON for editing."""
        rule = self.selected_rule()
        if rule is None:
            return
        self._open_panel(rule, f"Edit {rule.name} (JSON), then check what changes before saving:")
        self.editor.setReadOnly(False)
        self.editor.setPlainText(json.dumps(rule.fragment, indent=2, ensure_ascii=False))
        self.editor.setFocus()

    @Slot()
    def start_remove(self) -> None:
        """Show what removing the selected rule would change; Save then removes it."""
        rule = self.selected_rule()
        if rule is None or rule.pointer == "/default":
            return
        self._open_panel(rule, f"Remove {rule.name}? What would change is replayed below; Save removes it.")
        self.editor.setReadOnly(True)
        self.editor.setPlainText(json.dumps(rule.fragment, indent=2, ensure_ascii=False))
        self._replay("remove", rule.pointer, None)

    def _open_panel(self, rule: RuleInfo, heading: str) -> None:
        self._editing = rule
        self._pending = None
        set_plain(self.panel_heading, heading)
        self.report.clear()
        set_plain(self.message, "")
        self.panel.show()
        self.save_button.setEnabled(False)

    def _close_panel(self) -> None:
        self._generation += 1
        self._editing = None
        self._pending = None
        self.panel.hide()

    def _edited(self) -> None:
        if self._editing is not None and not self.editor.isReadOnly():
            self._pending = None  # a changed text must be checked again before it can be saved
            self.save_button.setEnabled(False)

    @Slot()
    def check(self) -> None:
        """Validate the edited JSON and replay the audit log against the policy with it."""
        if self._editing is None or self.editor.isReadOnly():
            return
        try:
            fragment = json.loads(self.editor.toPlainText())
        except ValueError as exc:
            set_plain(self.message, f"That is not JSON: {exc}")
            return
        self._replay("replace", self._editing.pointer, fragment)

    def _replay(self, action: str, pointer: str, fragment: Any) -> None:
        try:
            data = load_policy_data(self._path)
            candidate = (
                with_rule_removed(data, pointer)
                if action == "remove"
                else with_rule_replaced(data, pointer, fragment)
            )
            policy = Policy.from_data(candidate, str(self._path))
        except ConfigError as exc:
            set_plain(self.message, f"The policy would not be valid: {exc}")
            return
        self._generation += 1
        generation, audit_db = self._generation, self._service.paths.audit_db
        since = datetime.now(UTC) - timedelta(days=SIMULATE_DAYS)
        set_plain(self.message, f"Replaying the last {SIMULATE_DAYS} days of the audit log…", reveal=False)
        self.check_button.setEnabled(False)

        def replay(_job: Job) -> list[str]:
            if not audit_db.exists():
                return ["The audit log has no calls yet: nothing would change."]
            with AuditLog(audit_db, read_only=True) as log:
                return report(simulate_log(log, policy, CallFilter(since=since)), "the edited policy", since)

        job = Job()
        deliver_to(
            job,
            self,
            lambda lines, error: self._replayed(generation, (action, pointer, fragment), lines, error),
        )
        job.start(replay, self._jobs)

    def _replayed(
        self,
        generation: int,
        pending: tuple[str, str, Any],
        lines: list[str] | None,
        error: BaseException | None,
    ) -> None:
        if generation != self._generation:
            return
        self.check_button.setEnabled(True)
        if error is not None or lines is None:
            set_plain(self.message, f"The audit log could not be replayed: {error}")
            return
        set_view_text(self.report, "\n".join(lines))
        self._pending = pending
        self.save_button.setEnabled(True)
        set_plain(self.message, "Save writes the policy file and applies it at once.", reveal=False)

    @Slot()
    def save(self) -> None:
        """Write the checked edit or removal to the policy file and load it now."""
        if self._pending is None or self._editing is None:
            return
        action, pointer, fragment = self._pending
        try:
            data = load_policy_data(self._path)
            if _fragment_at(data, pointer) != self._editing.fragment:
                raise ConfigError(
                    str(self._path), pointer, "the file changed meanwhile: refresh and try again"
                )
            changed = (
                with_rule_removed(data, pointer)
                if action == "remove"
                else with_rule_replaced(data, pointer, fragment)
            )
            write_policy(self._path, changed)
        except (ConfigError, OSError) as exc:
            set_plain(self.message, f"Not saved: {exc}")
            return
        error = self._service.reload_policy()
        name = self._editing.name
        self._close_panel()
        self.refresh()
        done = "Removed" if action == "remove" else "Saved"
        set_plain(
            self.message,
            f"{done} {name}; the policy is in force now."
            if error is None
            else f"{done} {name}, but: {error}",
        )


def _fragment_at(data: Any, pointer: str) -> Any:
    node = data
    for token in pointer.lstrip("/").split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node.get(key) if isinstance(node, dict) else None
    return node
