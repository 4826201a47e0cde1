"""Approvals on the desktop: waiting calls go to the dialog, the user's answers go to the broker.

The :class:`ApprovalController` is the only UI code that settles calls, and only through the
broker's public ``approve``/``deny``. For "always allow" it writes the policy rule first and
approves only once the rule is in the file; if writing fails, the call stays waiting and the
dialog says why. With ``scoped_rules`` the rule's reach is chosen in
:class:`~approver.ui.rule_scope.RuleScopeDialog` (this client or all, arguments like these).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Signal

from approver.approval.broker import ApprovalRequest, Broker, Resolution, Scope
from approver.errors import ApproverError
from approver.policy.scoped import RuleScope, ScopedRule
from approver.ui.approval_view import CHOICES, ApprovalDialog
from approver.ui.rule_scope import RuleDrafts, RuleScopeDialog
from approver.ui.signals import CoreSignals

__all__ = ["CHOICES", "ApprovalController", "ApprovalDialog", "RuleWriter"]

logger = logging.getLogger(__name__)

_SCOPES = {"once": Scope.ONCE, "session": Scope.SESSION, "always": Scope.ALWAYS}


class RuleWriter(RuleDrafts, Protocol):
    """Writes "always allow" rules (:class:`approver.service.Service` is one)."""

    def add_rule(self, request: ApprovalRequest, scope: RuleScope) -> ScopedRule:
        """Add the scoped rule to the policy file; raises ApproverError when it cannot."""
        ...

    def always_allow_rule(self, request: ApprovalRequest) -> str:
        """The rule that :meth:`always_allow` would add, as JSON for the user to read."""
        ...

    def always_allow(self, request: ApprovalRequest) -> None:
        """Add the rule to the policy file; raises ApproverError when it cannot."""
        ...


class ApprovalController(QObject):
    """Connects the core's approval signals to the dialog and the dialog's answers to the broker.

    The dialog is shown and raised when a call arrives and hides itself when none remain.
    ``policy_path`` is named in the "always allow" confirmation.
    """

    waiting_changed = Signal(int)
    """How many calls are waiting now (for the tray icon)."""

    def __init__(
        self,
        signals: CoreSignals,
        broker: Broker,
        rules: RuleWriter,
        *,
        policy_path: Path | str | None = None,
        arm_delay_ms: int = 1000,
        clock: Callable[[], float] = time.time,
        scoped_rules: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._signals = signals
        self._broker = broker
        self._rules = rules
        self._closed = False
        self._policy_path = str(policy_path) if policy_path is not None else "the policy file"
        self._arm_delay_ms = arm_delay_ms
        self.scope_dialog: RuleScopeDialog | None = None
        """The open "Always approve…" confirmation, if any."""
        self.dialog = ApprovalDialog(
            rules.always_allow_rule,
            policy_path=policy_path,
            arm_delay_ms=arm_delay_ms,
            clock=clock,
            open_scope=self._open_scope if scoped_rules else None,
        )
        signals.approval_arrived.connect(self._arrived)
        signals.approval_ended.connect(self._ended)
        self.dialog.answered.connect(self._answered)
        self.dialog.approved_edited.connect(self._approved_edited)
        for request in broker.pending():
            self._arrived(request)

    def show_request(self, request_id: str) -> None:
        """Show and raise the dialog with this waiting call on screen (picked from a menu or list)."""
        if self.dialog.select(request_id):
            self._raise()

    def close(self) -> None:
        """Stop following the core and hide the dialog, answering nothing (on quit)."""
        if self._closed:
            return
        self._closed = True
        self._signals.approval_arrived.disconnect(self._arrived)
        self._signals.approval_ended.disconnect(self._ended)
        self.dialog.answered.disconnect(self._answered)
        self.dialog.approved_edited.disconnect(self._approved_edited)
        if self.scope_dialog is not None:
            self.scope_dialog.reject()
        self.dialog.hide()

    def _raise(self) -> None:
        self.dialog.show()
        self.dialog.raise_()

    def _arrived(self, request: ApprovalRequest) -> None:
        self.dialog.add(request)
        self._raise()
        self.waiting_changed.emit(len(self.dialog.requests()))

    def _ended(self, request: ApprovalRequest, resolution: Resolution) -> None:
        if self.scope_dialog is not None and self.scope_dialog.request.id == request.id:
            self.scope_dialog.reject()
        self.dialog.remove(request.id)
        self.waiting_changed.emit(len(self.dialog.requests()))

    def _open_scope(self, request: ApprovalRequest) -> None:
        """Open the scoped confirmation for the call on screen (over the dialog, which waits)."""
        if self.scope_dialog is not None:
            self.scope_dialog.reject()
        scope_dialog = RuleScopeDialog(
            request,
            self._rules,
            policy_path=self._policy_path,
            arm_delay_ms=self._arm_delay_ms,
            parent=self.dialog,
        )
        scope_dialog.confirmed.connect(lambda scope: self._scope_confirmed(scope_dialog, scope))
        scope_dialog.finished.connect(lambda _result: self._scope_closed(scope_dialog))
        self.scope_dialog = scope_dialog
        scope_dialog.open()

    def _scope_closed(self, scope_dialog: RuleScopeDialog) -> None:
        if self.scope_dialog is scope_dialog:
            self.scope_dialog = None
        scope_dialog.deleteLater()

    def _scope_confirmed(self, scope_dialog: RuleScopeDialog, scope: RuleScope) -> None:
        """Write the scoped rule, then approve; on failure say why and leave the call waiting."""
        request = scope_dialog.request
        if not any(waiting.id == request.id for waiting in self.dialog.requests()):
            scope_dialog.reject()
            return
        try:
            self._rules.add_rule(request, scope)
        except ApproverError as error:
            scope_dialog.show_error(f"The rule was not added, so the call was not approved: {error}")
            return
        except Exception as error:
            logger.exception("writing the scoped rule failed")
            scope_dialog.show_error(
                f"The rule was not added, so the call was not approved: unexpected error: {error}"
            )
            return
        scope_dialog.accept()
        if not self._broker.approve(request.id, Scope.ALWAYS):
            self.dialog.remove(request.id)
            self.waiting_changed.emit(len(self.dialog.requests()))

    def _answered(self, request_id: str, choice: str, message: str) -> None:
        request = next((waiting for waiting in self.dialog.requests() if waiting.id == request_id), None)
        if request is None:
            return
        scope = _SCOPES.get(choice)
        if scope is None:
            settled = self._broker.deny(request_id, message)
        else:
            if scope is Scope.ALWAYS and not self._write_rule(request):
                return
            settled = self._broker.approve(request_id, scope)
        if not settled:
            # It ended meanwhile (timeout, client gone); the broker already said so, or will not.
            self.dialog.remove(request_id)
            self.waiting_changed.emit(len(self.dialog.requests()))

    def _approved_edited(self, request_id: str, arguments: bytes) -> None:
        """Approve the person's edit of the call, once (the gateway checks it again before it runs)."""
        if not self._broker.approve(request_id, Scope.ONCE, arguments=bytes(arguments)):
            self.dialog.remove(request_id)
            self.waiting_changed.emit(len(self.dialog.requests()))

    def _write_rule(self, request: ApprovalRequest) -> bool:
        """Add the always-allow rule; on failure show why and leave the call waiting."""
        try:
            self._rules.always_allow(request)
        except ApproverError as error:
            reason = str(error)
        except Exception as error:
            logger.exception("writing the always-allow rule failed")
            reason = f"unexpected error: {error}"
        else:
            return True
        self.dialog.show_error(
            request.id,
            f"The rule was not added, so the call was not approved: {reason}\n"
            "Fix the policy file, or choose another option for this call.",
        )
        return False
