"""Run every approver benchmark and print one table: each figure, its target and how it compares.

Usage::

    python bench/run_all.py                    # everything, default sizes (about 12 minutes)
    python bench/run_all.py --quick            # small sizes, to check the benchmarks run
    python bench/run_all.py --only http,stdio  # pick benchmarks
    python bench/run_all.py --write-doc        # also rewrite the results in docs/BENCHMARKS.md

Each benchmark runs in a process of its own (so one's memory or Qt state cannot leak into
another's figures) and reports JSON lines; this script adds a few facts about the machine,
prints the table and, with ``--write-doc``, replaces the part of ``docs/BENCHMARKS.md`` between
its results markers (the analysis around them is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from common import CACHE_DIR, Figure

HERE: Final = Path(__file__).resolve().parent
DOC: Final = HERE.parent / "docs" / "BENCHMARKS.md"
START: Final = "<!-- results:start -->"
END: Final = "<!-- results:end -->"
BENCHMARKS: Final = ("http", "timeline", "stdio", "dialog", "audit", "simulate", "held", "cold")
"""Benchmark keys, in the order they run."""


def _commands(args: argparse.Namespace) -> dict[str, list[str]]:
    """The command line of each benchmark module for these options."""
    audit_db = CACHE_DIR / f"audit-{args.audit_rows}.db"
    http = [
        "--calls",
        str(args.calls),
        "--rounds",
        str(args.rounds),
        "--throughput-calls",
        str(args.throughput_calls),
    ]
    if args.baseline:
        http += ["--baseline", args.baseline]
    return {
        "http": ["http_calls.py", *http],
        "timeline": ["call_timeline.py", "--calls", str(args.calls)],
        "stdio": ["stdio_bridge.py", "--calls", str(args.calls), "--rounds", str(args.rounds)],
        "dialog": ["dialog_latency.py", "--calls", str(args.dialog_calls)],
        "audit": ["audit_window.py", str(args.audit_rows), "--db", str(audit_db)],
        "simulate": ["policy_simulate.py", str(args.audit_rows), "--db", str(audit_db)],
        "held": ["held_call.py"],
        "cold": ["cold_start.py", "--starts", str(args.starts)],
    }


def _run(command: list[str]) -> list[Figure]:
    """Run one benchmark module and collect its figures."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, str(HERE / command[0]), *command[1:], "--json"],
        cwd=HERE,
        capture_output=True,
        text=True,
    )
    figures = [Figure(**json.loads(line)) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        figures.append(Figure(command[0], "FAILED", float(result.returncode), "exit status", "runs", False))
    return figures


def disk_flush_ms(samples: int = 100) -> float:
    """p50 of fdatasync after a small append, in the temp directory: the cost of a durable commit."""
    times = []
    with tempfile.NamedTemporaryFile() as handle:
        for _ in range(samples):
            handle.write(b"x" * 200)
            handle.flush()
            start = time.perf_counter()
            os.fdatasync(handle.fileno())
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1000


def machine() -> list[str]:
    """Lines describing this machine and how busy it was."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return [
        f"{cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()};"
        f" Python {platform.python_version()}",
        f"fdatasync of a small write (p50, {tempfile.gettempdir()}): {disk_flush_ms():.2f} ms",
        "load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]


def table(figures: list[Figure]) -> str:
    """The figures as a Markdown table."""
    lines = ["| Benchmark | Measure | Value | Target | Met | Compared |", "|---|---|---:|---|:-:|---|"]
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(f"| {f.benchmark} | {f.measure} | {f.value_text()} | {f.target} | {met} | {f.note} |")
    return "\n".join(lines)


def write_doc(results: str) -> None:
    """Replace the results section of docs/BENCHMARKS.md (or start the file)."""
    text = DOC.read_text("utf-8") if DOC.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{results}\n{END}{tail}", "utf-8")


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that everything runs")
    parser.add_argument("--calls", type=int, default=1000, help="sequential calls per path (latency)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the calls are split into")
    parser.add_argument("--throughput-calls", type=int, default=1000, help="calls per throughput figure")
    parser.add_argument("--dialog-calls", type=int, default=30)
    parser.add_argument("--audit-rows", type=int, default=1_000_000)
    parser.add_argument("--starts", type=int, default=3, help="cold starts of the desktop app")
    parser.add_argument("--baseline", metavar="REV", help="also measure approver at this git revision (HTTP)")
    parser.add_argument("--write-doc", action="store_true", help=f"write the results into {DOC.name}")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds, args.throughput_calls = 100, 2, 160
        args.dialog_calls, args.audit_rows, args.starts = 5, 20_000, 1
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(BENCHMARKS)}"
        )
    facts = machine()
    commands = _commands(args)
    figures: list[Figure] = []
    for key in BENCHMARKS:
        if key in chosen:
            print(f"running {key}: {shlex.join(commands[key])}", file=sys.stderr, flush=True)
            figures += _run(commands[key])
    facts.append("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    command = shlex.join(["python", "bench/run_all.py", *sys.argv[1:]])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = "\n".join(
        [f"Produced by `{command}` on {when}.", "", *(f"- {fact}" for fact in facts), "", table(figures)]
    )
    print(results)
    if args.write_doc:
        write_doc(results)
        print(f"\nwrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
