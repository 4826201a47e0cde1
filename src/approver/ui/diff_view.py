"""Definition changes drawn in colour: a unified diff by line, and old and new side by side by word.

Used by the approval dialog (a quarantined tool's diff) and the Servers window (accepting a new
definition). Text goes in through ``QTextCursor.insertText`` with a character format, never as
HTML, and hidden characters are revealed first.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QGridLayout, QLabel, QPlainTextEdit, QWidget

from approver.policy.pin_diff import FieldChange
from approver.ui.text import plain_label, plain_view
from approver.visible import Revealed, reveal

REMOVED = "#fde0dc"
ADDED = "#dff5e1"
REMOVED_WORD = "#f4a29a"
ADDED_WORD = "#8fd99a"


def _format(background: str | None) -> QTextCharFormat:
    format_ = QTextCharFormat()
    if background is not None:
        format_.setBackground(QColor(background))
    return format_


def show_unified_diff(view: QPlainTextEdit, diff: str) -> Revealed:
    """Show a unified diff in ``view`` with removed lines red and added lines green."""
    shown = reveal(diff, keep_newlines=True)
    view.clear()
    cursor = QTextCursor(view.document())
    for number, line in enumerate(shown.text.split("\n")):
        if number:
            cursor.insertText("\n")
        colour = None
        if line.startswith("-") and not line.startswith("---"):
            colour = REMOVED
        elif line.startswith("+") and not line.startswith("+++"):
            colour = ADDED
        cursor.insertText(line, _format(colour))
    view.moveCursor(QTextCursor.MoveOperation.Start)
    return shown


def _side(view: QPlainTextEdit, pieces: Sequence[tuple[str, bool]], line: str | None, word: str) -> None:
    cursor = QTextCursor(view.document())
    for text, changed in pieces:
        cursor.insertText(reveal(text, keep_newlines=True).text, _format(word if changed else line))
    view.moveCursor(QTextCursor.MoveOperation.Start)


class SideBySideDiff(QWidget):
    """One row per changed field (description, input schema, annotations...): pinned | now, by word."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("side_by_side")
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self.views: list[tuple[QLabel, QPlainTextEdit, QPlainTextEdit]] = []

    def show_changes(self, changes: Sequence[FieldChange]) -> None:
        """Replace the rows with ``changes``."""
        while self._grid.count():
            taken = self._grid.takeAt(0)
            widget = taken.widget() if taken is not None else None
            if widget is not None:
                widget.hide()
                widget.deleteLater()
        self.views = []
        if not changes:
            return
        self._grid.addWidget(plain_label("Pinned (trusted)", reveal=False), 0, 1)
        self._grid.addWidget(plain_label("Now (changed)", reveal=False), 0, 2)
        for row, change in enumerate(changes, start=1):
            name = plain_label(change.field + ":", name=f"field:{change.field}")
            old = plain_view(monospace=True)
            new = plain_view(monospace=True)
            old.setObjectName(f"old:{change.field}")
            new.setObjectName(f"new:{change.field}")
            for view in (old, new):
                view.setMinimumHeight(60)
                view.setMaximumHeight(180)
                view.clear()
            _side(old, change.old_pieces, REMOVED, REMOVED_WORD)
            _side(new, change.new_pieces, ADDED, ADDED_WORD)
            self._grid.addWidget(name, row, 0)
            self._grid.addWidget(old, row, 1)
            self._grid.addWidget(new, row, 2)
            self.views.append((name, old, new))
        self._grid.setColumnStretch(1, 1)
        self._grid.setColumnStretch(2, 1)
