"""Install the pinned MCP conformance suite and run its client scenarios with approver as the client.

The suite is the npm package ``@modelcontextprotocol/conformance``, pinned with its whole
dependency tree by the ``package.json`` and ``package-lock.json`` in ``tests/data/conformance``.
:func:`install` runs ``npm ci`` into a cache directory (once per lock file); on Node 20, which
lacks ``fs.globSync``, it takes that one import from the ``glob`` package instead.
:func:`run_scenario` runs one client scenario against ``python -m
approver.testing.conformance_client``.

``python -m approver.testing.conformance_suite [SCENARIO ...]`` runs :data:`SCENARIOS` (or the
ones named) and prints one line per scenario.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PACKAGE_DIR: Final = Path(__file__).resolve().parents[3] / "tests" / "data" / "conformance"
"""Where the pinned ``package.json`` and ``package-lock.json`` live (in a checkout)."""
MIN_NODE: Final = 20
AUTH_2025_11_25: Final = (
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
)
AUTH_2025_03_26: Final = (
    "auth/2025-03-26-oauth-metadata-backcompat",
    "auth/2025-03-26-oauth-endpoint-fallback",
)
AUTH_DRAFT: Final = (
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
)
"""Scenarios of the next spec version; they pass too, and are kept passing."""
AUTH_EXTENSIONS: Final = ("auth/client-credentials-basic", "auth/client-credentials-jwt")
"""The client-credentials extension (machine-to-machine upstreams)."""
NON_AUTH: Final = ("initialize", "tools_call", "elicitation-sep1034-client-defaults", "sse-retry")
SCENARIOS: Final = NON_AUTH + AUTH_2025_11_25 + AUTH_2025_03_26 + AUTH_DRAFT + AUTH_EXTENSIONS
"""Every client scenario approver passes. Not run: the cross-app-access extension (an enterprise
identity provider's token exchange, which approver does not implement)."""

_FS_IMPORT: Final = re.compile(r"import\{([^}]*?),globSync as (\w+),([^}]*)\}from\"fs\";")


class SuiteUnavailable(Exception):
    """Node or npm is missing or too old; the message says what to install."""


@dataclass(frozen=True)
class ScenarioRun:
    """The outcome of one scenario."""

    scenario: str
    passed: bool
    output: str


def cache_root() -> Path:
    """Where the suite is installed: ``$XDG_CACHE_HOME/approver`` (``~/.cache/approver``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "approver"


def node_major(node: str) -> int:
    """The major version of the ``node`` executable."""
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return int(version.strip().lstrip("v").split(".")[0])


def find_tools() -> tuple[str, str]:
    """``(node, npm)``; raises SuiteUnavailable when either is missing or Node is too old."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SuiteUnavailable(
            "the MCP conformance suite needs Node.js >= 20 and npm on PATH (.ci/run installs them)"
        )
    if node_major(node) < MIN_NODE:
        raise SuiteUnavailable(f"the MCP conformance suite needs Node.js >= {MIN_NODE}; {node} is older")
    return node, npm


def install(package_dir: Path = PACKAGE_DIR) -> Path:
    """Install the pinned suite (once per lock file); returns the path of its ``dist/index.js``."""
    node, npm = find_tools()
    lock = (package_dir / "package-lock.json").read_bytes()
    target = cache_root() / f"conformance-{hashlib.sha256(lock).hexdigest()[:16]}-node{node_major(node)}"
    entry = target / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    if (target / ".installed").exists() and entry.exists():
        return entry
    cache_root().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="conformance-", dir=cache_root()))
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(package_dir / name, staging / name)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=staging, check=True, timeout=600
    )
    staged_entry = staging / entry.relative_to(target)
    if node_major(node) < 22:
        patch_glob_import(staged_entry)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    (target / ".installed").write_text("ok\n", "utf-8")
    return entry


def patch_glob_import(entry: Path) -> None:
    """Take ``globSync`` from the ``glob`` package rather than ``fs`` (Node 20 has no ``fs.globSync``)."""
    text = entry.read_text("utf-8")
    patched, count = _FS_IMPORT.subn(
        lambda m: (
            f'import{{{m.group(1)},{m.group(3)}}}from"fs";import{{globSync as {m.group(2)}}}from"glob";'
        ),
        text,
        count=1,
    )
    if count != 1:
        raise SuiteUnavailable(
            f"{entry}: the fs import to patch for Node 20 was not found; pin the suite again"
        )
    entry.write_text(patched, "utf-8")


def run_scenario(entry: Path, scenario: str, work: Path, timeout_ms: int = 60_000) -> ScenarioRun:
    """Run one client scenario with approver as the client."""
    node, _ = find_tools()
    # The suite splits its --command on spaces: a script with a plain path is safe wherever Python lives.
    client = work / "approver-client"
    client.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m approver.testing.conformance_client "$@"\n', "utf-8"
    )
    client.chmod(0o755)
    result = subprocess.run(
        [
            node,
            str(entry),
            "client",
            "--command",
            str(client),
            "--scenario",
            scenario,
            "--timeout",
            str(timeout_ms),
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=timeout_ms / 1000 + 60,
    )
    output = result.stdout + result.stderr
    return ScenarioRun(scenario, result.returncode == 0 and "OVERALL: PASSED" in output, output)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the scenarios and print one line each; exit 1 when any failed."""
    scenarios = list(argv if argv is not None else sys.argv[1:]) or list(SCENARIOS)
    entry = install()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="approver-conformance-") as work:
        for scenario in scenarios:
            run = run_scenario(entry, scenario, Path(work))
            failed += not run.passed
            print(f"{'PASS' if run.passed else 'FAIL'} {scenario}", flush=True)
            if not run.passed:
                print(run.output, flush=True)
    print(f"{len(scenarios) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
