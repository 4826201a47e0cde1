"""The MCP conformance suite's client scenarios, with approver as the client (pinned npm package).

Every 2025-11-25 and 2025-03-26 authorization scenario, the four non-auth ones and the draft
ones approver passes. Skipped only when Node.js or npm is missing (.ci/run installs both).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from approver.testing import conformance_suite
from approver.testing.conformance_suite import (
    AUTH_2025_03_26,
    AUTH_2025_11_25,
    NON_AUTH,
    SCENARIOS,
    SuiteUnavailable,
    install,
    patch_glob_import,
    run_scenario,
)


@pytest.fixture(scope="module")
def suite() -> Path:
    try:
        return install()
    except SuiteUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_approver_passes_the_conformance_client_scenario(suite: Path, scenario: str, tmp_path: Path) -> None:
    run = run_scenario(suite, scenario, tmp_path)
    assert run.passed, run.output


def test_the_scenario_list_holds_every_required_scenario() -> None:
    assert len(AUTH_2025_11_25) == 14 and len(AUTH_2025_03_26) == 2 and len(NON_AUTH) == 4
    assert set(AUTH_2025_11_25 + AUTH_2025_03_26 + NON_AUTH) <= set(SCENARIOS)


def test_the_node_20_patch_takes_glob_sync_from_the_glob_package(tmp_path: Path) -> None:
    entry = tmp_path / "index.js"
    entry.write_text('import{existsSync as a,globSync as o,mkdtempSync as s}from"fs";o("x");', "utf-8")
    patch_glob_import(entry)
    assert entry.read_text("utf-8") == (
        'import{existsSync as a,mkdtempSync as s}from"fs";import{globSync as o}from"glob";o("x");'
    )


def test_the_node_20_patch_refuses_a_file_it_does_not_recognise(tmp_path: Path) -> None:
    entry = tmp_path / "index.js"
    entry.write_text('import{readFileSync as l}from"fs";', "utf-8")
    with pytest.raises(conformance_suite.SuiteUnavailable, match="pin the suite again"):
        patch_glob_import(entry)
