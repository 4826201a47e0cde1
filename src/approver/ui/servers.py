"""The Servers window: each upstream's state, tools and last error, with Restart and Open log.

It shows how each server is reached (command or URL) but never an environment or header value:
a command whose ``${env:...}``/``${keyring:...}`` references were resolved is shown as written in
``servers.json``, and known secrets and token shapes are redacted from everything else.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from functools import cache
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from PySide6.QtCore import Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QColor, QDesktopServices, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from approver.audit.redact import Redactor
from approver.config.servers import ServerConfig, read_servers_data
from approver.errors import ConfigError
from approver.policy.confusables import find_lookalikes
from approver.service import Service
from approver.ui.pins_view import PinsPanel
from approver.ui.sign_in import SignInRunner, state_label
from approver.ui.text import plain_label, plain_tooltip
from approver.upstream.connection import UpstreamState, UpstreamStatus
from approver.visible import reveal_text

COLUMNS: Final = ("Server", "Transport", "State", "Tools", "Restarts", "Retry in", "Last error")
"""The table's column headers, in order."""

DISABLED: Final = "disabled"
"""The state shown for a server marked ``"disabled": true`` (it has no connection)."""

_TRANSPORT, _STATE, _ERROR = (COLUMNS.index(c) for c in ("Transport", "State", "Last error"))
_STATE_COLOURS: Final = {
    UpstreamState.READY.value: "#1f8a70",
    UpstreamState.STARTING.value: "#d68910",
    UpstreamState.RESTARTING.value: "#d68910",
    UpstreamState.FAILED.value: "#c0392b",
    state_label(UpstreamState.NEEDS_SIGN_IN): "#b9770e",
    UpstreamState.STOPPED.value: "#7a7f85",
    DISABLED: "#7a7f85",
}
_ERROR_CELL_CHARS: Final = 160
_SELECT_HINT: Final = "Select a server to see its full last error and its log file."

_EXAMPLE: Final = """{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/projects"]
    },
    "remote": {"type": "http", "url": "https://example.com/mcp"}
  }
}"""


@cache
def _dot(colour: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(colour))
    painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pixmap)


def _url_without_secrets(url: str) -> str:
    """``url`` without user info, query or fragment: the places credentials usually ride in."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    host = parts.netloc.rpartition("@")[2]
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    hidden = [what for what, value in (("user", "@" in parts.netloc), ("query", parts.query)) if value]
    return shown + (f" ({' and '.join(hidden)} hidden)" if hidden else "")


def describe_transport(config: ServerConfig, written: Mapping[str, Any] | None, redactor: Redactor) -> str:
    """How ``config`` is reached (command line or URL), without env values, headers or secrets.

    ``written`` is the server's entry as written in servers.json; it is used instead of the
    resolved values when references were expanded, so the references show, not their values.
    """
    source: Mapping[str, Any] = {"command": config.command, "args": config.args, "url": config.url}
    if config.expanded:
        if written is None:
            return f"{config.transport} (shown in servers.json: it uses ${{...}} references)"
        source = written
    if config.transport == "http":
        text = "http " + _url_without_secrets(str(source.get("url") or ""))
    else:
        text = shlex.join([str(source.get("command") or ""), *map(str, source.get("args") or ())])
    return redactor.redact_text(text)


class ServersWindow(QWidget):
    """A table of the upstream servers; select one for its full error and log file."""

    def __init__(
        self, service: Service, sign_in: SignInRunner | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("approver: Servers")
        self._service = service
        self._sign_in = sign_in
        self._sign_in_urls: dict[str, str] = {}
        """Authorization addresses no browser opened, shown until their sign-in ends."""
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
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self.refresh)
        self._build()
        self.refresh()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.summary = plain_label(wrap=True, selectable=True)
        self.summary.setObjectName("summary")
        layout.addWidget(self.summary)
        self.lookalikes = plain_label(wrap=True, selectable=True, name="lookalikes")
        self.lookalikes.setStyleSheet("QLabel { background: #fdecea; color: #8a1c1c; padding: 6px; }")
        self.lookalikes.hide()
        layout.addWidget(self.lookalikes)
        if not self._configs:
            self.summary.setText(self._empty_text())
            example = QPlainTextEdit(_EXAMPLE)
            example.setObjectName("example")
            example.setReadOnly(True)
            layout.addWidget(example)
        self.table = QTableWidget(len(self._configs), len(COLUMNS))
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
        self._cells: list[list[QTableWidgetItem]] = []
        for row, name in enumerate(self._configs):
            cells = [QTableWidgetItem() for _ in COLUMNS]
            cells[0].setText(name)
            cells[_TRANSPORT].setText(reveal_text(self._transports[name]))
            cells[_TRANSPORT].setToolTip(plain_tooltip(cells[_TRANSPORT].text()))
            for column, item in enumerate(cells):
                self.table.setItem(row, column, item)
            self._cells.append(cells)
        self.table.itemSelectionChanged.connect(self._show_selected)

        details = QWidget()
        box = QVBoxLayout(details)
        box.setContentsMargins(0, 0, 0, 0)
        self.detail = plain_label(_SELECT_HINT, reveal=False, wrap=True, selectable=True)
        self.detail.setObjectName("detail")
        self.error_box = QPlainTextEdit()
        self.error_box.setObjectName("error")
        self.error_box.setReadOnly(True)
        self.log_label = plain_label(wrap=True, selectable=True)
        self.log_label.setObjectName("log")
        buttons = QHBoxLayout()
        self.restart_button = QPushButton("Restart")
        self.restart_button.setObjectName("restart")
        self.restart_button.setToolTip(
            "Disconnect the selected server and connect again (a command is rerun)"
        )
        self.restart_button.clicked.connect(self._restart)
        self.open_log_button = QPushButton("Open log")
        self.open_log_button.setObjectName("open_log")
        self.open_log_button.setToolTip("Open the file the selected server's stderr goes to")
        self.open_log_button.clicked.connect(self._open_log)
        self.sign_in_button = QPushButton("Sign in…")
        self.sign_in_button.setObjectName("sign_in")
        self.sign_in_button.setToolTip("Sign in to the selected remote server in your browser")
        self.sign_in_button.clicked.connect(self._start_sign_in)
        if self._sign_in is not None:
            self._sign_in.waiting.connect(self._sign_in_waiting)
            self._sign_in.finished.connect(self._sign_in_finished)
        buttons.addWidget(self.restart_button)
        buttons.addWidget(self.open_log_button)
        buttons.addWidget(self.sign_in_button)
        buttons.addStretch()
        self.message = plain_label(wrap=True, selectable=True)
        self.message.setObjectName("message")
        for widget in (self.detail, self.error_box, self.log_label):
            box.addWidget(widget)
        box.addLayout(buttons)
        box.addWidget(self.message)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout.addWidget(splitter)
        splitter.setVisible(bool(self._configs))
        changed = QGroupBox("Changed tools (pinning)")
        box = QVBoxLayout(changed)
        self.pins = PinsPanel(self._service.pins)
        box.addWidget(self.pins)
        layout.addWidget(changed)
        self.resize(900, 520)
        self._show_selected()

    def _empty_text(self) -> str:
        file = self._service.paths.servers_file
        state = "does not exist yet" if self._service.servers.missing else "lists no servers"
        return (
            f"No upstream servers are configured: {file} {state}. Add your MCP servers to it in the "
            "mcpServers format (the same block as in Claude Desktop, Claude Code or Cursor), then "
            "restart approver. For example:"
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
            state_item.setIcon(_dot(_STATE_COLOURS.get(state, "#7a7f85")))
            state_item.setForeground(QColor(_STATE_COLOURS.get(state, "#7a7f85")))
            items[_ERROR].setToolTip(plain_tooltip(self._error_text(status)))
        if self._configs:
            tally = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
            self.summary.setText(
                f"{len(self._configs)} server(s) from {self._service.paths.servers_file}: {tally}"
            )
        self._show_lookalikes()
        self.pins.refresh()
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
        if upstream is None or config.transport != "stdio":
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
            self._say(f"{name} is disabled in servers.json; enable it there and restart approver.")
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
