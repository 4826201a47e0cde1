"""What the desktop app says when it cannot start: the error with "Open the file", and a port in use.

Both boxes are shown after the event loop has ended (or before it starts), so running them
modally disturbs no task. Their text is plain: a config error quotes the user's own file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from approver.visible import reveal_text

ERROR_TITLE: Final = "approver could not start"
PORT_TITLE: Final = "approver: the port is in use"
OPEN_FILE: Final = "Open the file"


def error_box(text: str, file: Path | None = None) -> QMessageBox:
    """The start-up error box; with ``file`` (the config file at fault) it offers to open it."""
    box = QMessageBox(QMessageBox.Icon.Critical, ERROR_TITLE, reveal_text(text, keep_newlines=True))
    box.setTextFormat(Qt.TextFormat.PlainText)
    if file is not None:
        box.addButton(OPEN_FILE, QMessageBox.ButtonRole.ActionRole)
        box.setInformativeText(
            f"Fix {file.name} and start approver again; the message names the place in the file."
        )
    box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Close))
    return box


def show_error(text: str, file: Path | None = None) -> None:
    """Show the start-up error; open ``file`` in the desktop's editor when the user asks."""
    box = error_box(text, file)
    box.exec()
    clicked = box.clickedButton()
    if file is not None and clicked is not None and clicked.text() == OPEN_FILE:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(file)))


def port_text(port: int, holder: str, other: int) -> str:
    """What the port box says: who holds the port, and what approver offers to do."""
    return (
        f"Port {port} on 127.0.0.1, where approver's gateway listens, is used by {holder}.\n\n"
        f"approver can use port {other} instead and remember it for the next start. Clients set up "
        "with `approver connect` (Install… in Connect a client) follow the new port by themselves; "
        "clients given a URL need the new one from Connect a client."
    )


def port_box(port: int, holder: str, other: int) -> QMessageBox:
    """The box offering another port; its accept button is the one named "Use port N"."""
    box = QMessageBox(QMessageBox.Icon.Warning, PORT_TITLE, port_text(port, holder, other))
    box.setTextFormat(Qt.TextFormat.PlainText)
    use = box.addButton(f"Use port {other}", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(use)
    return box


def ask_port(port: int, holder: str, other: int) -> bool:
    """Ask whether to move to port ``other``; True when the user agrees."""
    box = port_box(port, holder, other)
    box.exec()
    return box.buttonRole(box.clickedButton()) is QMessageBox.ButtonRole.AcceptRole
