"""The desktop composition root: the gateway on the qasync loop, with tray, windows and dialog.

:class:`DesktopApp` wires a running :class:`~approver.service.Service` to the UI: the one
:class:`~approver.ui.signals.CoreSignals` bridge, the approval controller, the tray icon (or the
main window when there is no tray), notifications and the secondary windows. :func:`run_desktop`
is what ``approver`` (no arguments) and ``approver demo`` run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from approver.approval.broker import ApprovalRequest, Resolution
from approver.audit.log import DecisionRecord
from approver.clients.setup import Installer, bridge_data_dir
from approver.config.autostart import Autostart, AutostartError, default_command
from approver.events import Recorded
from approver.service import Service
from approver.ui.approval import ApprovalController
from approver.ui.audit_window import AuditWindow
from approver.ui.connect import ConnectWindow
from approver.ui.controls import Controls, WaitingMenu
from approver.ui.icons import TrayState, app_icon, icon
from approver.ui.main_window import MainWindow
from approver.ui.notify import Notifier
from approver.ui.policy_view import PolicyWindow
from approver.ui.servers import ServersWindow
from approver.ui.sign_in import SignInRunner, state_label
from approver.ui.signals import CoreSignals
from approver.ui.text import plain_tooltip
from approver.upstream.connection import UpstreamState
from approver.visible import reveal_text

logger = logging.getLogger(__name__)

_TROUBLE_STATES = (UpstreamState.FAILED, UpstreamState.RESTARTING, UpstreamState.NEEDS_SIGN_IN)


class DesktopApp(QObject):
    """The UI around one running service. Quit through :meth:`request_quit`, then :meth:`close`."""

    quit_requested = Signal()

    def __init__(
        self,
        service: Service,
        *,
        tray_available: bool | None = None,
        autostart: Autostart | None = None,
        bridge_command: Sequence[str] | None = None,
        arm_delay_ms: int = 1000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.autostart = autostart if autostart is not None else Autostart()
        self.bridge_command = list(bridge_command) if bridge_command is not None else default_command()
        if tray_available is None:
            tray_available = QSystemTrayIcon.isSystemTrayAvailable()
        self.signals = CoreSignals(service.broker, service.events, self)
        self._detach_approver = service.broker.attach_approver()
        self.approvals = ApprovalController(
            self.signals, service.broker, service, arm_delay_ms=arm_delay_ms, parent=self
        )
        self.controls = Controls(self)
        self.window = MainWindow(self.controls, tray_available=tray_available)
        self.menu: WaitingMenu = self.controls.build_menu()
        self.tray: QSystemTrayIcon | None = None
        if tray_available:
            self.tray = QSystemTrayIcon(app_icon(), self)
            self.tray.setContextMenu(self.menu)
            self.tray.activated.connect(self._tray_activated)
            self.tray.show()
        self.notifier = Notifier(self.tray, parent=self)
        self.windows: dict[str, QWidget] = {}
        self.sign_in = SignInRunner(service, parent=self)
        self._told_sign_in: set[str] = set()
        """Servers whose "Sign in needed" was notified, so it is said once per episode."""
        self._audit_error: str | None = service.recorder.last_error
        self._wire()
        self.refresh_state()
        for server in service.upstreams:
            self._tell_sign_in(server)
        if self.tray is None:
            self.window.show()

    # -- wiring -----------------------------------------------------------------------------------

    def _wire(self) -> None:
        controls, signals = self.controls, self.signals
        controls.show_window.triggered.connect(self.show_window)
        controls.pause.setChecked(self.service.paused)
        controls.pause.toggled.connect(self._set_paused)
        controls.audit.triggered.connect(self.open_audit)
        controls.servers.triggered.connect(self.open_servers)
        controls.policy.triggered.connect(self.open_policy)
        controls.connect_client.triggered.connect(self.open_connect)
        controls.autostart.setEnabled(self.autostart.supported)
        controls.autostart.setToolTip(self.autostart.unsupported_reason() or "Start approver when you log in")
        controls.autostart.setChecked(self.autostart.enabled())
        controls.autostart.toggled.connect(self._set_autostart)
        controls.quit.triggered.connect(self.request_quit)
        controls.pick_request.connect(self.approvals.show_request)
        signals.approval_arrived.connect(self._approval_arrived)
        signals.approval_ended.connect(self._approval_ended)
        signals.recorded.connect(self._recorded)
        signals.audit_failed.connect(self._audit_failed)
        signals.upstream_changed.connect(self._upstream_changed)
        signals.policy_changed.connect(self._policy_changed)
        signals.paused_changed.connect(self._paused_changed)
        self.notifier.shown.connect(self._notified)

    def _notified(self, title: str, body: str) -> None:
        self.window.show_notice(title, body)
        if self.tray is None:
            # No balloon without a tray: the window's taskbar entry asks for attention instead.
            QApplication.alert(self.window)

    def _tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason is QSystemTrayIcon.ActivationReason.Trigger:
            if self.service.broker.pending():
                self.approvals.show_request(self.service.broker.pending()[0].id)
            else:
                self.show_window()

    # -- state ------------------------------------------------------------------------------------

    def state(self) -> TrayState:
        """What the tray icon shows now."""
        troubled = [
            reveal_text(
                f"{status.name}: {state_label(status.state)}" + (f" ({status.error})" if status.error else "")
            )
            for status in (upstream.status() for upstream in self.service.upstreams.values())
            if status.state in _TROUBLE_STATES
        ]
        if self._audit_error:
            troubled.insert(
                0, reveal_text(f"audit log cannot be written, calls are denied: {self._audit_error}")
            )
        if self.service.policy.error:
            troubled.append("policy.json has an error; the last good policy is in force")
        return TrayState(self.service.paused, len(self.service.broker.pending()), tuple(troubled))

    def refresh_state(self) -> None:
        """Redraw the tray icon, tooltip, menu and main window from the service's state."""
        state = self.state()
        waiting = self.service.broker.pending()
        if self.tray is not None:
            self.tray.setIcon(icon(state))
            self.tray.setToolTip(plain_tooltip(state.tooltip()))
        self.menu.set_waiting(waiting)
        self.window.set_waiting(waiting)
        self.window.setWindowIcon(icon(state))
        self.window.set_state(state, self._headline(state), self._details())

    def _headline(self, state: TrayState) -> str:
        if state.paused:
            return "Paused: every call is denied"
        if state.waiting:
            return f"{state.waiting} call{'s' if state.waiting != 1 else ''} waiting for your approval"
        if state.troubled:
            return "Running, with problems"
        return "Running: guarding your agents' tool calls"

    def _details(self) -> list[str]:
        service = self.service
        statuses = [upstream.status() for upstream in service.upstreams.values()]
        ready = sum(status.state is UpstreamState.READY for status in statuses)
        lines = [f"Gateway: {service.url}", f"Servers: {ready} of {len(statuses)} ready"]
        lines += [
            reveal_text(f"  {s.name}: {state_label(s.state)}" + (f": {s.error}" if s.error else ""))
            for s in statuses
            if s.state is not UpstreamState.READY
        ]
        lines.append(reveal_text("Policy: " + service.policy.describe()))
        if self._audit_error:
            lines.append(
                reveal_text(f"Audit log: cannot be written ({self._audit_error}); every call is denied")
            )
        else:
            lines.append(f"Audit log: {service.paths.audit_db}")
        return lines

    # -- core events -------------------------------------------------------------------------------

    def _approval_arrived(self, request: ApprovalRequest) -> None:
        self.refresh_state()
        risk = f"{request.risk.risk_class.value}, {request.risk.level.value}"
        self.notifier.notify(
            "waiting",
            reveal_text(f"Approve {request.tool.name}?"),
            reveal_text(f"{request.client} wants to call {request.tool.name} ({risk})."),
        )

    def _approval_ended(self, request: ApprovalRequest, resolution: Resolution) -> None:
        self.refresh_state()

    def _recorded(self, event: Recorded) -> None:
        if self._audit_error is not None:
            self._audit_error = None
            self.refresh_state()
        record = event.record
        if isinstance(record, DecisionRecord) and record.decision == "deny" and record.decided_by == "policy":
            self.notifier.notify(
                "denied",
                reveal_text(f"Denied by policy: {record.tool}"),
                reveal_text(f"{record.client}: {record.reason}"),
            )
        audit = self.windows.get("audit")
        if isinstance(audit, AuditWindow):
            audit.notify_recorded()

    def _audit_failed(self, error: str) -> None:
        first = self._audit_error is None
        self._audit_error = error
        self.refresh_state()
        if first:
            self.notifier.notify(
                "audit", "The audit log cannot be written", reveal_text(f"Every call is denied: {error}")
            )

    def _upstream_changed(self, server: str, what: str) -> None:
        if what == "state":
            self.refresh_state()
            self._tell_sign_in(server)
        servers = self.windows.get("servers")
        if isinstance(servers, ServersWindow):
            servers.refresh()

    def _tell_sign_in(self, server: str) -> None:
        upstream = self.service.upstreams.get(server)
        if upstream is None or upstream.state is not UpstreamState.NEEDS_SIGN_IN:
            if upstream is not None and upstream.state is UpstreamState.READY:
                self._told_sign_in.discard(server)
            return
        if server not in self._told_sign_in:
            self._told_sign_in.add(server)
            self.notifier.notify(
                "sign-in",
                reveal_text(f"Sign in needed: {server}"),
                reveal_text(
                    f"In approver's Servers window, select {server} and press Sign in ({upstream.error})."
                ),
            )

    def _policy_changed(self, error: object) -> None:
        self.refresh_state()
        policy = self.windows.get("policy")
        if isinstance(policy, PolicyWindow):
            policy.refresh()

    def _paused_changed(self, paused: bool) -> None:
        if self.controls.pause.isChecked() != paused:
            self.controls.pause.setChecked(paused)
        self.refresh_state()

    # -- commands ----------------------------------------------------------------------------------

    def _set_paused(self, paused: bool) -> None:
        if paused == self.service.paused:
            return
        if paused:
            self.service.pause()
        else:
            self.service.resume()

    def _set_autostart(self, enabled: bool) -> None:
        try:
            self.autostart.set_enabled(enabled)
        except AutostartError as exc:
            self.notifier.notify("autostart", "Start at login", str(exc))
            self.controls.autostart.blockSignals(True)
            self.controls.autostart.setChecked(self.autostart.enabled())
            self.controls.autostart.blockSignals(False)

    def show_window(self) -> None:
        """Show and raise the main window."""
        _present(self.window)

    def _open(self, key: str, create: Callable[[], QWidget]) -> QWidget:
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = create()
            window.setWindowIcon(app_icon())
        _present(window)
        return window

    def open_audit(self) -> AuditWindow:
        """Open (or raise) the audit log window."""
        window = self._open("audit", lambda: AuditWindow(self.service.paths.audit_db))
        assert isinstance(window, AuditWindow)
        return window

    def open_servers(self) -> ServersWindow:
        """Open (or raise) the servers window."""
        window = self._open("servers", lambda: ServersWindow(self.service, self.sign_in))
        assert isinstance(window, ServersWindow)
        window.refresh()
        return window

    def open_policy(self) -> PolicyWindow:
        """Open (or raise) the policy window."""
        window = self._open("policy", lambda: PolicyWindow(self.service))
        assert isinstance(window, PolicyWindow)
        window.refresh()
        return window

    def open_connect(self) -> ConnectWindow:
        """Open (or raise) the connect-a-client window."""
        service = self.service
        installer = Installer(
            service.paths.servers_file, tuple(self.bridge_command), bridge_data_dir(service.paths)
        )
        window = self._open(
            "connect",
            lambda: ConnectWindow(service.tokens, service.port, self.bridge_command, installer=installer),
        )
        assert isinstance(window, ConnectWindow)
        return window

    def request_quit(self) -> None:
        """Deny every waiting call (each is recorded by its waiting task), then ask to stop."""
        self.service.broker.close("shutdown", "approver is quitting")
        self.quit_requested.emit()

    def close(self) -> None:
        """Detach from the core and close every window (the service is stopped by the caller)."""
        self.signals.disconnect_core()
        # Notifications folded during a burst are shown by a timer that may fire after this.
        self.notifier.shown.disconnect(self._notified)
        self._detach_approver()
        self.approvals.close()
        self.sign_in.cancel_all()
        for window in self.windows.values():
            window.close()
            window.deleteLater()
        self.windows.clear()
        if self.tray is not None:
            self.tray.hide()
        self.window.hide()
        self.window.deleteLater()
        self.menu.deleteLater()


def _present(window: QWidget) -> None:
    window.show()
    window.raise_()
    window.activateWindow()


def install_quit_on_signals(loop: asyncio.AbstractEventLoop, quit_: asyncio.Event) -> None:
    """Quit cleanly on SIGINT/SIGTERM (Ctrl+C in the terminal, a logout)."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, quit_.set)
        except (NotImplementedError, RuntimeError):
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(quit_.set))


def application() -> QApplication:
    """The QApplication, created once with approver's settings."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(["approver"])
    app.setApplicationName("approver")
    app.setApplicationDisplayName("approver")
    app.setDesktopFileName("approver")
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(app_icon())
    return app
