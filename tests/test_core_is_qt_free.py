"""The core never imports Qt: `approver serve` is the core without the UI."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import approver

SOURCE = Path(approver.__file__).parent
UI_PACKAGES = ("ui",)
"""Subpackages allowed to import Qt (the desktop layer, when it exists)."""


def core_modules() -> list[str]:
    return [
        module.name
        for module in pkgutil.walk_packages([str(SOURCE)], prefix="approver.")
        if not module.name.startswith(tuple(f"approver.{p}" for p in UI_PACKAGES))
        and module.name != "approver.__main__"
    ]


def test_core_modules_import_without_loading_qt() -> None:
    modules = core_modules()
    assert "approver.gateway.gateway" in modules and "approver.policy.engine" in modules
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'qasync'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_core_source_file_mentions_a_qt_import() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|qasync)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(SOURCE))
        for path in SOURCE.rglob("*.py")
        if path.relative_to(SOURCE).parts[0] not in UI_PACKAGES and pattern.search(path.read_text("utf-8"))
    ]
    assert offenders == []
