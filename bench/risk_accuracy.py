"""Measure the risk classifier against the hand-labelled tools in tests/data/labelled_tools.jsonl.

Prints the total, the number of correct classes, the accuracy, a per-class precision/recall
table and every misclassified row; exits 1 when class accuracy is below the target.

    python bench/risk_accuracy.py                  # all rows
    python bench/risk_accuracy.py --split holdout  # only the rows held out from tuning
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from approver.calls import Risk, RiskClass
from approver.policy.risk import classify, describe

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "labelled_tools.jsonl"
TARGET = 0.95


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled tool."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any] | None
    annotations: dict[str, Any] | None
    expected_class: RiskClass
    expected_level: str
    holdout: bool


def load_rows(path: Path = DATA) -> list[Row]:
    """Every labelled row in file order."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        rows.append(
            Row(
                server=raw["server"],
                name=raw["name"],
                description=raw.get("description", ""),
                input_schema=raw.get("input_schema"),
                annotations=raw.get("annotations"),
                expected_class=RiskClass(raw["class"]),
                expected_level=raw["level"],
                holdout=bool(raw.get("holdout", False)),
            )
        )
    return rows


def run(rows: Sequence[Row]) -> list[tuple[Row, Risk]]:
    """The classifier's verdict on each row."""
    return [(row, classify(row.name, row.description, row.input_schema, row.annotations)) for row in rows]


def accuracy(results: Sequence[tuple[Row, Risk]]) -> float:
    """Share of rows whose class matches the label."""
    if not results:
        return 0.0
    return sum(risk.risk_class is row.expected_class for row, risk in results) / len(results)


def report(results: Sequence[tuple[Row, Risk]]) -> str:
    """The printed report: totals, a per-class table and the misclassified rows."""
    total = len(results)
    correct = sum(risk.risk_class is row.expected_class for row, risk in results)
    levels = sum(risk.level.value == row.expected_level for row, risk in results)
    lines = [
        f"total:    {total}",
        f"correct:  {correct}",
        f"accuracy: {100 * accuracy(results):.1f}%  (target {100 * TARGET:.0f}%)",
        f"levels matching the label: {levels}/{total} (informational)",
        "",
        f"{'class':<12}{'labelled':>9}{'predicted':>10}{'precision':>11}{'recall':>8}",
    ]
    for risk_class in RiskClass:
        labelled = sum(row.expected_class is risk_class for row, _ in results)
        predicted = sum(risk.risk_class is risk_class for _, risk in results)
        hits = sum(row.expected_class is risk_class is risk.risk_class for row, risk in results)
        precision = f"{100 * hits / predicted:.0f}%" if predicted else "-"
        recall = f"{100 * hits / labelled:.0f}%" if labelled else "-"
        lines.append(f"{risk_class.value:<12}{labelled:>9}{predicted:>10}{precision:>11}{recall:>8}")
    wrong = [(row, risk) for row, risk in results if risk.risk_class is not row.expected_class]
    lines.append("")
    lines.append(f"misclassified: {len(wrong)}")
    for row, risk in wrong:
        lines.append(f"  {row.server}/{row.name}: expected {row.expected_class.value}, got {describe(risk)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report; return 1 when accuracy is below the target."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=("all", "dev", "holdout"), default="all")
    args = parser.parse_args(argv)
    rows = load_rows()
    if args.split != "all":
        rows = [row for row in rows if row.holdout == (args.split == "holdout")]
    started = time.perf_counter()
    results = run(rows)
    elapsed = time.perf_counter() - started
    print(report(results))
    print(f"\nclassified {len(rows)} tools in {1000 * elapsed:.1f} ms")
    return 0 if accuracy(results) >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
