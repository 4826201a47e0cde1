"""The entry point of the PyInstaller build: ``approver.cli.main:main``, plus ``-m`` and ``-c``.

In a frozen app ``sys.executable`` is the app itself, not a Python interpreter. approver runs
``sys.executable -m approver.demo.server`` for the demo's file server, ``sys.executable -c ...``
for its Qt probe, and ``sys.executable -m approver`` when no ``approver`` script is on PATH.
This script answers those two interpreter options the way ``python`` would, so the same code
works frozen and unfrozen; every other argument list goes to the command line as usual.
"""

from __future__ import annotations

import runpy
import sys


def _run() -> int:
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return 0
    if len(args) >= 2 and args[0] == "-c":
        sys.argv = ["-c", *args[2:]]
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - python -c
        return 0
    from approver.cli.main import main

    return main()


if __name__ == "__main__":
    raise SystemExit(_run())
