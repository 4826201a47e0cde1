"""Faults: crashes, kills, an unwritable audit log, bad startups and shutdown, on real parts.

Each scenario lives in :mod:`approver.testing.faults` (which names them all) and returns a
report; these tests assert on it. ``lost`` counts calls that reached an upstream
without a committed decision row and must always be 0.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from approver.config.autostart import Autostart
from approver.testing.fault_processes import desktop_sigterm, killed_mid_stream
from approver.testing.fault_report import ALLOW_ALL, FaultReport
from approver.testing.fault_startup import STARTUP_PROBLEMS, startup_problem
from approver.testing.faults import AuditFault, audit_fault_on, shutdown_with_waiting, upstream_crash
from approver.testing.harness import running_service, upstream_entry, write_config
from approver.ui.app import DesktopApp
from approver.upstream.connection import BACKOFF_START

# Generous: every scenario starts Python subprocesses, and CI machines are shared.
TIMEOUT = 180


def passed(report: FaultReport) -> FaultReport:
    """``report``, after asserting that nothing was lost and every expectation held."""
    assert report.problems == (), "\n".join(report.problems + report.findings)
    assert report.lost == 0 and report.verify_ok
    return report


@pytest.mark.anyio
async def test_an_upstream_crashing_mid_call_is_a_clear_error_and_the_other_server_answers_throughout(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(TIMEOUT):
        report = passed(await upstream_crash(tmp_path, crashes=2))
    assert report.faults == 2 and report.denied == 4
    assert report.reached_upstream == report.rows_checked  # allow-all: every decision row was forwarded
    assert any(
        "ready again after" in line and f"backoff {BACKOFF_START * 2:.1f} s" in line
        for line in report.findings
    )
    assert any("while a was down" in line for line in report.findings)


@pytest.mark.parametrize("how", ["read-only", "disk-full"])
def test_an_unwritable_audit_log_denies_every_call_forwards_none_and_the_desktop_says_so(
    qrun: Callable[..., Any], tmp_path: Path, how: AuditFault
) -> None:
    call_log = tmp_path / "test.calls.jsonl"
    paths = write_config(tmp_path, {"test": upstream_entry("test", "--call-log", str(call_log))}, ALLOW_ALL)
    seen: dict[str, Any] = {}

    async def main() -> FaultReport:
        async with running_service(paths) as service:
            desktop = DesktopApp(
                service,
                tray_available=False,
                autostart=Autostart(
                    ["approver"], environ={"XDG_CONFIG_HOME": str(tmp_path)}, platform="linux"
                ),
                bridge_command=["approver"],
            )

            async def while_broken() -> None:
                seen["state"] = desktop.state()
                seen["headline"] = desktop.window.headline.text()
                seen["details"] = desktop.window.details.text()

            try:
                result = await audit_fault_on(service, how, call_log, while_broken=while_broken)
                seen["after"] = desktop.state()
            finally:
                desktop.close()
        return result

    report = passed(qrun(main(), TIMEOUT))
    reason = "attempt to write a readonly database" if how == "read-only" else "database or disk is full"
    assert report.denied > 0 and report.calls == report.denied + report.reached_upstream
    assert any(reason in line for line in report.findings)
    state = seen["state"]
    assert state.troubled[0].startswith("audit log cannot be written, calls are denied")
    assert reason in state.tooltip()
    assert seen["headline"] == "Running, with problems"
    assert "Audit log: cannot be written" in seen["details"] and "every call is denied" in seen["details"]
    assert seen["after"].troubled == ()  # a successful write clears the trouble


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["sigkill", "os-exit"])
async def test_a_gateway_killed_mid_stream_forwarded_nothing_unrecorded_and_verifies_and_serves_again(
    tmp_path: Path, how: Any
) -> None:
    with anyio.fail_after(TIMEOUT):
        report = passed(await killed_mid_stream(tmp_path, how, clients=3, kill_after=20))
    # The kill came mid-stream (after 20 answers, or after audit row 20 = about 10 calls).
    assert report.reached_upstream >= 10 and report.calls > report.reached_upstream
    assert report.rows_checked >= report.reached_upstream


@pytest.mark.anyio
async def test_stopping_the_service_denies_and_records_every_waiting_call(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        report = passed(await shutdown_with_waiting(tmp_path, waiting=3))
    assert report.denied == 3 and report.rows_checked == 3 and report.reached_upstream == 0


@pytest.mark.anyio
async def test_sigterm_to_the_desktop_app_denies_and_records_every_waiting_call(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        report = passed(await desktop_sigterm(tmp_path, waiting=3))
    assert report.denied == 3 and report.rows_checked == 3 and report.reached_upstream == 0


# `approver` without a display runs `serve`; these show it explains the same problems the same way.
_APP_TOO = ("port-in-use", "data-dir-unwritable")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("problem", "command"),
    [(name, "serve") for name in STARTUP_PROBLEMS] + [(name, "app") for name in _APP_TOO],
)
async def test_a_startup_problem_gets_a_message_that_says_what_to_do_and_no_traceback(
    tmp_path: Path, problem: str, command: Any
) -> None:
    with anyio.fail_after(TIMEOUT):
        passed(await startup_problem(tmp_path, problem, command))
