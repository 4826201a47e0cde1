"""Plain-text widgets for strings from outside: nothing they show is ever read as HTML.

Every string a server, a client, an argument or a user file can influence goes through these
helpers. A label is forced to ``Qt.TextFormat.PlainText`` (Qt's default ``AutoText`` renders
anything that looks like HTML), and hidden characters are made visible with
:func:`approver.visible.reveal` first, so what the user reads is what the agent sent.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QTextOption
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QWidget

from approver.visible import Revealed, reveal


def revealed(text: str, *, keep_newlines: bool = False) -> Revealed:
    """:func:`approver.visible.reveal` (kept as the one name UI code calls)."""
    return reveal(text, keep_newlines=keep_newlines)


def plain_label(
    text: str = "",
    *,
    reveal: bool = True,
    keep_newlines: bool = False,
    wrap: bool = False,
    selectable: bool = False,
    name: str = "",
    parent: QWidget | None = None,
) -> QLabel:
    """A QLabel that shows ``text`` as plain text (hidden characters revealed unless ``reveal=False``).

    Use ``reveal=False`` only for text the app wrote itself, and ``keep_newlines=True`` only for
    labels meant to hold several lines. Update the text with :func:`set_plain`.
    """
    label = QLabel(parent)
    label.setObjectName(name)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    set_plain(label, text, reveal=reveal, keep_newlines=keep_newlines)
    return label


def set_plain(label: QLabel, text: str, *, reveal: bool = True, keep_newlines: bool = False) -> None:
    """Replace a label's text, keeping it plain and revealing hidden characters unless told not to."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(revealed(text, keep_newlines=keep_newlines).text if reveal else text)


def plain_view(text: str = "", *, monospace: bool = False, parent: QWidget | None = None) -> QPlainTextEdit:
    """A read-only, scrolling, never-truncated text view; hidden characters are revealed.

    Lines wrap anywhere: wrapping at word boundaries takes minutes on a megabyte without spaces.
    Tab moves the focus on instead of being swallowed, so keyboard users can leave the view.
    """
    view = QPlainTextEdit(parent)
    view.setReadOnly(True)
    view.setUndoRedoEnabled(False)
    view.setTabChangesFocus(True)
    view.setMaximumBlockCount(0)
    view.setWordWrapMode(QTextOption.WrapMode.WrapAnywhere)
    if monospace:
        view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    set_view_text(view, text)
    return view


def set_view_text(view: QPlainTextEdit, text: str) -> Revealed:
    """Show ``text`` in a plain view (newlines and tabs kept, other hidden characters revealed).

    Returns what was revealed, so the caller can warn about it.
    """
    shown = revealed(text, keep_newlines=True)
    view.setPlainText(shown.text)
    return shown


def plain_tooltip(text: str) -> str:
    """Tooltip text that shows ``text`` literally.

    Qt renders a tooltip as rich text whenever it *looks* like HTML, and tray hosts and
    notification servers may render markup too, so outside text is escaped into a rich-text
    paragraph that keeps its line breaks: the only rich text here is built from escaped pieces.
    """
    return f"<p style='white-space:pre-wrap'>{html.escape(revealed(text, keep_newlines=True).text)}</p>"


def plain_message(text: str) -> str:
    """Notification text with markup characters escaped (notification servers may render markup)."""
    return html.escape(text, quote=False)
