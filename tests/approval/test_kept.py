"""Kept decisions: bound to client, tool and argument bytes, used once, gone after ten minutes."""

from __future__ import annotations

import hashlib

from approver.approval.broker import Resolution, Scope, Verdict
from approver.approval.kept import GRANT_TTL, CallKey, KeptDecisions, keepable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


APPROVED = Resolution(Verdict.APPROVED, "user", scope=Scope.ONCE)
KEY = CallKey.of("cursor", "git__git_add", b'{"files":["a"]}')


def test_a_call_key_hashes_the_exact_argument_bytes() -> None:
    assert KEY.arguments_sha256 == hashlib.sha256(b'{"files":["a"]}').hexdigest()
    assert CallKey.of("cursor", "git__git_add", b'{"files": ["a"]}') != KEY


def test_a_kept_decision_is_taken_once() -> None:
    grants = KeptDecisions(Clock())
    assert grants.keep(KEY, APPROVED, "call-1")

    kept = grants.take(KEY)

    assert kept is not None and kept.call_id == "call-1" and kept.resolution == APPROVED
    assert grants.take(KEY) is None


def test_a_kept_decision_expires() -> None:
    clock = Clock()
    grants = KeptDecisions(clock)
    grants.keep(KEY, APPROVED, "call-1")

    clock.now += GRANT_TTL
    assert len(grants) == 0
    assert grants.take(KEY) is None


def test_only_a_persons_answer_or_the_timeout_is_kept() -> None:
    assert keepable(APPROVED)
    assert keepable(Resolution(Verdict.DENIED, "user", "no"))
    assert keepable(Resolution(Verdict.TIMED_OUT, "timeout", "approval timed out"))
    for resolution in (
        Resolution(Verdict.DENIED, "paused", "paused"),
        Resolution(Verdict.DENIED, "shutdown", "shutting down"),
        Resolution(Verdict.CANCELLED, "cancelled"),
        Resolution(Verdict.DENIED, "no-approver", "nobody"),
    ):
        assert not keepable(resolution)
        assert not KeptDecisions(Clock()).keep(KEY, resolution, "x")
