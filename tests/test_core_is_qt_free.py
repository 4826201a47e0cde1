"""The core never imports Qt: `approver serve` is the core without the UI."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "approver.calls",
    "approver.schema",
]


def test_core_modules_import_without_qt() -> None:
    code = (
        "import sys, importlib\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'qasync'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
