"""Run approver's fault, fuzz, load and limits suites and write their figures to docs/RELIABILITY.md.

    python scripts/reliability_report.py            # everything, full size (about 15-20 minutes)
    python scripts/reliability_report.py --quick    # smaller fuzz and load runs, for a smoke check
    python scripts/reliability_report.py --only faults --output /tmp/r.md

Every suite runs against real processes: `approver serve` and `approver connect` subprocesses,
the package's test MCP server (which logs every call it receives to a file), real SQLite audit
logs. Each suite's report says what reached an upstream without a committed decision row;
that figure, "lost", must be zero everywhere. The limits suite attacks each resource limit
and reports what it measured. The exit status is 1 when any suite found a problem, and the
document says which.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import keyring.backends.fail

from approver import __version__
from approver.testing.fault_report import FaultReport
from approver.testing.faults import SCENARIOS, run_scenarios
from approver.testing.fuzz import connect_command, run_bridge_fuzz, run_http_fuzz
from approver.testing.fuzz_report import FuzzReport
from approver.testing.harness import running_service, upstream_entry, write_config
from approver.testing.limit_report import LimitReport
from approver.testing.limits import run_limits
from approver.testing.load.calls import LoadReport
from approver.testing.load.run import gateway_process, run_load

ROOT = Path(__file__).resolve().parent.parent
FUZZ_POLICY = {"version": "1", "default": "allow", "tools": {"test__delete_note": {"action": "deny"}}}


@dataclass
class Results:
    """What the suites found, for the document."""

    faults: list[FaultReport] = field(default_factory=list)
    fuzz: list[FuzzReport] = field(default_factory=list)
    load: list[LoadReport] = field(default_factory=list)
    limits: list[LimitReport] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every suite that ran passed."""
        reports: list[FaultReport | FuzzReport | LoadReport | LimitReport] = [
            *self.faults,
            *self.fuzz,
            *self.load,
            *self.limits,
        ]
        return all(r.ok for r in reports)


# -- running the suites ---------------------------------------------------------------------------


def run_faults(root: Path) -> list[FaultReport]:
    """Every fault scenario, one after another."""
    return run_scenarios(list(SCENARIOS), root / "faults")


async def run_fuzz(root: Path, seed: int, count: int) -> list[FuzzReport]:
    """The HTTP and the bridge fuzz loops against one gateway whose upstream logs its calls."""
    call_log = root / "fuzz-calls.jsonl"
    paths = write_config(
        root / "fuzz", {"test": upstream_entry("test", "--call-log", str(call_log))}, FUZZ_POLICY
    )
    backend = keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]
    async with running_service(paths, keyring_backend=backend) as service:
        token = service.tokens.get_or_create("fuzzer")
        other = service.tokens.get_or_create("other-fuzzer")
        http = await run_http_fuzz(
            service.url,
            token,
            seed=seed,
            count=count,
            other_token=other,
            call_log=call_log,
            audit_db=paths.audit_db,
        )
        service.tokens.get_or_create("fuzz")  # the bridge's client
        bridge = await run_bridge_fuzz(
            connect_command(paths.data_dir, paths.config_dir),
            seed=seed,
            count=count,
            call_log=call_log,
            audit_db=paths.audit_db,
            env=dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"),
        )
    return [http, bridge]


async def run_loads(root: Path, clients: int, calls: int) -> list[LoadReport]:
    """Two HTTP rounds on one gateway (the second shows whether memory keeps growing), then the bridge."""
    reports = []
    async with gateway_process(root / "load-http") as gateway:
        for label in ("round1", "round2"):
            reports.append(
                await run_load(
                    gateway=gateway, transport="http", clients=clients, calls_per_client=calls, label=label
                )
            )
    reports.append(
        await run_load(
            root / "load-bridge", transport="bridge", clients=clients, calls_per_client=calls, label="bridge"
        )
    )
    return reports


def timed(results: Results, name: str, job: Callable[[], None]) -> None:
    started = time.monotonic()
    print(f"running {name}...", file=sys.stderr, flush=True)
    job()
    results.seconds[name] = time.monotonic() - started
    print(f"{name} done in {results.seconds[name]:.0f} s", file=sys.stderr, flush=True)


# -- the document ---------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "ok" if ok else "**FAILED**"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]


def _load_lost(report: LoadReport) -> int:
    return report.lost + report.unmatched_upstream_calls + report.missing_rows


HAND_WRITTEN: Final = (
    "<!-- Sections from here on are measured and written by hand; this script keeps them. -->"
)
"""Where the generated report ends: what follows it in the existing file is kept on every run."""


def keep_hand_written(previous: str, generated: str) -> str:
    """``generated`` followed by the hand-written sections of ``previous`` (from :data:`HAND_WRITTEN` on)."""
    at = previous.find(HAND_WRITTEN)
    return generated if at < 0 else generated + "\n" + previous[at:]


def render(results: Results, command: str) -> str:
    """docs/RELIABILITY.md."""
    faults, fuzz, load = results.faults, results.fuzz, results.load
    lost = (
        sum(r.lost for r in faults) + sum(len(r.undecided_calls) for r in fuzz) + sum(map(_load_lost, load))
    )
    machine = (
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    rows: list[list[object]] = []
    if faults:
        rows.append(
            [
                "Faults",
                f"{len(faults)} scenarios",
                f"{sum(r.faults for r in faults)} faults injected",
                sum(r.calls for r in faults),
                sum(r.reached_upstream for r in faults),
                sum(r.rows_checked for r in faults),
                sum(r.lost for r in faults),
                _mark(all(r.ok for r in faults)),
            ]
        )
    if fuzz:
        upstream = sum(r.upstream_calls or 0 for r in fuzz)
        rows.append(
            [
                "Fuzz",
                f"{len(fuzz)} loops",
                f"{sum(r.total for r in fuzz)} hostile inputs",
                f"{sum(r.liveness_checks for r in fuzz)} liveness checks",
                upstream,
                upstream,
                sum(len(r.undecided_calls) for r in fuzz),
                _mark(all(r.ok for r in fuzz)),
            ]
        )
    if load:
        rows.append(
            [
                "Load",
                f"{len(load)} rounds",
                "-",
                sum(r.calls for r in load),
                sum(r.upstream_calls for r in load),
                sum(r.audit_rows_checked for r in load),
                sum(map(_load_lost, load)),
                _mark(all(r.ok for r in load)),
            ]
        )
    if results.limits:
        limits = results.limits
        attacks = f"{len(limits)} attacks"
        rows.append(
            [
                "Limits",
                f"{len(limits)} scenarios",
                attacks,
                "-",
                "-",
                "-",
                0,
                _mark(all(r.ok for r in limits)),
            ]
        )
    out = [
        "# Reliability report",
        "",
        f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"(approver {__version__}, {machine}).",
        "",
        "Every figure comes from real processes: `approver serve` and `approver connect` subprocesses,",
        "the package's test MCP server logging each call it receives (fsynced) to a file, and real",
        'SQLite audit logs. "Lost" counts calls that reached an upstream without a committed decision',
        "row, calls that got no answer, and audit rows that are missing; it must be zero.",
        "",
        *_table(
            [
                "Suite",
                "Runs",
                "Inputs / faults",
                "Calls made",
                "Reached an upstream",
                "Rows checked",
                "Lost",
                "Result",
            ],
            rows,
        ),
        "",
        f"**Lost in total: {lost}.** Overall: {_mark(results.ok)}.",
        "",
    ]
    out += (
        _faults_section(faults) + _fuzz_section(fuzz) + _load_section(load) + _limits_section(results.limits)
    )
    out += ["## Run time", ""] + [f"- {name}: {seconds:.0f} s" for name, seconds in results.seconds.items()]
    return "\n".join(out) + "\n"


def _faults_section(reports: list[FaultReport]) -> list[str]:
    if not reports:
        return []
    header = [
        "Scenario",
        "Faults",
        "Calls",
        "Reached upstream",
        "Rows checked",
        "Lost",
        "Denied",
        "Chain",
        "Result",
    ]
    rows = [
        [
            f"`{r.scenario}`",
            r.faults,
            r.calls,
            r.reached_upstream,
            r.rows_checked,
            r.lost,
            r.denied,
            "verifies" if r.verify_ok else "**broken**",
            _mark(r.ok),
        ]
        for r in reports
    ]
    out = [
        "## Faults",
        "",
        "Each scenario injects a fault into a running gateway and checks what users and agents see.",
        '"Denied" counts calls answered with a tool error that names the fault. Run one scenario',
        "with `python -m approver.testing.faults run NAME`.",
        "",
        *_table(header, rows),
        "",
        "What the scenarios observed:",
        "",
    ]
    for r in reports:
        out += [f"- `{r.scenario}`: {_cell(finding)}" for finding in r.findings[:3]]
        out += [f"- `{r.scenario}` **problem**: {_cell(problem)}" for problem in r.problems]
    return [*out, ""]


def _fuzz_section(reports: list[FuzzReport]) -> list[str]:
    if not reports:
        return []
    header = [
        "Target",
        "Seed",
        "Inputs",
        "Categories",
        "Proper errors",
        "Served",
        "Ignored",
        "Unexpected",
        "Gateway failures",
        "Upstream calls",
        "Without a decision",
        "Result",
    ]
    rows = [
        [
            r.target,
            r.seed,
            r.total,
            len(r.tried),
            r.proper_errors,
            r.served,
            r.ignored,
            len(r.unexpected),
            len(r.gateway_failures),
            r.upstream_calls,
            len(r.undecided_calls),
            _mark(r.ok),
        ]
        for r in reports
    ]
    out = [
        "## Fuzz",
        "",
        "Seeded hostile inputs (`approver.testing.fuzz`), each followed by a valid call that must still",
        'be served. "Proper errors" are JSON-RPC errors, tool errors or HTTP 4xx answers with a',
        'message; "ignored" are notifications, which get no answer.',
        "",
        *_table(header, rows),
    ]
    for r in reports:
        categories = ", ".join(f"{name} ({count})" for name, count in sorted(r.tried.items()))
        out += ["", f"{r.target} categories: {categories}."]
        out += [f"- unexpected: {_cell(line)}" for line in r.unexpected[:10]]
        out += [f"- failure: {_cell(line)}" for line in r.gateway_failures[:10]]
    return [*out, ""]


def _load_section(reports: list[LoadReport]) -> list[str]:
    if not reports:
        return []
    mib = 1024
    header = [
        "Round",
        "Clients x calls",
        "Answered",
        "Twice",
        "Lost",
        "Unexpected",
        "Decisions",
        "Rows checked",
        "Missing",
        "Chain",
        "Calls/s",
        "p50 ms",
        "p99 ms",
        "RSS before/after/peak MiB",
        "Result",
    ]
    rows = [
        [
            f"{index}: {r.transport}",
            f"{r.clients} x {r.calls_per_client}",
            r.answered,
            r.answered_twice,
            r.lost,
            r.unexpected,
            ", ".join(f"{kind} {count}" for kind, count in sorted(r.by_kind.items())),
            r.audit_rows_checked,
            r.missing_rows,
            "intact" if r.chain_ok else "**broken**",
            f"{r.calls_per_s:.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.rss_before_kb / mib:.0f} / {r.rss_after_kb / mib:.0f} / {r.rss_peak_kb / mib:.0f}",
            _mark(r.ok),
        ]
        for index, r in enumerate(reports, 1)
    ]
    out = [
        "## Load",
        "",
        "Concurrent clients, each making sequential calls under a mixed policy: an allowed tool, a",
        "denied tool and a rate-limited tool (`approver.testing.load`). The gateway runs as its own",
        "`approver serve` process with durable audit writes; its memory is sampled every 50 ms. HTTP",
        "rounds mix both protocol eras; bridge rounds run one `approver connect` process per client.",
        "",
        *_table(header, rows),
    ]
    http = [r for r in reports if r.transport == "http"]
    if len(http) >= 2:
        first, second = http[0].rss_after_kb / mib, http[1].rss_after_kb / mib
        out += [
            "",
            f"Memory: the gateway's RSS after the first HTTP round was {first:.0f} MiB and after the "
            f"second {second:.0f} MiB ({second - first:+.1f} MiB).",
        ]
    for r in reports:
        out += [f"- {r.transport} problem: {_cell(problem)}" for problem in r.problems[:10]]
    return [*out, ""]


BEFORE = {
    "long-line": "Before this limit the gateway read such a line to its end: 1.5 GiB of memory was seen.",
    "endless-cursor": "Before this limit the listing never ended, and the server never became ready.",
    "list-changed-flood": (
        "Before, every notification was a relisting of its own, in a task of its own: 20,000 of them took"
        " 19.3 s of an `approver serve` process's CPU on this machine (1.0 s with the limit)."
    ),
    "half-sent-requests": (
        "Before these limits, on the same machine with the same 1,024 open files: the gateway held all"
        " 1,024, a real client's call failed after 30 s, and 80 s later (past the 75 s keep-alive"
        " timeout) all 1,024 were still held."
    ),
    "slow-body": "Before this limit a stalled body held its connection for good.",
    "header-flood": "Before this limit every header line was kept: 300 MiB of them were held in memory.",
    "sessions-per-client": (
        "Before this limit one client could open all 10,000 sessions the SDK allows, and every other"
        " client's initialize got 503."
    ),
    "calls-waiting-per-client": "Before this limit all 1,500 calls waited in the approval window.",
    "hostile-redaction": (
        "Before, redaction was quadratic on this input: half a megabyte of it stalled every client for"
        " about a minute (bench/redaction.py times the old patterns)."
    ),
}
"""What each attack did before its limit existed: measured on the code before the limits where
the figure says so, otherwise from the review that asked for them (issue 16)."""


def _limits_section(reports: list[LimitReport]) -> list[str]:
    if not reports:
        return []
    out = [
        "## Limits",
        "",
        "Each scenario attacks one resource limit of a real gateway (`approver.testing.limits`): a",
        "hostile upstream, a hostile client, or any local program. A limit, when hit, gives the",
        "offender a clear error and writes a log line or an audit row, and nobody else notices. Run",
        "one scenario with `python -m approver.testing.limits run NAME`; the README lists the limits.",
        "",
        *_table(
            ["Scenario", "Limit", "Attack", "Result"],
            [[f"`{r.scenario}`", r.limit, r.attack, _mark(r.ok)] for r in reports],
        ),
    ]
    for r in reports:
        out += ["", f"### `{r.scenario}`", "", f"Limit: {r.limit}. Attack: {r.attack}.", ""]
        out += [f"- {_cell(figure)}" for figure in r.figures]
        out += [f"- **problem**: {_cell(problem)}" for problem in r.problems]
        if r.scenario in BEFORE:
            out += ["", BEFORE[r.scenario]]
    return [*out, ""]


# -- command line ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suites, write the report, exit 1 if anything was lost or failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=["faults", "fuzz", "load", "limits"], action="append", help="run only these suites"
    )
    parser.add_argument("--quick", action="store_true", help="smaller fuzz and load runs")
    parser.add_argument("--seed", type=int, default=1, help="fuzz seed (default 1)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "RELIABILITY.md")
    args = parser.parse_args(argv)
    suites = args.only or ["faults", "fuzz", "load", "limits"]
    fuzz_count = 60 if args.quick else 300
    clients, calls = (10, 20) if args.quick else (50, 100)
    results = Results()
    with tempfile.TemporaryDirectory(prefix="approver-reliability-") as scratch:
        root = Path(scratch)
        if "faults" in suites:
            timed(results, "faults", lambda: results.faults.extend(run_faults(root)))
        if "fuzz" in suites:
            timed(
                results,
                "fuzz",
                lambda: results.fuzz.extend(asyncio.run(run_fuzz(root, args.seed, fuzz_count))),
            )
        if "load" in suites:
            timed(results, "load", lambda: results.load.extend(asyncio.run(run_loads(root, clients, calls))))
        if "limits" in suites:
            timed(results, "limits", lambda: results.limits.extend(asyncio.run(run_limits(root / "limits"))))
    command = "python scripts/reliability_report.py" + (" " + " ".join(argv) if argv else "")
    previous = args.output.read_text("utf-8") if args.output.exists() else ""
    args.output.write_text(keep_hand_written(previous, render(results, command)), "utf-8")
    print(f"wrote {args.output}: {'ok' if results.ok else 'PROBLEMS FOUND'}", file=sys.stderr)
    return 0 if results.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
