"""Plain-text helpers: outside text never becomes markup, in labels, tooltips or notifications."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from pytestqt.qtbot import QtBot

from approver.ui.text import plain_label, plain_message, plain_tooltip

HOSTILE = "<b>bold</b> <img src=x> & \u202eevil\nsecond line"


def test_a_label_is_plain_and_reveals_hidden_characters(qtbot: QtBot) -> None:
    label = plain_label(HOSTILE, name="hostile")
    assert label.textFormat() == Qt.TextFormat.PlainText
    assert label.objectName() == "hostile"
    assert label.text() == "<b>bold</b> <img src=x> & <U+202E>evil<U+000A>second line"


def test_a_tooltip_renders_to_exactly_the_revealed_text(qtbot: QtBot) -> None:
    document = QTextDocument()
    document.setHtml(plain_tooltip(HOSTILE))
    assert document.toPlainText() == "<b>bold</b> <img src=x> & <U+202E>evil\nsecond line"


def test_a_notification_body_escapes_markup() -> None:
    assert plain_message("<a href='x'>click</a> & go") == "&lt;a href='x'&gt;click&lt;/a&gt; &amp; go"
