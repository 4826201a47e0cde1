"""Redaction on hostile input: time against size, against benign text, and what a victim call sees.

Usage: ``python bench/redaction.py [--sizes 262144,1048576,4194304] [--no-gateway]``.

1. ``Redactor.redact_text`` on texts made of one token's start repeated (what made the PEM and
   JWT patterns rescan the rest of the text from every start), at each size, next to benign text
   of the same size. Linear time shows as a time per MiB that stays flat as the size grows and a
   ratio to benign text that stays small. The two patterns as they were are timed too, on small
   sizes only (they are quadratic: 4 MiB would take hours).
2. The stored arguments of a 4 MiB call (``AuditLog`` rows: redacted canonical JSON cut to
   64 KiB), for hostile and benign shapes.
3. With a real gateway: the latency of a victim's allowed calls while other calls send 4 MiB of
   hostile arguments to a tool the policy denies, next to the same calls without them.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from approver.audit.log import ARGUMENTS_CAP, AuditLog
from approver.audit.records import DecisionRecord, canonical_json
from approver.audit.redact import Redactor
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config

MIB = 1024 * 1024
HOSTILE_UNITS = {
    "BEGIN PRIVATE KEY": "-----BEGIN PRIVATE KEY-----",
    "BEGIN words": "-----BEGIN A B C D E F ",
    "END PRIVATE KEY": "-----END PRIVATE KEY-----",
    "eyJ": "eyJ",
    "eyJa.eyJ": "eyJa.eyJ",
    "Bearer": "Bearer ",
    "sk-": "sk-",
    "ghp_": "ghp_",
    "AKIA": "AKIA",
}
BENIGN_UNIT = "The quick brown fox jumps over the lazy dog; path=/home/user/notes.txt n=42\n"
OLD_PATTERNS = {
    "BEGIN PRIVATE KEY": re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
    ),
    "eyJ": re.compile(r"eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
}
"""The two patterns as they were before redaction was made linear (for the "before" figures)."""


def filled(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def best_of(runs: int, job: Callable[[Any], object], argument: Any) -> float:
    """The fastest of ``runs`` timings of ``job(argument)``, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        job(argument)
        times.append(time.perf_counter() - started)
    return min(times)


def text_figures(sizes: list[int]) -> None:
    redactor = Redactor(["kr-9f3c2a71e5b84d06"])
    print("redact_text: seconds (benign: ms per MiB; hostile: ratio to benign text of the same size)")
    header = f"{'input':<20}" + "".join(f"{size // 1024:>12,} KiB" for size in sizes)
    print(header)
    benign = {size: best_of(3, redactor.redact_text, filled(BENIGN_UNIT, size)) for size in sizes}
    print(f"{'benign text':<20}" + "".join(f"{benign[size]:>9.4f} s ({benign[size] / size * MIB * 1000:.0f})"
                                          for size in sizes))  # fmt: skip
    for name, unit in HOSTILE_UNITS.items():
        cells = []
        for size in sizes:
            seconds = best_of(3, redactor.redact_text, filled(unit, size))
            cells.append(f"{seconds:>9.4f} s (x{seconds / benign[size]:.1f})")
        print(f"{name:<20}" + "".join(f"{cell:>16}" for cell in cells))
    print()
    print("the patterns as they were, on the same hostile input (quadratic):")
    for name, pattern in OLD_PATTERNS.items():
        cells = []
        for size in (16 * 1024, 32 * 1024, 64 * 1024, 128 * 1024):
            text = filled(HOSTILE_UNITS[name], size)
            seconds = best_of(1, partial(pattern.sub, ""), text)
            cells.append(f"{size // 1024} KiB {seconds:.3f} s")
        print(f"  {name:<18} " + ", ".join(cells))
    print()


def arguments_figures() -> None:
    shapes: dict[str, Any] = {
        "one hostile string": {"text": filled("-----BEGIN PRIVATE KEY-----", 4 * MIB - 100)},
        "eyJ strings x 500k": {"items": ["eyJ" * 2] * 500_000},
        "200k keys": {f"key{index:06d}": "eyJa.eyJ" for index in range(200_000)},
        "benign 4 MiB text": {"text": filled(BENIGN_UNIT, 4 * MIB - 100)},
        "benign 1M numbers": {"numbers": list(range(700_000))},
    }
    print(f"stored arguments (redacted canonical JSON cut to {ARGUMENTS_CAP // 1024} KiB) of a call:")
    with tempfile.TemporaryDirectory() as root:
        log = AuditLog(Path(root) / "audit.db", Redactor(["kr-9f3c2a71e5b84d06"]))
        for name, value in shapes.items():
            raw = canonical_json(value)
            record = DecisionRecord(
                "c", "bench", "s", "s__t", "t", "read", "low", [], raw, "deny", "policy", "r", "why"
            )
            parsed = DecisionRecord(**{**_fields(record), "value": value})
            from_bytes = best_of(3, log._decision_row, record)
            from_value = best_of(3, log._decision_row, parsed)
            print(
                f"  {name:<20} {len(raw) / MIB:4.1f} MiB: {from_value * 1000:6.1f} ms"
                f" ({from_bytes * 1000:6.1f} ms when the row must parse the JSON again)"
            )
        log.close()
    print()


def _fields(record: DecisionRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


async def gateway_figures(calls: int, hostile: int) -> None:
    policy = {"version": "1", "default": "allow", "tools": {"test__delete_note": {"action": "deny"}}}
    with tempfile.TemporaryDirectory() as root:
        paths = write_config(Path(root), {"test": upstream_entry("test")}, policy)
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("victim")
            attacker = service.tokens.get_or_create("attacker")
            payload = {"note": filled("-----BEGIN PRIVATE KEY-----", 4 * MIB - 1000)}

            async def victim_run() -> list[float]:
                durations = []
                async with legacy_client(service.url, token) as session:
                    for index in range(calls):
                        started = time.perf_counter()
                        await session.call_tool("test__echo", {"text": f"victim {index}"})
                        durations.append((time.perf_counter() - started) * 1000)
                return durations

            quiet = await victim_run()
            loud: list[float] = []
            hostile_times: list[float] = []
            async with legacy_client(service.url, attacker) as bad:

                async def attack() -> None:
                    for _ in range(hostile):
                        started = time.perf_counter()
                        await bad.call_tool("test__delete_note", payload)
                        hostile_times.append(time.perf_counter() - started)

                async def victim() -> None:
                    loud.extend(await victim_run())

                async with anyio.create_task_group() as group:
                    group.start_soon(attack)
                    group.start_soon(victim)
            await service.recorder.flush()
            row = service.audit.query(limit=1000)
            stored = next(r for r in row if r["client"] == "attacker")
    print(f"a victim's {calls} allowed calls through a real gateway (stdio upstream), in ms:")
    print(f"  alone:                                  p50 {_p(quiet, 50):6.1f}  p99 {_p(quiet, 99):6.1f}"
          f"  max {max(quiet):6.1f}")  # fmt: skip
    print(f"  while 4 MiB hostile denied calls run:  p50 {_p(loud, 50):6.1f}  p99 {_p(loud, 99):6.1f}"
          f"  max {max(loud):6.1f}")  # fmt: skip
    print(f"  each hostile call (4 MiB of BEGIN lines, denied and recorded): "
          f"median {statistics.median(hostile_times):.2f} s over {len(hostile_times)}")  # fmt: skip
    print(
        f"  its stored arguments: {len(stored['arguments'])} characters, truncated={stored['args_truncated']}"
    )


def _p(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, len(ordered) * percent // 100)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=f"{256 * 1024},{MIB},{4 * MIB}")
    parser.add_argument("--no-gateway", action="store_true", help="skip the real-gateway figures")
    parser.add_argument("--calls", type=int, default=300, help="victim calls per run")
    parser.add_argument("--hostile", type=int, default=20, help="hostile 4 MiB calls")
    options = parser.parse_args()
    print(f"python {sys.version.split()[0]}; {time.strftime('%Y-%m-%d %H:%M')}\n")
    text_figures([int(size) for size in options.sizes.split(",")])
    arguments_figures()
    if not options.no_gateway:
        anyio.run(gateway_figures, options.calls, options.hostile)


if __name__ == "__main__":
    main()
