"""The event hub: listeners see events in order, and a failing listener harms nothing."""

from __future__ import annotations

import logging

import pytest

from approver.events import AuditFailed, Event, EventHub, PausedChanged


def test_listeners_see_every_event_in_order_until_they_unsubscribe() -> None:
    hub = EventHub()
    seen: list[Event] = []
    unsubscribe = hub.subscribe(seen.append)
    hub.publish(PausedChanged(True))
    hub.publish(AuditFailed("disk full"))
    unsubscribe()
    unsubscribe()
    hub.publish(PausedChanged(False))
    assert seen == [PausedChanged(True), AuditFailed("disk full")]


def test_a_failing_listener_is_logged_and_the_next_listener_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = EventHub()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("display bug")

    hub.subscribe(broken)
    hub.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="approver.events"):
        hub.publish(PausedChanged(True))
    assert seen == [PausedChanged(True)]
    assert "event listener failed on PausedChanged" in caplog.text
