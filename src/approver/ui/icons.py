"""The tray icon, drawn for each state so its look says what approver is doing.

A shield (the firewall): green while running, grey with pause bars while paused, amber with an
exclamation mark when a tool's definition changed (a possible rug pull), red with an
exclamation mark when an upstream or the audit log is in trouble; a badge with the number of
calls waiting for approval sits on top of any of them, in the colour of the most severe risk
waiting. Drawn with QPainter so no image files need to ship and every count can be shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap

from approver.approval.presentation import LOOKS
from approver.calls import RiskLevel

_GREEN = QColor("#1f8a70")
_GREY = QColor("#7a7f85")
_RED = QColor("#c0392b")
_AMBER = QColor("#f39c12")
_OUTLINE = QColor("#0f2f28")


@dataclass(frozen=True, slots=True)
class TrayState:
    """What the tray icon and its tooltip show."""

    paused: bool = False
    waiting: int = 0
    """Calls waiting for approval."""
    troubled: tuple[str, ...] = ()
    """Short descriptions of what is wrong (failed upstreams, audit log errors)."""
    changed_tools: tuple[str, ...] = ()
    """Tools whose definition changed since pinned (``tool on server``): quarantined until accepted."""
    waiting_level: RiskLevel | None = None
    """The most severe risk level among the waiting calls."""

    def tooltip(self) -> str:
        """The tooltip: one line per fact, most urgent first."""
        lines = ["approver: paused, every call is denied" if self.paused else "approver: running"]
        if self.waiting:
            worst = f" (most severe: {self.waiting_level.value})" if self.waiting_level else ""
            lines.insert(
                0, f"{self.waiting} call{'s' if self.waiting != 1 else ''} waiting for approval{worst}"
            )
        lines += self.troubled
        lines += [f"definition changed, review it in Servers: {tool}" for tool in self.changed_tools]
        return "\n".join(lines)


def _shield(size: float) -> QPainterPath:
    s = size / 64
    path = QPainterPath(QPointF(32 * s, 4 * s))
    path.lineTo(56 * s, 12 * s)
    path.lineTo(56 * s, 30 * s)
    path.cubicTo(56 * s, 45 * s, 45 * s, 55 * s, 32 * s, 60 * s)
    path.cubicTo(19 * s, 55 * s, 8 * s, 45 * s, 8 * s, 30 * s)
    path.lineTo(8 * s, 12 * s)
    path.closeSubpath()
    return path


def render(state: TrayState, size: int = 64) -> QPixmap:
    """The icon for ``state`` as a square pixmap."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 64
    fill = _GREY if state.paused else _RED if state.troubled else _AMBER if state.changed_tools else _GREEN
    painter.setPen(QPen(_OUTLINE, 3 * s))
    painter.setBrush(QBrush(fill))
    painter.drawPath(_shield(size))
    mark = QPen(
        QColor("white"), 6 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin
    )
    painter.setPen(mark)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    if state.paused:
        painter.drawLine(QPointF(25 * s, 22 * s), QPointF(25 * s, 42 * s))
        painter.drawLine(QPointF(39 * s, 22 * s), QPointF(39 * s, 42 * s))
    elif state.troubled or state.changed_tools:
        painter.drawLine(QPointF(32 * s, 18 * s), QPointF(32 * s, 36 * s))
        painter.drawPoint(QPointF(32 * s, 46 * s))
    else:
        check = QPainterPath(QPointF(20 * s, 32 * s))
        check.lineTo(29 * s, 41 * s)
        check.lineTo(45 * s, 23 * s)
        painter.drawPath(check)
    if state.waiting:
        badge = QRectF(30 * s, 30 * s, 34 * s, 34 * s)
        look = LOOKS[state.waiting_level] if state.waiting_level is not None else None
        painter.setPen(QPen(_OUTLINE, 2 * s))
        painter.setBrush(QBrush(QColor(look.background) if look else _AMBER))
        painter.drawEllipse(badge)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(1, int((20 if state.waiting < 10 else 15) * s)))
        painter.setFont(font)
        painter.setPen(QColor(look.foreground) if look else QColor("black"))
        painter.drawText(
            badge, Qt.AlignmentFlag.AlignCenter, str(state.waiting) if state.waiting < 100 else "99+"
        )
    painter.end()
    return pixmap


def icon(state: TrayState) -> QIcon:
    """A multi-size icon for ``state`` (tray icons are drawn small; window icons larger)."""
    result = QIcon()
    for size in (16, 22, 32, 64, 128):
        result.addPixmap(render(state, size))
    return result


def app_icon() -> QIcon:
    """The application's own icon (the running shield)."""
    return icon(TrayState())
