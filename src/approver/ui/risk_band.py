"""Risk you see before you read: a coloured band with a shape and words per level, and its icon.

The same look (:data:`approver.approval.presentation.LOOKS`) is drawn in the dialog's band, the
queue list, notifications and the tray badge: a colour, a shape (octagon for critical, triangle
for high, diamond for medium, circle for low) and the level in words, so colour is never alone.
"""

from __future__ import annotations

import math
from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QWidget

from approver.approval.presentation import LOOKS, risk_words
from approver.calls import Risk, RiskLevel
from approver.ui.text import plain_label, plain_tooltip, set_plain


def _shape(symbol: str, rect: QRectF) -> QPainterPath:
    path = QPainterPath()
    center, radius = rect.center(), rect.width() / 2
    if symbol == "circle":
        path.addEllipse(rect)
        return path
    corners = {"octagon": (8, math.pi / 8), "triangle": (3, -math.pi / 2), "diamond": (4, -math.pi / 2)}
    count, start = corners[symbol]
    grow = 1.15 if symbol == "triangle" else 1.0
    points = [
        QPointF(
            center.x() + radius * grow * math.cos(start + 2 * math.pi * i / count),
            center.y()
            + radius * grow * math.sin(start + 2 * math.pi * i / count)
            + (radius * 0.15 if symbol == "triangle" else 0),
        )
        for i in range(count)
    ]
    path.addPolygon(QPolygonF(points))
    path.closeSubpath()
    return path


def draw_risk_symbol(painter: QPainter, level: RiskLevel, rect: QRectF) -> None:
    """Draw ``level``'s shape in its colour, with a mark inside, filling ``rect``."""
    look = LOOKS[level]
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("#202020"), max(1.0, rect.width() / 16)))
    painter.setBrush(QBrush(QColor(look.background)))
    painter.drawPath(_shape(look.symbol, rect))
    mark = {"octagon": "!", "triangle": "!", "diamond": "·", "circle": "✓"}[look.symbol]
    font = QFont()
    font.setBold(True)
    font.setPixelSize(max(1, int(rect.height() * 0.6)))
    painter.setFont(font)
    painter.setPen(QColor(look.foreground))
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, mark)
    painter.restore()


@cache
def risk_pixmap(level: RiskLevel, size: int = 32) -> QPixmap:
    """``level``'s symbol as a square pixmap."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    inset = size / 10
    draw_risk_symbol(painter, level, QRectF(inset, inset, size - 2 * inset, size - 2 * inset))
    painter.end()
    return pixmap


def risk_icon(level: RiskLevel) -> QIcon:
    """``level``'s symbol as a multi-size icon (lists, notifications)."""
    icon = QIcon()
    for size in (16, 24, 32, 64):
        icon.addPixmap(risk_pixmap(level, size))
    return icon


class RiskBand(QWidget):
    """A full-width band in the level's colour: its symbol, the level and class in words, the reasons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("risk_band")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.symbol = QLabel()
        self.symbol.setTextFormat(Qt.TextFormat.PlainText)
        self.symbol.setFixedSize(24, 24)
        layout.addWidget(self.symbol)
        self.words = plain_label(reveal=False, name="risk")
        font = self.words.font()
        font.setBold(True)
        self.words.setFont(font)
        layout.addWidget(self.words)
        self.reasons = plain_label(name="reasons")
        self.reasons.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.reasons, 1)
        self.level: RiskLevel | None = None

    def show_risk(self, risk: Risk | None) -> None:
        """Colour the band for ``risk`` (None: a neutral empty band)."""
        self.level = risk.level if risk is not None else None
        if risk is None:
            self.setStyleSheet("")
            self.symbol.clear()
            set_plain(self.words, "", reveal=False)
            set_plain(self.reasons, "", reveal=False)
            return
        look = LOOKS[risk.level]
        self.setStyleSheet(
            f"#risk_band {{ background: {look.background}; }}"
            f" #risk_band QLabel {{ color: {look.foreground}; }}"
        )
        self.symbol.setPixmap(risk_pixmap(risk.level, 24))
        conflict = " (its annotations contradict its name or description)" if risk.conflict else ""
        set_plain(self.words, risk_words(risk) + conflict, reveal=False)
        reasons = "; ".join(risk.reasons)
        set_plain(self.reasons, f"— {reasons}" if reasons else "")
        self.reasons.setToolTip(plain_tooltip(reasons) if reasons else "")
