"""Editing a waiting call's arguments before approving: fields, text blocks, raw JSON one click away.

:class:`EditPanel` sits above the arguments in the approval dialog. *Edit arguments* swaps the
read-only view for an :class:`ArgumentEditor`: a line per short value (a string as itself,
anything else as JSON), a monospace text area per long string, and *Edit as raw JSON* for the
whole call. The dialog then approves with :meth:`EditPanel.edited_bytes`, which turns the fields
back into JSON and checks them against the tool's input schema
(:mod:`approver.approval.editing`); a problem is an :class:`~approver.approval.editing.EditError`
the dialog shows, and nothing is approved. Every widget here is plain text.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QKeyEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from approver.approval.arguments import Arguments
from approver.approval.broker import ApprovalRequest
from approver.approval.editing import (
    EditError,
    checked_edit,
    encode_arguments,
    field_text,
    field_value,
    parse_raw,
)
from approver.ui.text import plain_label, set_plain
from approver.visible import reveal

_NOTE = (
    "You are editing this call. Approve edited runs it with your changes, once; the agent is told "
    "what ran. Discard edits shows the call as the agent made it."
)


class _Field(QLineEdit):
    """A one-line field in which Enter does nothing: it never reaches the dialog's Deny."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Swallow Return and Enter; everything else as usual."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            return
        super().keyPressEvent(event)


def _mono(text: str, name: str) -> QPlainTextEdit:
    area = QPlainTextEdit()
    area.setObjectName(name)
    area.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    area.setTabChangesFocus(True)
    area.setPlainText(text)
    area.setMinimumHeight(90)
    return area


class ArgumentEditor(QWidget):
    """The arguments of one call as editable fields, or as one raw JSON text."""

    changed = Signal()
    """Something was typed."""

    def __init__(self, arguments: Arguments, original: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("argument_editor")
        self._original = original
        self._order = [item.name for item in arguments.items]
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._fields_host = QWidget()
        self._grid = QGridLayout(self._fields_host)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setColumnStretch(1, 1)
        self._layout.addWidget(self._fields_host)
        self.raw = _mono("", "raw_editor")
        self.raw.setAccessibleName("The arguments as JSON, editable")
        self.raw.setMinimumHeight(160)
        self.raw.textChanged.connect(self.changed)
        self.raw.hide()
        self._layout.addWidget(self.raw)
        self.fields: dict[str, QLineEdit | QPlainTextEdit] = {}
        """The editor of each argument by name (while editing as fields)."""
        self._fill(original, {item.name for item in arguments.blocks})

    @property
    def raw_mode(self) -> bool:
        """Whether the whole call is edited as raw JSON."""
        return not self.raw.isHidden()

    def _fill(self, values: dict[str, Any], blocks: set[str]) -> None:
        while self._grid.count():
            taken = self._grid.takeAt(0)
            widget = taken.widget() if taken is not None else None
            if widget is not None:
                widget.hide()
                widget.setParent(None)  # gone from findChild at once, not only once deleted
                widget.deleteLater()
        self.fields = {}
        names = [name for name in self._order if name in values] + [n for n in values if n not in self._order]
        for row, name in enumerate(names):
            text = field_text(values[name])
            editor: QLineEdit | QPlainTextEdit
            if name in blocks or "\n" in text:
                editor = _mono(text, f"edit:{name}")
                editor.textChanged.connect(self.changed)
            else:
                editor = _Field(text)
                editor.setObjectName(f"edit:{name}")
                editor.textEdited.connect(self.changed)
            editor.setAccessibleName(f"Argument {name}")
            hidden = reveal(text, keep_newlines=True).warning()
            caption = plain_label(name + ":" + (f"  ({hidden})" if hidden else ""), wrap=True)
            self._grid.addWidget(caption, row, 0)
            self._grid.addWidget(editor, row, 1)
            self.fields[name] = editor

    def values(self) -> dict[str, Any]:
        """The arguments as edited now; raises :class:`EditError` saying which field is wrong."""
        if self.raw_mode:
            return parse_raw(self.raw.toPlainText())
        result: dict[str, Any] = {}
        for name, editor in self.fields.items():
            text = editor.toPlainText() if isinstance(editor, QPlainTextEdit) else editor.text()
            result[name] = field_value(name, text, self._original.get(name, ""))
        return result

    def focus_first(self) -> None:
        """Put the keyboard in the raw text, or in the first field, so typing edits the call."""
        target = self.raw if self.raw_mode else next(iter(self.fields.values()), None)
        if target is not None:
            target.setFocus(Qt.FocusReason.OtherFocusReason)

    def toggle_raw(self) -> None:
        """Switch between fields and raw JSON, carrying the edits over; raises :class:`EditError`."""
        if self.raw_mode:
            values = parse_raw(self.raw.toPlainText())
            blocks = {name for name, editor in self.fields.items() if isinstance(editor, QPlainTextEdit)}
            self._fill(values, blocks)
            self.raw.hide()
            self._fields_host.show()
        else:
            self.raw.setPlainText(json.dumps(self.values(), indent=2, ensure_ascii=False))
            self._fields_host.hide()
            self.raw.show()


class EditPanel(QWidget):
    """The *Edit arguments* switch above a call's arguments, and the editor while it is on."""

    toggled = Signal(bool)
    """Editing started (True) or the edits were discarded (False)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("edit_panel")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.edit_button = QPushButton("&Edit arguments")
        self.edit_button.setObjectName("edit_arguments")
        self.edit_button.setAccessibleDescription("Change the arguments before approving; the agent is told")
        self.edit_button.setAutoDefault(False)
        self.edit_button.clicked.connect(self._switch)
        self.raw_button = QPushButton("Edit as raw &JSON")
        self.raw_button.setObjectName("edit_raw")
        self.raw_button.setAutoDefault(False)
        self.raw_button.clicked.connect(self._toggle_raw)
        row.addWidget(self.edit_button)
        row.addWidget(self.raw_button)
        row.addStretch(1)
        column.addLayout(row)
        self.note = plain_label(_NOTE, reveal=False, wrap=True, name="edit_note")
        self.note.setStyleSheet("QLabel { background: #e8f0fe; color: #1a3a6b; padding: 4px; }")
        column.addWidget(self.note)
        self.problem = plain_label(reveal=False, wrap=True, name="edit_problem")
        self.problem.setStyleSheet("QLabel { color: #a00000; }")
        column.addWidget(self.problem)
        self._host = QVBoxLayout()
        column.addLayout(self._host)
        self.editor: ArgumentEditor | None = None
        self._request: ApprovalRequest | None = None
        self._laid: Arguments | None = None
        self.show_for(None, None)

    @property
    def editing(self) -> bool:
        """Whether the editor is on screen."""
        return self.editor is not None

    def show_for(self, request: ApprovalRequest | None, laid: Arguments | None) -> None:
        """Offer editing for ``request`` (a tool call whose arguments are a JSON object), or hide."""
        self._stop()
        self._request, self._laid = request, laid
        editable = request is not None and laid is not None and _editable(request)
        self.setVisible(editable)

    def _switch(self) -> None:
        if self.editing:
            self._stop()
            self.toggled.emit(False)
            return
        if self._request is None or self._laid is None:
            return
        self.editor = ArgumentEditor(self._laid, json.loads(self._request.arguments))
        self.editor.changed.connect(lambda: set_plain(self.problem, "", reveal=False))
        self._host.addWidget(self.editor)
        self.edit_button.setText("&Discard edits")
        self.raw_button.show()
        self.note.show()
        self.toggled.emit(True)
        # The button that started editing stays, renamed; the keyboard belongs in the call now.
        self.editor.focus_first()

    def _stop(self) -> None:
        if self.editor is not None:
            self.editor.hide()
            self.editor.setParent(None)
            self.editor.deleteLater()
            self.editor = None
        self.edit_button.setText("&Edit arguments")
        self.raw_button.hide()
        self.note.hide()
        set_plain(self.problem, "", reveal=False)
        self.problem.hide()

    def _toggle_raw(self) -> None:
        if self.editor is None:
            return
        try:
            self.editor.toggle_raw()
        except EditError as exc:
            self.say(str(exc))
            return
        self.raw_button.setText("Edit as &fields" if self.editor.raw_mode else "Edit as raw &JSON")
        self.editor.focus_first()

    def say(self, problem: str) -> None:
        """Show why the edit cannot be approved (plain text)."""
        set_plain(self.problem, problem)
        self.problem.setVisible(bool(problem))

    def edited_bytes(self) -> bytes | None:
        """The canonical bytes of the edited call, checked against the tool's schema.

        None when the edit changed nothing. Raises :class:`EditError` saying what is wrong.
        """
        if self.editor is None or self._request is None:
            return None
        approved = checked_edit(self.editor.values(), self._request.input_schema)
        # Compared as canonical bytes: 1, 1.0 and true are equal in Python but not in JSON.
        return None if approved == encode_arguments(json.loads(self._request.arguments)) else approved


def _editable(request: ApprovalRequest) -> bool:
    """A tool call (not a read, a prompt, a completion or a result) with an object of arguments."""
    if request.request is not None or request.result is not None:
        return False
    try:
        return isinstance(json.loads(request.arguments), dict)
    except ValueError:
        return False
