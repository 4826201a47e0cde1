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
from PySide6.QtWidgets import QApplication, QStyle, QSystemTrayIcon, QWidget

from approver.approval.broker import ApprovalRequest, Resolution
from approver.approval.headline import headline
from approver.approval.presentation import LOOKS
from approver.audit.log import DecisionRecord
from approver.clients.setup import Installer, bridge_data_dir
from approver.config.autostart import Autostart, AutostartError, default_command
from approver.config.secrets import SecretStore
from approver.events import Recorded, ServersReloaded
from approver.policy.wording import reason_in_words, rule_in_words
from approver.service import Service
from approver.ui.approval import ApprovalController
from approver.ui.audit_window import AuditWindow
from approver.ui.connect import ConnectWindow
from approver.ui.controls import Controls, WaitingMenu
from approver.ui.first_launch import FirstLaunchPanel, found_clients
from approver.ui.icons import TrayState, app_icon, icon
from approver.ui.main_window import MainWindow
from approver.ui.missed import MissedCalls
from approver.ui.notify import Notifier
from approver.ui.placement import keep_inside, place
from approver.ui.policy_view import PolicyWindow
from approver.ui.risk_band import risk_icon
from approver.ui.rugpull import RugPullWatch
from approver.ui.rules_window import RulesWindow
from approver.ui.servers import ServersWindow
from approver.ui.sign_in import SignInRunner
from approver.ui.signals import CoreSignals
from approver.ui.status import status_details, status_headline, tray_state
from approver.ui.text import plain_tooltip
from approver.upstream.status import UpstreamState
from approver.visible import reveal_text

logger = logging.getLogger(__name__)


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
            self.signals,
            service.broker,
            service,
            policy_path=service.paths.policy_file,
            arm_delay_ms=arm_delay_ms,
            scoped_rules=True,
            parent=self,
        )
        self.controls = Controls(self)
        self.first_launch = FirstLaunchPanel(service.paths.servers_file, self.bridge_command)
        self._first_launch_shown: bool | None = None
        self.window = MainWindow(self.controls, tray_available=tray_available, first_launch=self.first_launch)
        self.menu: WaitingMenu = self.controls.build_menu()
        self.tray: QSystemTrayIcon | None = None
        if tray_available:
            self.tray = QSystemTrayIcon(app_icon(), self)
            self.tray.setContextMenu(self.menu)
            self.tray.activated.connect(self._tray_activated)
            self.tray.show()
        self.notifier = Notifier(self.tray, parent=self)
        warning = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self.missed = MissedCalls(lambda title, body: self.notifier.notify("missed", title, body, warning))
        self.window.add_panel(self.missed)
        self.rug_pulls = RugPullWatch(
            service.pins, lambda title, body: self.notifier.notify("rug-pull", title, body, warning), self
        )
        self._notice_title = ""
        """The title of the notification the main window's notice line shows."""
        self.windows: dict[str, QWidget] = {}
        self._reloads: set[asyncio.Future[ServersReloaded]] = set()
        self.sign_in = SignInRunner(service, parent=self)
        self._told_sign_in: set[str] = set()
        """Servers whose "Sign in needed" was notified, so it is said once per episode."""
        self._audit_error: str | None = service.recorder.last_error
        self._wire()
        self.refresh_state()
        for server in service.upstreams:
            self._tell_sign_in(server)
        if self.tray is None or not service.servers.servers:
            # Without a tray the window is the way in; without servers it shows the next step.
            self.show_window()

    # -- wiring -----------------------------------------------------------------------------------

    def _wire(self) -> None:
        controls, signals = self.controls, self.signals
        controls.show_window.triggered.connect(self.show_window)
        controls.pause.setChecked(self.service.paused)
        controls.pause.toggled.connect(self._set_paused)
        controls.audit.triggered.connect(self.open_audit)
        controls.servers.triggered.connect(self.open_servers)
        controls.policy.triggered.connect(self.open_policy)
        controls.rules.triggered.connect(self.open_rules)
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
        signals.servers_reloaded.connect(self._servers_reloaded)
        signals.paused_changed.connect(self._paused_changed)
        signals.tool_changed.connect(self.rug_pulls.tool_changed)
        self.rug_pulls.changed.connect(self.refresh_state)
        self.rug_pulls.review.connect(self.review_tool)
        self.missed.open_row.connect(self.show_call)
        self.notifier.shown.connect(self._notified)
        self.notifier.activated.connect(self.open_target)
        self.window.notice_activated.connect(self.open_target)
        self.first_launch.import_requested.connect(self.import_from)
        self.first_launch.add_requested.connect(lambda: self.open_servers().add_server())

    def _notified(self, title: str, body: str) -> None:
        self._notice_title = title
        self.window.show_notice(title, body, self.notifier.target)
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
        return tray_state(self.service, self._audit_error, self.rug_pulls.tools)

    def refresh_state(self) -> None:
        """Redraw the tray icon, tooltip, menu and main window from the service's state."""
        state = self.state()
        empty = not self.service.servers.servers
        if empty != self._first_launch_shown:
            self._first_launch_shown = empty
            if empty:
                self.first_launch.set_found(found_clients())
            self.first_launch.setVisible(empty)
            self.window.fit_contents()
        waiting = self.service.broker.pending()
        if self.tray is not None:
            self.tray.setIcon(icon(state))
            self.tray.setToolTip(plain_tooltip(state.tooltip()))
        self.menu.set_waiting(waiting)
        self.window.set_waiting(waiting)
        self.window.setWindowIcon(icon(state))
        self.window.set_state(state, status_headline(state), status_details(self.service, self._audit_error))

    # -- core events -------------------------------------------------------------------------------

    def _approval_arrived(self, request: ApprovalRequest) -> None:
        self.refresh_state()
        look = LOOKS[request.risk.level]
        self.notifier.notify(
            "waiting",
            _waiting_title(request),
            reveal_text(
                f"{headline(request).sentence()} ({request.risk.risk_class.value}, {look.word.lower()})."
            ),
            risk_icon(request.risk.level),
            target=request.id,
            severity=request.risk.level.rank,
        )

    def _approval_ended(self, request: ApprovalRequest, resolution: Resolution) -> None:
        self.refresh_state()
        if self._notice_title == _waiting_title(request) and not any(
            _waiting_title(waiting) == self._notice_title for waiting in self.service.broker.pending()
        ):
            # The notice asked about a call that is over: it must not keep asking.
            self._notice_title = ""
            self.window.clear_notice()
        self.missed.ended(request, resolution)

    def _recorded(self, event: Recorded) -> None:
        self.missed.recorded(event)
        if self._audit_error is not None:
            self._audit_error = None
            self.refresh_state()
        record = event.record
        if isinstance(record, DecisionRecord) and record.decision == "deny" and record.decided_by == "policy":
            # The rule in words here; its exact path is in the call's audit row, one click away.
            reason = reason_in_words(record.reason, record.rule)
            self.notifier.notify(
                "denied",
                reveal_text(f"Denied by policy: {record.tool}"),
                reveal_text(
                    f"{record.client}: {reason} ({rule_in_words(record.rule)})"
                    if reason
                    else f"{record.client}: denied by {rule_in_words(record.rule)}"
                ),
                target=event.row_id,
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
        if what == "tools":
            self.rug_pulls.refresh()
        servers = self.windows.get("servers")
        if isinstance(servers, ServersWindow):
            servers.refresh()

    def _servers_reloaded(self, event: ServersReloaded) -> None:
        self.refresh_state()
        servers = self.windows.get("servers")
        if isinstance(servers, ServersWindow):
            servers.reload()
        if event.error is not None:
            self.notifier.notify("servers", "servers.json was not applied", reveal_text(event.error))

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
        servers = self.windows.get("servers")
        if isinstance(servers, ServersWindow):
            servers.refresh()  # the actions in its tool list follow the policy
        policy = self.windows.get("policy")
        if isinstance(policy, PolicyWindow):
            policy.refresh()
        rules = self.windows.get("rules")
        if isinstance(rules, RulesWindow):
            rules.refresh()

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

    def open_target(self, target: object) -> None:
        """Open what a notification is about: a call's audit row (an int) or a waiting call (a str)."""
        if isinstance(target, int):
            self.show_call(target)
        elif isinstance(target, str) and any(r.id == target for r in self.service.broker.pending()):
            self.approvals.show_request(target)

    def show_call(self, call_id: int) -> None:
        """Open the audit log at the call whose decision row is ``call_id`` (for notifications, the
        approval dialog and other lists of calls)."""
        self.open_audit().open_call(call_id)

    def import_from(self, client: str) -> None:
        """Open Connect a client with ``client`` picked and its import shown, ready to confirm."""
        panel = self.open_connect().install_panel
        if panel is not None:
            panel.client_box.setCurrentIndex(panel.client_box.findData(client))
            panel.preview("import")

    def show_window(self) -> None:
        """Show and raise the main window (inside the screen)."""
        if not self.window.isVisible():
            place(self.window, self.window.size())
        _present(self.window)

    def _open(self, key: str, create: Callable[[], QWidget]) -> QWidget:
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = create()
            window.setWindowIcon(app_icon())
            place(window, window.size())
        else:
            keep_inside(window)
        _present(window)
        return window

    def open_audit(self) -> AuditWindow:
        """Open (or raise) the audit log window."""
        paths = self.service.paths
        window = self._open("audit", lambda: AuditWindow(paths.audit_db, settings_file=paths.settings_file))
        assert isinstance(window, AuditWindow)
        return window

    def open_servers(self) -> ServersWindow:
        """Open (or raise) the servers window."""
        created = "servers" not in self.windows
        window = self._open(
            "servers", lambda: ServersWindow(self.service, self.sign_in, on_written=self.apply_servers)
        )
        assert isinstance(window, ServersWindow)
        if created:
            window.pins.accepted.connect(lambda server, tool: self.rug_pulls.refresh())
        window.refresh()
        return window

    def review_tool(self, server: str, tool: str) -> ServersWindow:
        """Open the Servers window on the diff of a changed tool."""
        window = self.open_servers()
        window.pins.select(server, tool)
        return window

    def open_policy(self) -> PolicyWindow:
        """Open (or raise) the policy window."""
        window = self._open("policy", lambda: PolicyWindow(self.service))
        assert isinstance(window, PolicyWindow)
        window.refresh()
        return window

    def open_rules(self) -> RulesWindow:
        """Open (or raise) the rules window."""
        window = self._open("rules", lambda: RulesWindow(self.service))
        assert isinstance(window, RulesWindow)
        window.refresh()
        return window

    def open_connect(self) -> ConnectWindow:
        """Open (or raise) the connect-a-client window."""
        service = self.service
        installer = Installer(
            service.paths.servers_file,
            tuple(self.bridge_command),
            bridge_data_dir(service.paths),
            secrets=SecretStore(service.paths),
        )

        def create() -> ConnectWindow:
            window = ConnectWindow(
                service.tokens,
                service.port,
                self.bridge_command,
                installer=installer,
                patience=service.patience,
            )
            if window.install_panel is not None:
                window.install_panel.imported.connect(self.apply_servers)
            return window

        window = self._open("connect", create)
        assert isinstance(window, ConnectWindow)
        return window

    def apply_servers(self) -> None:
        """Apply servers.json now, after a window wrote it (the watcher would within a second)."""
        task = asyncio.ensure_future(self.service.reload_servers())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

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


def _waiting_title(request: ApprovalRequest) -> str:
    return reveal_text(f"{LOOKS[request.risk.level].word} risk: approve {request.summary}?")


def _present(window: QWidget) -> None:
    if not window.property("approver_placed"):
        # Placed by us the first time: a window manager may otherwise put it partly off-screen.
        place(window, window.size())
        window.setProperty("approver_placed", True)
    window.show()
    keep_inside(window)
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
