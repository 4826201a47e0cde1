"""One desktop approver per data directory: a second launch shows the first instead of failing.

The first instance listens on a local socket (a Unix socket readable only by this user) named
after the data directory; a second instance connects, asks it to show itself, and exits with a
message. The only command understood is ``show``: nothing sent here can approve anything.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

_SHOW = b"show\n"
_SHOWN = b"shown\n"


def server_name(data_dir: Path) -> str:
    """The local socket name for ``data_dir`` (stable, per user)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    digest = hashlib.sha256(f"{uid}:{data_dir.resolve()}".encode()).hexdigest()[:16]
    return f"approver-{digest}"


def ask_running_to_show(data_dir: Path, timeout_ms: int = 2000) -> bool:
    """Ask an already running instance to show itself; True when one answered."""
    socket = QLocalSocket()
    socket.connectToServer(server_name(data_dir))
    if not socket.waitForConnected(timeout_ms):
        return False
    socket.write(_SHOW)
    socket.waitForBytesWritten(timeout_ms)
    answered = socket.waitForReadyRead(timeout_ms) and bytes(socket.readAll().data()).startswith(_SHOWN)
    socket.disconnectFromServer()
    return answered


class InstanceServer(QObject):
    """Listens for later launches; emits :attr:`show_requested` when one asks."""

    show_requested = Signal()

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        self.name = server_name(data_dir)

    def listen(self) -> bool:
        """Start listening; a stale socket left by a crashed instance is removed first."""
        QLocalServer.removeServer(self.name)
        return self._server.listen(self.name)

    def close(self) -> None:
        """Stop listening (on quit)."""
        self._server.close()

    def _accept(self) -> None:
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)

    def _read(self, socket: QLocalSocket) -> None:
        data = bytes(socket.readAll().data())
        if data.startswith(_SHOW):
            socket.write(_SHOWN)
            socket.flush()
            self.show_requested.emit()
        socket.disconnectFromServer()
