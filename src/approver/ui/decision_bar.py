"""The decision bar at the bottom of the approval dialog: approve, broader approvals, message, Deny.

It is pinned below the scrolling content, so Deny is always on screen. Which approvals it offers
comes from :func:`approver.approval.presentation.offers`: a quarantined tool gets Approve and
Deny only; critical, destructive and financial calls keep "Approve for this session" and "Always
approve…" in a "More…" menu. "Always approve…" first shows the rule it will add and asks again.
The bar only reports choices; the dialog decides whether the approve buttons are armed.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from approver.approval.presentation import Offers
from approver.ui.text import plain_label, plain_view, set_plain, set_view_text


def _button(text: str, name: str, description: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setAccessibleName(text.replace("&", "").rstrip("…"))
    button.setAccessibleDescription(description)
    # A focused autoDefault button becomes the dialog's default and takes Enter. None is one, so
    # Enter always reaches the one default button, Deny, whatever has the focus.
    button.setAutoDefault(False)
    return button


class DecisionBar(QWidget):
    """Approve / session / always (or More…), the confirmation of a rule, the deny message and Deny."""

    chosen = Signal(str)
    """``once``, ``session``, ``always`` (after confirming) or ``deny``."""
    always_requested = Signal()
    """"Always approve…" was chosen: the dialog shows the rule with :meth:`confirm_rule`."""
    back_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("decision_bar")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.note = plain_label(reveal=False, wrap=True, name="offers_note")
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        layout.addWidget(self.note)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_choices())
        self.pages.addWidget(self._build_confirmation())
        layout.addWidget(self.pages)
        row = QHBoxLayout()
        self.message = QLineEdit()
        self.message.setObjectName("deny_message")
        self.message.setPlaceholderText("Optional message for the agent when denying")
        self.message.setAccessibleName("Message for the agent")
        self.message.setAccessibleDescription("Sent to the agent with the denial")
        self.deny = _button("&Deny", "deny", "Refuse this call; the agent gets the message")
        self.deny.setDefault(True)
        self.deny.clicked.connect(lambda: self.chosen.emit("deny"))
        row.addWidget(self.message, 1)
        row.addWidget(self.deny)
        layout.addLayout(row)
        self._offers = Offers(session=True, always=True, behind_more=False)
        self._editing = False
        self.set_offers(self._offers)

    def _build_choices(self) -> QWidget:
        page = QWidget()
        row = QHBoxLayout(page)
        row.setContentsMargins(0, 0, 0, 0)
        self.once = _button("&Approve", "approve", "Run this call once")
        self.session = _button(
            "Approve for this &session",
            "approve_session",
            "Run this tool without asking for the rest of this client's session",
        )
        self.always = _button(
            "A&lways approve…",
            "approve_always",
            "Add a rule to the policy file that always allows this tool; asks for confirmation first",
        )
        self.more = _button("&More…", "more", "Broader approvals: for this session, or always")
        self.more_menu = QMenu(self.more)
        self.session_action = QAction("Approve for this session", self.more_menu)
        self.session_action.setObjectName("approve_session")
        self.always_action = QAction("Always approve…", self.more_menu)
        self.always_action.setObjectName("approve_always")
        self.more_menu.addAction(self.session_action)
        self.more_menu.addAction(self.always_action)
        self.more.setMenu(self.more_menu)
        self.once.clicked.connect(lambda: self.chosen.emit("once"))
        self.session.clicked.connect(lambda: self.chosen.emit("session"))
        self.session_action.triggered.connect(lambda: self.chosen.emit("session"))
        self.always.clicked.connect(self.always_requested)
        self.always_action.triggered.connect(self.always_requested)
        for button in (self.once, self.session, self.always, self.more):
            row.addWidget(button)
        row.addStretch(1)
        return page

    def _build_confirmation(self) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        self.confirm_text = plain_label(wrap=True, name="confirm_text")
        self.confirm_text.setAccessibleName("Rule to add")
        column.addWidget(self.confirm_text)
        self.rule_view = plain_view(monospace=True)
        self.rule_view.setObjectName("rule")
        self.rule_view.setAccessibleName("The rule that will be added")
        self.rule_view.setMaximumHeight(90)
        column.addWidget(self.rule_view)
        row = QHBoxLayout()
        self.confirm = _button(
            "&Confirm: add the rule and approve",
            "confirm_always",
            "Write the rule shown above to the policy file, then run this call",
        )
        self.back = _button("&Back", "back", "Return to the other choices")
        self.confirm.clicked.connect(lambda: self.chosen.emit("always"))
        self.back.clicked.connect(self.back_requested)
        row.addWidget(self.confirm)
        row.addWidget(self.back)
        row.addStretch(1)
        column.addLayout(row)
        return page

    def set_offers(self, offers: Offers) -> None:
        """Show the approvals ``offers`` allows, on the bar or behind More…."""
        self._offers = offers
        on_bar = not offers.behind_more
        session, always = offers.session and not self._editing, offers.always and not self._editing
        self.session.setVisible(session and on_bar)
        self.always.setVisible(always and on_bar)
        self.session_action.setVisible(session)
        self.always_action.setVisible(always)
        self.more.setVisible(offers.behind_more and (session or always))
        set_plain(self.note, offers.why, reveal=False)
        self.note.setVisible(bool(offers.why))
        self.show_choices()

    def set_editing(self, editing: bool) -> None:
        """While the arguments are edited, Approve approves the edit, once: no session, no rule."""
        self._editing = editing
        self.once.setText("&Approve edited" if editing else "&Approve")
        self.once.setAccessibleName("Approve edited" if editing else "Approve")
        self.set_offers(self._offers)

    def set_armed(self, armed: bool, has_call: bool) -> None:
        """Enable the approvals only when armed (and a call is on screen); Deny whenever there is a call."""
        enabled = armed and has_call
        for widget in (self.once, self.session, self.always, self.confirm):
            widget.setEnabled(enabled)
        self.session_action.setEnabled(enabled and self._offers.session)
        self.always_action.setEnabled(enabled and self._offers.always)
        self.deny.setEnabled(has_call)

    def approve_widgets(self) -> tuple[QPushButton, ...]:
        """The buttons that approve (to keep the focus off them while disarmed)."""
        return (self.once, self.session, self.always, self.confirm)

    def confirm_rule(self, text: str, rule: str) -> None:
        """Show the rule "always approve" would add and ask again."""
        set_plain(self.confirm_text, text)
        set_view_text(self.rule_view, rule)
        self._show_page(1)

    def show_choices(self) -> None:
        """Back to the approve buttons."""
        self._show_page(0)

    def _show_page(self, index: int) -> None:
        # A stacked widget is as tall as its tallest page; only the page on screen may count.
        for number in range(self.pages.count()):
            page = self.pages.widget(number)
            policy = QSizePolicy.Policy.Preferred if number == index else QSizePolicy.Policy.Ignored
            if page is not None:
                page.setSizePolicy(policy, policy)
        self.pages.setCurrentIndex(index)
        self.pages.adjustSize()

    @property
    def confirming(self) -> bool:
        """Whether the rule confirmation is on screen."""
        return self.pages.currentIndex() == 1
