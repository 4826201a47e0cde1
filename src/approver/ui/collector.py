"""Run Python's cyclic garbage collector on the GUI thread only.

Automatic collection runs on whichever thread happens to allocate, and approver has worker
threads: the audit writer, upstream stderr readers, the OTLP exporter, audit-window jobs. When
one of them collects a reference cycle that holds a Qt object, Qt destroys that object on the
wrong thread ("QObject::~QObject: Timers cannot be stopped from another thread"), which can crash
the app. So the desktop app turns automatic collection off and collects from a timer on the GUI
thread instead, by the same generation thresholds Python would use.
"""

from __future__ import annotations

import gc
from typing import Final

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS: Final = 500
"""How often the GUI thread checks whether a collection is due."""


class GuiCollector(QObject):
    """Owns garbage collection while started: :meth:`check` runs on the GUI thread's timer."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._was_enabled = False

    def start(self) -> None:
        """Turn automatic collection off and start collecting from the GUI thread."""
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer and give collection back to Python if it had it."""
        self._timer.stop()
        if self._was_enabled:
            gc.enable()

    def check(self) -> int | None:
        """Collect the oldest generation that is due, as Python would; returns it, or None."""
        thresholds, counts = gc.get_threshold(), gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return generation
        return None
