"""The GUI-thread garbage collector: cycles are collected by the GUI thread's timer, not by Python."""

from __future__ import annotations

import gc
import threading
import weakref

from pytestqt.qtbot import QtBot

from approver.ui.collector import GuiCollector


class Node:
    """Half of a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_started_collector_turns_automatic_collection_off_and_stop_gives_it_back(qtbot: QtBot) -> None:
    gc.enable()
    collector = GuiCollector()
    try:
        collector.start()
        assert not gc.isenabled()
    finally:
        collector.stop()
    assert gc.isenabled()
    gc.disable()  # the test session collects on the main thread (conftest)


def test_cycles_are_collected_by_the_timer_on_the_gui_thread(qtbot: QtBot) -> None:
    freed_on: list[str] = []
    first, second = Node(), Node()
    first.other, second.other = second, first
    weakref.finalize(first, lambda: freed_on.append(threading.current_thread().name))
    del first, second
    collector = GuiCollector(interval_ms=10)
    collector.start()
    try:
        # Enough live allocations to make a collection due, as a running app makes them.
        kept = [[] for _ in range(gc.get_threshold()[0] + 1)]
        qtbot.waitUntil(lambda: bool(freed_on), timeout=5000)
    finally:
        collector.stop()
    assert freed_on == [threading.main_thread().name]
    assert len(kept) > 0
