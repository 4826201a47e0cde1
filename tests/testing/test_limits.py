"""Every resource limit, attacked against real processes: it holds and affects only the offender.

The report of each scenario lists what did not hold; the sizes here are the issue's (1,100
half-sent requests, 300 MiB of headers, 1,500 waiting calls, 20,000 list changes) except where a
smaller attack shows the same: 300 session attempts against a limit of 100. The body timeout
(30 s) is tested with a short one in tests/gateway/test_http_limits.py.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import anyio
import pytest

from approver.testing import limits_http, limits_upstream
from approver.testing.limit_report import LimitReport
from approver.testing.limits import SCENARIOS, main

pytestmark = pytest.mark.timeout(300)

ATTACKS = {
    "long-line": limits_upstream.long_line,
    "endless-cursor": limits_upstream.endless_cursor,
    "list-changed-flood": limits_upstream.list_changed_flood,
    "half-sent-requests": limits_http.half_sent_requests,
    "header-flood": limits_http.header_flood,
    "sessions-per-client": partial(limits_http.many_sessions, attempts=300),
    "calls-waiting-per-client": limits_http.many_waiting_calls,
    "hostile-redaction": partial(limits_http.hostile_redaction, hostile_calls=3, victim_calls=50),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_limit_holds_under_its_attack(tmp_path: Path, name: str) -> None:
    report: LimitReport = anyio.run(ATTACKS[name], tmp_path)

    assert report.scenario == name
    assert report.ok, report.problems
    assert report.figures and report.limit and report.attack


def test_every_scenario_is_in_the_suite_and_the_command_prints_a_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert set(ATTACKS) | {"slow-body"} == set(SCENARIOS)

    code = main(["run", "header-flood"])

    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["scenario"] == "header-flood" and printed["ok"] is True
