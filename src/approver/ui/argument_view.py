"""The arguments of a waiting call: a form of short values, numbered text blocks, raw JSON on request.

Everything is plain text with hidden characters revealed. Key arguments come first and are
bold; an argument the tool's schema does not declare says so; a value the audit redactor would
treat as a secret is shown, marked ("looks like a private key").
"""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from approver.approval.arguments import Arguments, result_argument
from approver.ui.text import plain_label, plain_view, set_plain, set_view_text
from approver.ui.text_block import TextBlock
from approver.visible import Revealed, reveal


class ArgumentView(QWidget):
    """Shows one call's :class:`~approver.approval.arguments.Arguments`; rebuilt per call."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("arguments")
        self.setAccessibleName("Arguments")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.caption = plain_label(reveal=False, wrap=True, name="arguments_size")
        self._layout.addWidget(self.caption)
        self._form_host = QWidget()
        self._form = QGridLayout(self._form_host)
        self._form.setContentsMargins(0, 0, 0, 0)
        self._form.setColumnStretch(1, 1)
        self._layout.addWidget(self._form_host)
        self._blocks_host = QWidget()
        self._blocks = QVBoxLayout(self._blocks_host)
        self._blocks.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self._blocks_host)
        self.raw_button = QPushButton("Show the raw JSON")
        self.raw_button.setObjectName("show_raw")
        self.raw_button.setAutoDefault(False)
        self.raw_button.setCheckable(True)
        self.raw_button.toggled.connect(self._show_raw)
        self._layout.addWidget(self.raw_button)
        self.raw = plain_view(monospace=True)
        self.raw.setObjectName("raw_arguments")
        self.raw.setAccessibleName("The exact arguments as JSON")
        self.raw.setMinimumHeight(120)
        self.raw.hide()
        self._layout.addWidget(self.raw)
        self.values: dict[str, QLabel] = {}
        """The form's value labels by argument name (for tests and accessibility)."""
        self.blocks: list[TextBlock] = []

    def show_arguments(self, arguments: Arguments, size: int) -> list[tuple[str, Revealed]]:
        """Show ``arguments`` (``size`` bytes as sent); returns what was revealed, per place."""
        self._clear()
        found: list[tuple[str, Revealed]] = []
        count = len(arguments.items)
        summary = f"{count} argument{'s' if count != 1 else ''}, {size:,} bytes as sent"
        if arguments.problem:
            summary += f" ({arguments.problem})"
        set_plain(self.caption, summary, reveal=False)
        for row, item in enumerate(arguments.form):
            name = plain_label(item.name + ":", selectable=True)
            value = plain_label(wrap=True, selectable=True, name=f"value:{item.name}")
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
            value.setMinimumWidth(80)
            set_plain(value, item.text)
            notes = _notes(item.declared, item.secrets)
            if notes:
                value.setText(value.text() + f"   [{notes}]")
            if item.key:
                for label in (name, value):
                    font = label.font()
                    font.setBold(True)
                    label.setFont(font)
            self._form.addWidget(name, row, 0)
            self._form.addWidget(value, row, 1)
            self.values[item.name] = value
            found.append((f"Argument {item.name}", reveal(item.text)))
        self._form_host.setVisible(bool(arguments.form))
        for item in arguments.blocks:
            block = TextBlock(item)
            notes = _notes(item.declared, item.secrets)
            if notes:
                block.title.setText(block.title.text() + f" [{notes}]")
            self._blocks.addWidget(block)
            self.blocks.append(block)
            found.append((f"Argument {item.name}", block.shown))
        found.append(("Argument names", reveal(" ".join(item.name for item in arguments.items))))
        set_view_text(self.raw, arguments.raw)
        return found

    def show_result(self, result: str) -> list[tuple[str, Revealed]]:
        """Show a call's result for review (in place of its arguments); returns what was revealed."""
        self._clear()
        set_plain(self.caption, f"The result, {len(result.encode()):,} bytes as text:", reveal=False)
        self._form_host.hide()
        item = result_argument(result)
        block = TextBlock(item)
        if item.secrets:
            block.title.setText(block.title.text() + f" [{'; '.join(item.secrets)}]")
        self._blocks.addWidget(block)
        self.blocks.append(block)
        self.raw_button.hide()
        return [("Result", block.shown)]

    def _show_raw(self, shown: bool) -> None:
        self.raw.setVisible(shown)
        self.raw_button.setText("Hide the raw JSON" if shown else "Show the raw JSON")

    def _clear(self) -> None:
        for host in (self._form, self._blocks):
            while host.count():
                taken = host.takeAt(0)
                widget = taken.widget() if taken is not None else None
                if widget is not None:
                    widget.hide()
                    widget.deleteLater()
        self.values = {}
        self.blocks = []
        self.raw_button.show()
        self.raw_button.setChecked(False)
        self.raw.clear()

    def clear(self) -> None:
        """Show nothing (no call on screen)."""
        self._clear()
        set_plain(self.caption, "", reveal=False)


def _notes(declared: bool, secrets: tuple[str, ...]) -> str:
    notes = [] if declared else ["not in the tool's schema"]
    return "; ".join([*notes, *secrets])
