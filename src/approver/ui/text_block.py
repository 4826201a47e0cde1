"""A long argument as a text block: numbered lines, monospace, no escaping, collapsed, with find.

A 200-line script is read as 200 numbered lines, not as one JSON string full of ``\\n``. The
block starts collapsed to its first lines ("Show all 1,204 lines / 50 KB" expands it) and has a
find box that jumps to each match and says on which line it is, so line 150 can be found. The
caption counts the lines as drawn at the view's width, so padding that wraps into hundreds of
screen lines cannot pass for "4 lines".
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QFontMetrics,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QTextCursor,
    QTextDocument,
    QTextOption,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from approver.approval.arguments import Argument, block_caption, drawn_lines
from approver.ui.text import plain_label, set_plain, set_view_text
from approver.visible import Revealed

COLLAPSED_LINES: Final = 8
"""Lines a collapsed block shows."""
EXPANDED_LINES: Final = 30
"""Lines an expanded block shows at most; it scrolls for the rest."""
_MAX_HIGHLIGHTS: Final = 500


class _Gutter(QWidget):
    def __init__(self, view: NumberedView) -> None:
        super().__init__(view)
        self._view = view

    def sizeHint(self) -> QSize:
        return QSize(self._view.gutter_width(), 0)

    def paintEvent(self, event: QPaintEvent) -> None:
        self._view.paint_gutter(event)


class NumberedView(QPlainTextEdit):
    """A read-only plain-text view with line numbers in a gutter (wrapped lines share a number)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self.setTabChangesFocus(True)
        # Wrapping at word boundaries takes minutes on a megabyte without spaces (see ui/text.py).
        self.setWordWrapMode(QTextOption.WrapMode.WrapAnywhere)
        self._gutter = _Gutter(self)
        self.blockCountChanged.connect(self._fit_gutter)
        self.updateRequest.connect(self._scroll_gutter)
        self._fit_gutter()

    def gutter_width(self) -> int:
        """Pixels the line numbers take."""
        digits = len(str(max(1, self.blockCount())))
        return 8 + self.fontMetrics().horizontalAdvance("9") * digits

    def columns(self) -> int:
        """Monospace columns that fit in one drawn line."""
        width = self.viewport().width() - 2 * int(self.document().documentMargin())
        return max(1, width // max(1, self.fontMetrics().horizontalAdvance("M")))

    def _fit_gutter(self, _count: int = 0) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _scroll_gutter(self, rect: QRect, dy: int) -> None:
        if dy:
            self._gutter.scroll(0, dy)
        else:
            self._gutter.update(0, rect.y(), self._gutter.width(), rect.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Keep the gutter beside the text."""
        super().resizeEvent(event)
        area = self.contentsRect()
        self._gutter.setGeometry(QRect(area.left(), area.top(), self.gutter_width(), area.height()))

    def paint_gutter(self, event: QPaintEvent) -> None:
        """Draw the numbers of the lines in view."""
        painter = QPainter(self._gutter)
        painter.fillRect(event.rect(), QColor("#eeeeee"))
        painter.setPen(QColor("#6b6b6b"))
        block = self.firstVisibleBlock()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        height = self.fontMetrics().height()
        while block.isValid() and top <= event.rect().bottom():
            bottom = top + round(self.blockBoundingRect(block).height())
            if block.isVisible() and bottom >= event.rect().top():
                number = str(block.blockNumber() + 1)
                painter.drawText(
                    0, top, self._gutter.width() - 4, height, Qt.AlignmentFlag.AlignRight, number
                )
            block = block.next()
            top = bottom
        painter.end()


class TextBlock(QWidget):
    """One long argument: a caption, a collapsible numbered view and a find box."""

    def __init__(self, argument: Argument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.argument = argument
        self.setObjectName(f"block:{argument.name}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        header = QHBoxLayout()
        self.title = plain_label(argument.name + ":", name="block_title")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        header.addWidget(self.title)
        self.caption = plain_label(reveal=False, name="block_caption")
        header.addWidget(self.caption, 1)
        self.toggle = QPushButton()
        self.toggle.setObjectName("show_all")
        self.toggle.setAutoDefault(False)
        self.toggle.clicked.connect(self._toggle)
        header.addWidget(self.toggle)
        layout.addLayout(header)
        find = QHBoxLayout()
        self.find_box = QLineEdit()
        self.find_box.setObjectName("find")
        self.find_box.setPlaceholderText(f"Find in {argument.name}")
        self.find_box.setAccessibleName(f"Find in {argument.name}")
        self.find_box.setClearButtonEnabled(True)
        self.find_box.textChanged.connect(lambda _text: self.find_next(restart=True))
        self.find_box.returnPressed.connect(lambda: self.find_next())
        find.addWidget(self.find_box, 1)
        self.find_result = plain_label(reveal=False, name="find_result")
        find.addWidget(self.find_result)
        layout.addLayout(find)
        self.view = NumberedView()
        self.view.setObjectName("block_view")
        self.view.setAccessibleName(f"Argument {argument.name}, with line numbers")
        layout.addWidget(self.view)
        self.shown: Revealed = set_view_text(self.view, argument.text)
        self.expanded = False
        self._apply_height()

    def _line_height(self) -> int:
        return QFontMetrics(self.view.font()).lineSpacing()

    def _apply_height(self) -> None:
        drawn = drawn_lines(self.shown.text, self.view.columns())
        rows = min(drawn, EXPANDED_LINES if self.expanded else COLLAPSED_LINES)
        frame = 2 * self.view.frameWidth() + 2 * int(self.view.document().documentMargin()) + 4
        self.view.setFixedHeight(max(2, rows) * self._line_height() + frame)
        lines, size = self.argument.lines, self.argument.size
        set_plain(self.caption, block_caption(lines, size, drawn), reveal=False)
        self.toggle.setVisible(drawn > COLLAPSED_LINES)
        self.toggle.setText("Show fewer lines" if self.expanded else f"Show all {block_caption(lines, size)}")

    def _toggle(self) -> None:
        self.expanded = not self.expanded
        self._apply_height()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Recount the drawn lines at the new width."""
        super().resizeEvent(event)
        self._apply_height()

    def find_next(self, *, backwards: bool = False, restart: bool = False) -> int | None:
        """Move to the next match of the find box's text; returns its line number (1-based) or None."""
        needle = self.find_box.text()
        self.view.setExtraSelections([])
        if not needle:
            set_plain(self.find_result, "", reveal=False)
            return None
        if restart:
            self.view.moveCursor(QTextCursor.MoveOperation.Start)
        flags = QTextDocument.FindFlag.FindBackward if backwards else QTextDocument.FindFlag(0)
        found = self.view.find(needle, flags)
        if not found:
            self.view.moveCursor(
                QTextCursor.MoveOperation.End if backwards else QTextCursor.MoveOperation.Start
            )
            found = self.view.find(needle, flags)
        if not found:
            set_plain(self.find_result, "no match", reveal=False)
            return None
        self._highlight(needle)
        line = self.view.textCursor().blockNumber() + 1
        if not self.expanded:
            self._toggle()
        self.view.ensureCursorVisible()
        set_plain(self.find_result, f"line {line:,}", reveal=False)
        return line

    def _highlight(self, needle: str) -> None:
        selections: list[QTextEdit.ExtraSelection] = []
        cursor = self.view.document().find(needle)
        while not cursor.isNull() and len(selections) < _MAX_HIGHLIGHTS:
            selection = QTextEdit.ExtraSelection()
            selection.cursor = cursor
            selection.format.setBackground(QColor("#fff176"))
            selections.append(selection)
            cursor = self.view.document().find(needle, cursor)
        self.view.setExtraSelections(selections)
