"""How the Servers window describes a server: how it is reached, without secrets, and its state dot."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from functools import cache
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap

from approver.audit.redact import Redactor
from approver.config.servers import ServerConfig
from approver.ui.status import state_label
from approver.upstream.status import UpstreamState

DISABLED: Final = "disabled"
"""The state shown for a server marked ``"disabled": true`` (it has no connection)."""

STATE_COLOURS: Final = {
    UpstreamState.READY.value: "#1f8a70",
    UpstreamState.STARTING.value: "#d68910",
    UpstreamState.RESTARTING.value: "#d68910",
    UpstreamState.FAILED.value: "#c0392b",
    state_label(UpstreamState.NEEDS_SIGN_IN): "#b9770e",
    UpstreamState.STOPPED.value: "#7a7f85",
    DISABLED: "#7a7f85",
}
"""The colour of each state's dot and word."""

EXAMPLE: Final = """{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/projects"]
    },
    "remote": {"type": "http", "url": "https://example.com/mcp"}
  }
}"""


@cache
def dot(colour: str) -> QIcon:
    """A state dot, the same in a selected row: Qt would tint a selected icon into the highlight."""
    pixmap = QPixmap(14, 14)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("white"), 1.5))  # a ring keeps it apart from any row colour
    painter.setBrush(QColor(colour))
    painter.drawEllipse(QRectF(1.5, 1.5, 11, 11))
    painter.end()
    icon = QIcon()
    for mode in (QIcon.Mode.Normal, QIcon.Mode.Selected, QIcon.Mode.Active):
        icon.addPixmap(pixmap, mode)
    return icon


def url_without_secrets(url: str) -> str:
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
        text = "http " + url_without_secrets(str(source.get("url") or ""))
    else:
        text = shlex.join([str(source.get("command") or ""), *map(str, source.get("args") or ())])
    return redactor.redact_text(text)
