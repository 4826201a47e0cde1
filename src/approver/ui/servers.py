"""The Servers window: each upstream's state, its tools and last error; add, enable, disable, remove.

It shows how each server is reached (command or URL) but never an environment or header value:
a command whose ``${env:...}``/``${keyring:...}`` references were resolved is shown as written in
``servers.json``, and known secrets and token shapes are redacted from everything else. Add,
Enable/Disable and Remove show the diff of ``servers.json`` before writing it
(:mod:`approver.ui.server_edit`); the running gateway applies the file by itself, and the window
follows (connect :meth:`ServersWindow.reload` to ``CoreSignals.servers_reloaded``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from approver.audit.redact import Redactor
from approver.config.servers import ServerConfig, read_servers_data
from approver.config.servers_edit import ServersEdit, plan_remove, plan_set_disabled
from approver.errors import ApproverError, ConfigError
from approver.gateway.tool_rows import tool_rows
from approver.policy.confusables import find_lookalikes
from approver.service import Service
from approver.ui.pins_view import PinsPanel
from approver.ui.placement import place
from approver.ui.server_edit import ServerEditDialog
from approver.ui.servers_text import DISABLED, EXAMPLE, STATE_COLOURS, describe_transport, dot
from approver.ui.servers_tools import ServerToolsView
from approver.ui.sign_in import SignInRunner
from approver.ui.status import state_label
from approver.ui.text import plain_label, plain_tooltip
from approver.upstream.status import UpstreamState, UpstreamStatus
from approver.visible import reveal_text

COLUMNS: Final = ("Server", "Transport", "State", "Tools", "Restarts", "Retry in", "Last error")
"""The table's column headers, in order."""


_TRANSPORT, _STATE, _ERROR = (COLUMNS.index(c) for c in ("Transport", "State", "Last error"))
_ERROR_CELL_CHARS: Final = 160
_SELECT_HINT: Final = "Select a server to see its full last error, its tools and its log file."
WINDOW_TITLE: Final = "Servers"
"""The title (the desktop adds the application's name)."""


class ServersWindow(QWidget):
    """A table of the upstream servers; select one for its details, its tools and its log file."""

    def __init__(
        self,
        service: Service,
        sign_in: SignInRunner | None = None,
        parent: QWidget | None = None,
        *,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        """``sign_in`` runs sign-ins (Sign in…); ``on_written`` runs after this window wrote
        servers.json (to apply it at once)."""
        super().__init__(parent)
        self.setWindowTitle(WINDOW_TITLE)
        self._service = service
        self._sign_in = sign_in
        self._sign_in_urls: dict[str, str] = {}
        """Authorization addresses no browser opened, shown until their sign-in ends."""
        self._on_written = on_written
        self._configs: dict[str, ServerConfig] = {}
        self._transports: dict[str, str] = {}
        self._cells: list[list[QTableWidgetItem]] = []
        self._redactor = Redactor()
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self.refresh)
        self._build()
        self.reload()
        place(self, QSize(1000, 680))

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.summary = plain_label(wrap=True, selectable=True, name="summary")
        layout.addWidget(self.summary)
        self.problem = plain_label(wrap=True, selectable=True, name="servers_problem")
        self.problem.setStyleSheet("QLabel { background: #fdecea; color: #8a1c1c; padding: 6px; }")
        self.problem.hide()
        layout.addWidget(self.problem)
        self.lookalikes = plain_label(wrap=True, selectable=True, name="lookalikes")
        self.lookalikes.setStyleSheet("QLabel { background: #fdecea; color: #8a1c1c; padding: 6px; }")
        self.lookalikes.hide()
        layout.addWidget(self.lookalikes)
        self.example = QPlainTextEdit(EXAMPLE)
        self.example.setObjectName("example")
        self.example.setReadOnly(True)
        layout.addWidget(self.example)
        layout.addLayout(self._toolbar())

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("servers")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_TRANSPORT, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(_TRANSPORT, 300)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._show_selected)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("server_tabs")
        self.tabs.addTab(self._details(), "Details")
        self.tools = ServerToolsView()
        self.tabs.addTab(self.tools, "Tools")
        self.pins = PinsPanel(self._service.pins)
        self.tabs.addTab(self.pins, "Changed tools")
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout.addWidget(self.splitter, 1)
        self.message = plain_label(wrap=True, selectable=True, name="message")
        layout.addWidget(self.message)

    def _toolbar(self) -> QHBoxLayout:
        row = QHBoxLayout()

        def button(text: str, name: str, tip: str, slot: Callable[[], None]) -> QPushButton:
            made = QPushButton(text)
            made.setObjectName(name)
            made.setToolTip(tip)
            made.clicked.connect(slot)
            row.addWidget(made)
            return made

        self.add_button = button(
            "Add server…", "add", "Add a server to servers.json (the change is shown first)", self.add_server
        )
        self.enable_button = button(
            "Disable…", "enable", "Stop the selected server and keep it in servers.json", self._toggle
        )
        self.remove_button = button(
            "Remove…", "remove", "Remove the selected server from servers.json", self._remove
        )
        row.addSpacing(16)
        self.restart_button = button(
            "Restart",
            "restart",
            "Disconnect the selected server and connect again (a command is rerun)",
            self._restart,
        )
        self.open_log_button = button(
            "Open log", "open_log", "Open the file the selected server's stderr goes to", self._open_log
        )
        self.sign_in_button = button(
            "Sign in…",
            "sign_in",
            "Sign in to the selected remote server in your browser",
            self._start_sign_in,
        )
        if self._sign_in is not None:
            self._sign_in.waiting.connect(self._sign_in_waiting)
            self._sign_in.finished.connect(self._sign_in_finished)
        row.addStretch(1)
        button(
            "Open servers.json",
            "open_file",
            "Edit servers.json yourself; approver applies a valid edit at once",
            self._open_file,
        )
        return row

    def _details(self) -> QWidget:
        details = QWidget()
        box = QVBoxLayout(details)
        self.detail = plain_label(_SELECT_HINT, reveal=False, wrap=True, selectable=True)
        self.detail.setObjectName("detail")
        self.error_box = QPlainTextEdit()
        self.error_box.setObjectName("error")
        self.error_box.setReadOnly(True)
        self.log_label = plain_label(wrap=True, selectable=True)
        self.log_label.setObjectName("log")
        for widget in (self.detail, self.error_box, self.log_label):
            box.addWidget(widget)
        return details

    @Slot()
    def reload(self, _event: object = None) -> None:
        """Read the server list again (after servers.json was applied) and redraw, keeping the selection."""
        selected = self.selected_server() if self._cells else None
        service = self._service
        self._configs = {config.name: config for config in service.servers.servers}
        hidden = {v for c in self._configs.values() for v in (*c.env.values(), *c.headers.values())}
        self._redactor = Redactor(service.servers.secrets | hidden)
        try:
            written: Mapping[str, Any] = read_servers_data(service.paths.servers_file)["mcpServers"]
        except (ConfigError, OSError):
            written = {}
        self._transports = {
            name: describe_transport(config, written.get(name), self._redactor)
            for name, config in self._configs.items()
        }
        self.table.blockSignals(True)
        self.table.setRowCount(len(self._configs))
        self._cells = []
        for row, name in enumerate(self._configs):
            cells = [QTableWidgetItem() for _ in COLUMNS]
            cells[0].setText(name)
            cells[_TRANSPORT].setText(reveal_text(self._transports[name]))
            cells[_TRANSPORT].setToolTip(plain_tooltip(cells[_TRANSPORT].text()))
            for column, item in enumerate(cells):
                self.table.setItem(row, column, item)
            self._cells.append(cells)
        self.table.blockSignals(False)
        empty = not self._configs
        self.example.setVisible(empty)
        self.splitter.setVisible(not empty)
        error = service.servers_reload.error
        self.problem.setVisible(error is not None)
        if error is not None:
            self.problem.setText(
                reveal_text(
                    f"servers.json has an error, so the servers below are the last good ones: {error}"
                )
            )
        if selected in self._configs:
            self.select_server(selected)
        self.refresh()

    def _empty_text(self) -> str:
        file = self._service.paths.servers_file
        state = "does not exist yet" if self._service.servers.missing else "lists no servers"
        return (
            f"No upstream servers are configured: {file} {state}. Add server… adds one; or write your "
            "MCP servers into that file in the mcpServers format (the same block as in Claude Desktop, "
            "Claude Code or Cursor), and approver starts them as soon as you save. For example:"
        )

    def _status(self, name: str) -> UpstreamStatus | None:
        upstream = self._service.upstreams.get(name)
        return upstream.status() if upstream is not None else None

    @Slot()
    def refresh(self) -> None:
        """Read every server's status again (connect to ``CoreSignals.upstream_changed``)."""
        counts: dict[str, int] = {}
        waiting = False
        for row, name in enumerate(self._configs):
            status = self._status(name)
            state = state_label(status.state) if status is not None else DISABLED
            counts[state] = counts.get(state, 0) + 1
            retry = ""
            if status is not None and status.retry_in is not None:
                waiting = True
                retry = f"{math.ceil(status.retry_in)} s"
            error = self._error_text(status).replace("\r\n", " ").replace("\n", " ")
            if len(error) > _ERROR_CELL_CHARS:
                error = error[: _ERROR_CELL_CHARS - 1] + "…"
            cells = (
                state,
                str(status.tools) if status is not None else "",
                str(status.restarts) if status is not None else "",
                retry,
                reveal_text(error),
            )
            items = self._cells[row]
            for column, text in enumerate(cells, start=2):
                items[column].setText(text)
            state_item = items[_STATE]
            state_item.setIcon(dot(STATE_COLOURS.get(state, "#7a7f85")))
            state_item.setForeground(QColor(STATE_COLOURS.get(state, "#7a7f85")))
            items[_ERROR].setToolTip(plain_tooltip(self._error_text(status)))
        if self._configs:
            tally = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
            self.summary.setText(
                f"{len(self._configs)} server(s) from {self._service.paths.servers_file}: {tally}"
            )
        else:
            self.summary.setText(self._empty_text())
        self._show_lookalikes()
        self.pins.refresh()
        changed = self.pins.changed_count
        self.tabs.setTabText(2, f"Changed tools ({changed})" if changed else "Changed tools")
        if waiting and not self._countdown.isActive():
            self._countdown.start()
        elif not waiting:
            self._countdown.stop()
        self._show_selected()

    def _show_lookalikes(self) -> None:
        names: dict[str, list[str]] = {}
        for entry in self._service.catalog.tools():
            names.setdefault(entry.ref.server, []).append(entry.ref.tool)
        groups = find_lookalikes(names)
        self.lookalikes.setVisible(bool(groups))
        if groups:
            lines = [group.describe() for group in groups]
            self.lookalikes.setText(
                "Tools with look-alike names (one may be impersonating another; check which server "
                "you mean before approving):\n" + "\n".join(lines)
            )

    def _error_text(self, status: UpstreamStatus | None) -> str:
        return self._redactor.redact_text(status.error) if status is not None and status.error else ""

    def selected_server(self) -> str | None:
        """The name of the selected server, or None."""
        rows = self.table.selectionModel().selectedRows()
        return list(self._configs)[rows[0].row()] if rows else None

    def select_server(self, name: str) -> None:
        """Select ``name``'s row (KeyError for an unknown name)."""
        names = list(self._configs)
        if name not in names:
            raise KeyError(name)
        self.table.selectRow(names.index(name))

    def _show_selected(self) -> None:
        name = self.selected_server()
        config = self._configs.get(name) if name is not None else None
        upstream = self._service.upstreams.get(name) if name is not None else None
        self.restart_button.setEnabled(upstream is not None)
        self.open_log_button.setEnabled(
            upstream is not None and config is not None and config.transport == "stdio"
        )
        self.enable_button.setEnabled(config is not None)
        self.remove_button.setEnabled(config is not None)
        self.enable_button.setText("Enable…" if config is not None and config.disabled else "Disable…")
        rows = tool_rows(self._service.catalog, self._service.policy, name) if name is not None else []
        self.tools.show_rows(rows)
        self.tabs.setTabText(1, f"Tools ({len(rows)})" if name is not None else "Tools")
        signs_in = upstream is not None and config is not None and config.signs_in
        self.sign_in_button.setVisible(signs_in and self._sign_in is not None)
        self.sign_in_button.setEnabled(
            signs_in and self._sign_in is not None and name is not None and not self._sign_in.running(name)
        )
        if name is None or config is None:
            self.detail.setText(_SELECT_HINT)
            self.error_box.setPlainText("")
            self.log_label.setText("")
            return
        lines = [f"{name}: {self._transports[name]}"]
        if config.description:
            lines.append(self._redactor.redact_text(config.description))
        if config.env:
            lines.append(f"Environment variables: {', '.join(config.env)} (values hidden)")
        if config.headers:
            lines.append(f"HTTP headers: {', '.join(config.headers)} (values hidden)")
        if config.cwd:
            lines.append(f"Working directory: {self._redactor.redact_text(config.cwd)}")
        catalog = self._service.catalog
        for note in (catalog.errors.get(name), catalog.warnings.get(name)):
            if note:  # a name clash, duplicated or renamed tools: what the server listed oddly
                lines.append(self._redactor.redact_text(note))
        self.detail.setText(reveal_text("\n".join(lines), keep_newlines=True))
        status = self._status(name)
        if status is None:
            error = f'{name} is marked "disabled": true in servers.json, so approver does not start it.'
        else:
            error = self._error_text(status) or f"No error: {name} is {state_label(status.state)}."
            if status.state is UpstreamState.NEEDS_SIGN_IN:
                error = f"Sign in needed: {error}. Press Sign in… to sign in with your browser."
            if name in self._sign_in_urls:
                error = f"Open this address in a browser to sign in to {name}:\n{self._sign_in_urls[name]}"
        self.error_box.setPlainText(reveal_text(error, keep_newlines=True))
        if upstream is None and config.disabled:
            self.log_label.setText("")
        elif upstream is None or config.transport != "stdio":
            self.log_label.setText("An HTTP server has no log file here; connection errors show above.")
        else:
            self.log_label.setText(f"Its stderr goes to {upstream.log_file}")

    def _say(self, text: str) -> None:
        self.message.setText(text)

    @Slot()
    def _restart(self) -> None:
        name = self.selected_server()
        if name is None:
            return
        try:
            self._service.restart_upstream(name)
        except KeyError:
            self._say(f"{name} is disabled in servers.json: Enable… starts it.")
            return
        self._say(f"Restarting {name}: it disconnects and connects again; the table follows its state.")
        self.refresh()

    @Slot()
    def _start_sign_in(self) -> None:
        name = self.selected_server()
        if name is None or self._sign_in is None:
            return
        self._sign_in.start(name)
        self._say(f"Signing in to {name}: opening your browser…")
        self._show_selected()

    def _sign_in_waiting(self, name: str, url: str, opened: bool) -> None:
        if opened:
            self._say(f"Finish signing in to {name} in your browser; approver waits for it.")
            return
        # The address goes in the wrapping text box: as a label it would widen the window past the screen.
        self._sign_in_urls[name] = url
        self._say(f"No browser opened: open the address shown above in a browser to sign in to {name}.")
        self._show_selected()

    def _sign_in_finished(self, name: str, ok: bool, message: str) -> None:
        self._sign_in_urls.pop(name, None)
        self._say(self._redactor.redact_text(message))
        self.refresh()

    @Slot()
    def _open_log(self) -> None:
        name = self.selected_server()
        upstream = self._service.upstreams.get(name) if name is not None else None
        if upstream is None:
            return
        path = upstream.log_file
        if not path.exists():
            self._say(f"There is no log file at {path} yet: it is created when {name} is started.")
        elif QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self._say(f"Opened {path}.")
        else:
            self._say(f"Could not open the log with your desktop's default application; open {path} by hand.")

    # -- editing servers.json ----------------------------------------------------------------

    def _edit(self, edit: ServersEdit | None) -> ServerEditDialog:
        dialog = ServerEditDialog(self._service.paths.servers_file, edit, self)
        dialog.written.connect(self._written)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _written(self, what: str) -> None:
        self._say(reveal_text(what))
        if self._on_written is not None:
            self._on_written()

    @Slot()
    def add_server(self) -> None:
        """Open the Add a server dialog."""
        self._edit(None)

    def _planned(self, plan: Callable[[], ServersEdit]) -> None:
        try:
            edit = plan()
        except ApproverError as exc:
            self._say(reveal_text(str(exc)))
            return
        self._edit(edit)

    @Slot()
    def _toggle(self) -> None:
        name = self.selected_server()
        config = self._configs.get(name) if name is not None else None
        if name is not None and config is not None:
            file = self._service.paths.servers_file
            self._planned(lambda: plan_set_disabled(file, name, not config.disabled))

    @Slot()
    def _remove(self) -> None:
        name = self.selected_server()
        if name is not None:
            file = self._service.paths.servers_file
            self._planned(lambda: plan_remove(file, name))

    @Slot()
    def _open_file(self) -> None:
        path = self._service.paths.servers_file
        if not path.exists():
            self._say(f"There is no {path} yet: Add server… creates it.")
        elif QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self._say(f"Opened {path}; approver applies a valid edit as soon as you save it.")
        else:
            self._say(f"Could not open {path} with your desktop's default application; open it by hand.")
