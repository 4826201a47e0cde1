"""scripts/reliability_report.py: the document it writes from the suites' reports."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

from approver.testing.fault_report import FaultReport
from approver.testing.fuzz_report import FuzzReport
from approver.testing.limit_report import LimitReport

SCRIPT = Path(__file__).resolve().parent.parent.parent / "scripts" / "reliability_report.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reliability_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def fault(name: str, lost: int = 0) -> FaultReport:
    return FaultReport(
        name, faults=1, calls=10, reached_upstream=8, rows_checked=8, lost=lost, verify_ok=True
    )


def test_the_report_totals_every_suite_and_says_ok_when_nothing_was_lost() -> None:
    script = load_script()
    fuzz = FuzzReport("http", 1, tried=Counter({"malformed-json": 3}), proper_errors=3, upstream_calls=5)
    results = script.Results(faults=[fault("killed-sigkill"), fault("audit-disk-full")], fuzz=[fuzz])

    document = script.render(results, "python scripts/reliability_report.py")

    assert "| Faults | 2 scenarios | 2 faults injected | 20 | 16 | 16 | 0 | ok |" in document
    assert "| `killed-sigkill` | 1 | 10 | 8 | 8 | 0 | 0 | verifies | ok |" in document
    assert "**Lost in total: 0.** Overall: ok." in document
    assert "malformed-json (3)" in document


def test_one_lost_call_fails_the_report_and_is_counted_in_the_total() -> None:
    script = load_script()
    results = script.Results(faults=[fault("killed-os-exit", lost=1)])

    document = script.render(results, "python scripts/reliability_report.py --only faults")

    assert not results.ok
    assert "**Lost in total: 1.** Overall: **FAILED**." in document
    assert "| `killed-os-exit` | 1 | 10 | 8 | 8 | 1 | 0 | verifies | **FAILED** |" in document


def test_hand_written_sections_after_the_marker_survive_a_new_report() -> None:
    script = load_script()
    previous = (
        f"# Reliability report\n\nold figures\n\n{script.HAND_WRITTEN}\n\n## Measured by hand\n\n42 ms\n"
    )
    generated = script.render(
        script.Results(faults=[fault("killed-sigkill")]), "python scripts/reliability_report.py"
    )

    document = script.keep_hand_written(previous, generated)

    assert document.startswith(generated) and "old figures" not in document
    assert document.endswith(f"{script.HAND_WRITTEN}\n\n## Measured by hand\n\n42 ms\n")
    assert script.keep_hand_written("# no marker\n", generated) == generated


def test_each_limit_gets_a_section_with_its_figures_and_a_failed_one_fails_the_report() -> None:
    script = load_script()
    held = LimitReport(
        "header-flood", "max_header_bytes = 64 KiB", "300 MiB of headers", ("closed after 64 KiB",)
    )
    broken = LimitReport(
        "long-line", "MAX_MESSAGE_BYTES = 16 MiB", "a line without end", (), ("memory grew",)
    )
    results = script.Results(limits=[held, broken])

    document = script.render(results, "python scripts/reliability_report.py --only limits")

    assert "### `header-flood`" in document and "- closed after 64 KiB" in document
    assert "- **problem**: memory grew" in document
    assert "| `long-line` | MAX_MESSAGE_BYTES = 16 MiB | a line without end | **FAILED** |" in document
    assert not results.ok and "Overall: **FAILED**." in document
