"""Load: many concurrent clients through a real gateway lose no call, leave every audit row, stay in bounds.

Each test drives :func:`approver.testing.load.run.run_load` against a real gateway with a real
upstream under the mixed load policy (allowed, denied, rate-limited) and asserts its report.
The gateway runs as its own ``approver serve`` process so its memory is measured alone, except
in the Qt test, where it runs on the desktop app's loop and the clients run in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from PySide6.QtCore import QTimer

from approver.config.autostart import Autostart
from approver.config.tokens import TokenStore
from approver.testing.harness import running_service
from approver.testing.load.calls import ALLOWED, DENIED, RATE_LIMITED, LoadCall, check_audit
from approver.testing.load.run import LoadGateway, gateway_process, load_config, run_load
from approver.ui.app import DesktopApp

MIB = 1024
BRIDGE_CLIENTS = 10
"""Bridge clients in the test: each is a Python process whose start costs ~1 CPU-second, so the
full fifty would cost a shared two-core CI machine close to a minute before the first call.
``python -m approver.testing.load --transport bridge`` runs the full size."""
BRIDGE_CALLS = 60
"""Calls per bridge client: enough for the rate limit (10 writes per client) to deny some."""
UI_CLIENTS = 50
UI_CALLS = 20
UI_MAX_GAP_S = 1.0
"""The longest the Qt event loop may go without running a 50 ms timer while the load runs."""


def memory_growth_bound(first_kb: int) -> int:
    """Generous, to absorb allocator noise: 1.5 times the first round's level, or +50 MiB."""
    return max(int(first_kb * 1.5), first_kb + 50 * MIB)


@pytest.mark.timeout(900)
@pytest.mark.anyio
async def test_fifty_http_clients_of_both_eras_lose_no_call_and_a_second_round_does_not_grow_memory(
    tmp_path: Path,
) -> None:
    async with gateway_process(tmp_path) as gateway:
        first = await run_load(gateway=gateway, clients=50, calls_per_client=100, label="r1")
        second = await run_load(gateway=gateway, clients=50, calls_per_client=100, label="r2")
    for report in (first, second):
        print("\n".join(report.lines()))
        assert report.ok, report.problems
        assert report.calls == report.answered == 5000
        assert report.by_kind == {ALLOWED: 3500, DENIED: 1000, RATE_LIMITED: 500}
        # A decision row for every call, an outcome row for every forwarded one.
        assert report.audit_rows_checked == 5000 + 3500
        assert report.upstream_calls == 3500
    assert second.rss_after_kb <= memory_growth_bound(first.rss_after_kb)
    assert second.rss_peak_kb <= memory_growth_bound(first.rss_peak_kb)


@pytest.mark.timeout(600)
@pytest.mark.anyio
async def test_stdio_clients_through_approver_connect_lose_no_call(tmp_path: Path) -> None:
    report = await run_load(
        tmp_path, transport="bridge", clients=BRIDGE_CLIENTS, calls_per_client=BRIDGE_CALLS
    )
    print("\n".join(report.lines()))
    assert report.ok, report.problems
    # Per client: 36 echo calls, 12 writes of which the limit allows 10, 12 denied deletes.
    assert report.by_kind == {ALLOWED: 460, DENIED: 120, RATE_LIMITED: 20}
    assert report.audit_rows_checked == 600 + 460


@pytest.mark.anyio
async def test_the_check_notices_a_missing_row_and_an_upstream_call_nobody_allowed(tmp_path: Path) -> None:
    async with gateway_process(tmp_path) as gateway:
        report = await run_load(gateway=gateway, clients=2, calls_per_client=10)
        assert report.ok, report.problems
        never_made = LoadCall("load-c00", 99, "echo", {"text": "load-c00-s099"}, ALLOWED)
        with gateway.call_log.open("a") as log:
            log.write(json.dumps({"tool": "echo", "arguments": {"text": "smuggled"}}) + "\n")
        check = check_audit(gateway.paths, gateway.call_log, [never_made], 0, 0)
    assert check.missing_rows == 2  # its decision row and its outcome row
    assert check.extra_rows == 10 + 8  # load-c00's real rows, which no call in this check claims
    assert check.unmatched_upstream_calls == 16 + 1  # the real calls' lines, and the smuggled one
    assert any("smuggled" in problem for problem in check.problems)
    assert check.chain_ok


def test_a_dozen_clients_asking_for_their_first_token_at_once_all_get_one_the_gateway_knows(
    tmp_path: Path,
) -> None:
    # As a dozen `approver connect` processes starting at once: each its own store on one file.
    paths, _ = load_config(tmp_path)
    start = threading.Barrier(12)
    printed: dict[str, str] = {}

    def first_token(client: str) -> None:
        store = TokenStore(paths.tokens_file, backend=keyring.backends.fail.Keyring())
        start.wait()
        printed[client] = store.get_or_create(client)

    threads = [threading.Thread(target=first_token, args=(f"c{index}",)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    gateway_store = TokenStore(paths.tokens_file, backend=keyring.backends.fail.Keyring())
    assert len(printed) == 12
    assert gateway_store.clients() == sorted(printed)
    assert all(gateway_store.authenticate(token) == client for client, token in printed.items())


@pytest.mark.timeout(600)
def test_the_desktop_app_stays_responsive_with_its_audit_window_open_under_http_load(
    qrun: Callable[..., Any], tmp_path: Path
) -> None:
    paths, call_log = load_config(tmp_path)
    gaps: list[float] = []
    shown: list[int] = []  # calls the audit window lists at each tick: rows arrive live

    async def main() -> tuple[int, str, str]:
        async with running_service(paths, keyring_backend=keyring.backends.fail.Keyring()) as service:
            desktop = DesktopApp(
                service,
                tray_available=False,
                autostart=Autostart(
                    ["approver"], environ={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, platform="linux"
                ),
                bridge_command=["approver"],
            )
            audit_window = desktop.open_audit()
            last = time.perf_counter()

            def tick() -> None:
                nonlocal last
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
                shown.append(audit_window.model.rowCount())

            timer = QTimer()
            timer.setInterval(50)
            timer.timeout.connect(tick)
            timer.start()
            try:
                return await asyncio.to_thread(_load_in_subprocess, LoadGateway.attach(paths, call_log))
            finally:
                timer.stop()
                desktop.close()

    returncode, out, err = qrun(main(), 300)
    assert returncode == 0, out + err
    report = json.loads(out)[0]
    ordered = sorted(gaps)
    max_gap, p99_gap = ordered[-1], ordered[int(len(ordered) * 0.99) - 1]
    print(f"\nQt loop: {len(gaps)} ticks, max gap {max_gap * 1000:.0f} ms, p99 {p99_gap * 1000:.0f} ms")
    print(f"load: {report['calls']} calls, {report['calls_per_s']} calls/s, p50 {report['p50_ms']} ms")
    assert report["ok"] and report["answered"] == UI_CLIENTS * UI_CALLS
    assert len(gaps) > 20
    assert max(shown) >= UI_CLIENTS * UI_CALLS // 2
    assert max_gap < UI_MAX_GAP_S


def _load_in_subprocess(gateway: LoadGateway) -> tuple[int, str, str]:
    """Run the load's clients in their own process, so they don't share the Qt process's GIL."""
    argv = [
        sys.executable,
        "-m",
        "approver.testing.load",
        "--attach",
        "--config-dir",
        str(gateway.paths.config_dir),
        "--data-dir",
        str(gateway.paths.data_dir),
        "--call-log",
        str(gateway.call_log),
        "--clients",
        str(UI_CLIENTS),
        "--calls",
        str(UI_CALLS),
        "--json",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=280, check=False)
    return done.returncode, done.stdout, done.stderr
