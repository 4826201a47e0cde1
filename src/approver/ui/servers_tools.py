"""The Servers window's tool list: each tool of a server with its risk and what the policy does.

The same rows as ``approver tools`` (:mod:`approver.gateway.tool_rows`), for the running gateway:
the exposed name, the risk class and level, the action (allow, deny or ask) and the rule that
gives it. Names and descriptions come from servers and are shown revealed, as plain text.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from approver.gateway.tool_rows import ToolRow
from approver.ui.text import plain_tooltip
from approver.visible import reveal_text

TOOL_COLUMNS: Final = ("Tool", "Risk", "Level", "Action", "Why")
"""The tool table's columns, in order."""

ACTION_WORDS: Final = {"allow": "allow", "deny": "deny", "require_approval": "ask you"}
"""How the table names each policy action."""

_ACTION_COLOURS: Final = {"allow": "#1f8a70", "deny": "#c0392b", "require_approval": "#b9770e"}


def why(row: ToolRow) -> str:
    """The Why cell: the rule, and a changed definition first of all."""
    rule = f"rule {row.rule}"
    if row.changed:
        return f"definition CHANGED since pinned ({row.change}): you are asked until you accept it; {rule}"
    return rule + (f"; risk: {'; '.join(row.reasons)}" if row.reasons else "")


class ServerToolsView(QTableWidget):
    """One row per tool: name, risk class, level, the policy's action and why."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(TOOL_COLUMNS), parent)
        self.setObjectName("server_tools")
        self.setHorizontalHeaderLabels(list(TOOL_COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setWordWrap(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

    def show_rows(self, rows: list[ToolRow]) -> None:
        """Replace the table's rows (sorting is kept)."""
        self.setSortingEnabled(False)
        self.setRowCount(len(rows))
        for index, row in enumerate(rows):
            cells = (
                reveal_text(row.name),
                row.risk_class,
                row.risk_level,
                ACTION_WORDS.get(row.action, row.action),
                reveal_text(why(row)),
            )
            items = [QTableWidgetItem(text) for text in cells]
            items[0].setToolTip(plain_tooltip(row.description or row.name))
            items[4].setToolTip(plain_tooltip(why(row)))
            items[3].setForeground(QColor(_ACTION_COLOURS.get(row.action, "#555555")))
            for column, item in enumerate(items):
                self.setItem(index, column, item)
        self.setSortingEnabled(True)

    def texts(self) -> list[list[str]]:
        """Every cell's text, row by row (for tests and screenshots)."""
        return [
            [item.text() if (item := self.item(row, column)) else "" for column in range(self.columnCount())]
            for row in range(self.rowCount())
        ]
