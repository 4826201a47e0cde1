"""Notifications: shown once per burst, folded with a count, and visible without a tray."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from approver.ui.notify import Notifier


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_notification_is_shown_at_once_and_recorded(qtbot: QtBot) -> None:
    notifier = Notifier(clock=Clock())
    with qtbot.waitSignal(notifier.shown) as blocker:
        notifier.notify("denied", "Denied by policy: fs__delete", "agent: protected")
    assert blocker.args == ["Denied by policy: fs__delete", "agent: protected"]
    assert list(notifier.history) == [("Denied by policy: fs__delete", "agent: protected")]


def test_a_burst_of_one_kind_is_folded_into_one_later_notification_with_a_count(qtbot: QtBot) -> None:
    clock = Clock()
    notifier = Notifier(quiet=0.05, clock=clock)
    notifier.notify("denied", "Denied: a", "first")
    for name in "bcd":
        notifier.notify("denied", f"Denied: {name}", name)
    notifier.notify("waiting", "Approve x?", "other kinds are not folded together")
    assert [title for title, _ in notifier.history] == ["Denied: a", "Approve x?"]
    clock.now += 1
    with qtbot.waitSignal(notifier.shown, timeout=2000) as blocker:
        pass
    assert blocker.args == ["Denied: d", "d\n(and 2 more like it)"]


def test_a_folded_burst_names_its_most_severe_call_not_the_last(qtbot: QtBot) -> None:
    clock = Clock()
    notifier = Notifier(quiet=0.05, clock=clock)
    notifier.notify("waiting", "Approve read?", "first", severity=1, target="r1")
    notifier.notify("waiting", "Approve payment?", "critical", severity=4, target="r2")
    notifier.notify("waiting", "Approve delete?", "also critical", severity=4, target="r3")
    notifier.notify("waiting", "Approve list?", "low again", severity=1, target="r4")
    clock.now += 1
    with qtbot.waitSignal(notifier.shown, timeout=2000) as blocker:
        pass
    assert blocker.args == ["Approve delete?", "also critical\n(and 2 more like it)"]
    assert notifier.target == "r3"


def test_clicking_a_notification_hands_over_what_it_is_about(qtbot: QtBot) -> None:
    clock = Clock()
    notifier = Notifier(quiet=0.05, clock=clock)
    notifier.notify("denied", "Denied: a", "first", target=41)
    with qtbot.waitSignal(notifier.activated) as blocker:
        notifier.activate()
    assert blocker.args == [41]
    notifier.notify("denied", "Denied: b", "folded", target=42)
    notifier.notify("denied", "Denied: c", "folded", target=43)
    clock.now += 1
    with qtbot.waitSignal(notifier.shown, timeout=2000):
        pass
    assert notifier.target == 43  # a folded notification opens the newest call it stands for
    notifier.notify("audit", "The audit log cannot be written", "disk full")
    with qtbot.assertNotEmitted(notifier.activated):
        notifier.activate()
