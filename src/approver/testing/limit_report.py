"""What a limits scenario reports, and how it watches the gateway process it attacks.

A scenario of :mod:`approver.testing.limits` attacks one resource limit of a real gateway and
returns a :class:`LimitReport`: the limit, the attack, what was measured, and the expectations
that did not hold. :class:`ProcessWatch` samples a gateway process's memory, CPU time and open
file descriptors from ``/proc`` while the attack runs (Linux).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import anyio

MIB: Final = 1024 * 1024
SAMPLE_EVERY: Final = 0.02
"""Seconds between two samples of a watched process."""


@dataclass(frozen=True, slots=True)
class LimitReport:
    """What one limits scenario did and measured. Field names are stable (docs read them)."""

    scenario: str
    limit: str
    """The limit and its value, as the docs name it."""
    attack: str
    """What the scenario did to the gateway."""
    figures: tuple[str, ...] = ()
    """What was measured, one line each."""
    problems: tuple[str, ...] = ()
    """Expectations that did not hold; empty when the limit held."""

    @property
    def ok(self) -> bool:
        """Whether every expectation held."""
        return not self.problems

    def to_json(self) -> str:
        """One JSON object (for report scripts)."""
        return json.dumps(asdict(self) | {"ok": self.ok}, ensure_ascii=False)


@dataclass
class Findings:
    """Figures and failed expectations collected while a scenario runs."""

    figures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def figure(self, line: str) -> None:
        """Record a measurement."""
        self.figures.append(line)

    def expect(self, condition: bool, problem: str) -> bool:
        """Record ``problem`` unless ``condition`` holds; returns ``condition``."""
        if not condition:
            self.problems.append(problem)
        return condition

    def report(self, scenario: str, limit: str, attack: str) -> LimitReport:
        """The report of the scenario."""
        return LimitReport(scenario, limit, attack, tuple(self.figures), tuple(self.problems))


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (0 when it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text("ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process ``pid`` has used, in seconds (0 when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text("ascii").rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_files(pid: int) -> int:
    """File descriptors process ``pid`` holds open (0 when they cannot be listed)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class ProcessWatch:
    """Samples of one process's memory, open files and CPU time (see :func:`watching`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_before = rss_bytes(pid)
        self.cpu_before = cpu_seconds(pid)
        self.rss_peak = self.rss_before
        self.files_peak = open_files(pid)
        self.cpu_used = 0.0
        """CPU seconds the process used while watched (set when the watch ends)."""

    async def sample(self) -> None:
        """Sample every :data:`SAMPLE_EVERY` seconds until cancelled."""
        while True:
            self.rss_peak = max(self.rss_peak, rss_bytes(self.pid))
            self.files_peak = max(self.files_peak, open_files(self.pid))
            await anyio.sleep(SAMPLE_EVERY)

    @property
    def rss_growth_mib(self) -> float:
        """How far resident memory rose above its level at the start, at its peak, in MiB."""
        return (self.rss_peak - self.rss_before) / MIB


@asynccontextmanager
async def watching(pid: int) -> AsyncIterator[ProcessWatch]:
    """Watch process ``pid`` while the block runs."""
    watch = ProcessWatch(pid)
    async with anyio.create_task_group() as group:
        group.start_soon(watch.sample)
        try:
            yield watch
        finally:
            group.cancel_scope.cancel()
    watch.cpu_used = cpu_seconds(pid) - watch.cpu_before


def milliseconds(values: Sequence[float]) -> str:
    """``p50 X ms, max Y ms`` of durations in seconds."""
    if not values:
        return "no calls"
    return f"p50 {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"
