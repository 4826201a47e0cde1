"""Ask a separate Python process whether Qt loads here, which platform it gets and if a tray exists.

Qt is never imported in this process: a missing system library makes the import fail, and a
platform plugin that cannot load aborts the whole process (SIGABRT). The probe runs
``python -c`` with a timeout, so a broken Qt install is reported, never fatal. When Qt's
libraries are missing, :func:`apt_packages` names the Debian/Ubuntu packages that provide them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

LIBRARY_PACKAGES: Final[Mapping[str, str]] = {
    "libEGL.so": "libegl1",
    "libGL.so": "libgl1",
    "libOpenGL.so": "libopengl0",
    "libGLX.so": "libglx0",
    "libxkbcommon.so": "libxkbcommon0",
    "libxkbcommon-x11.so": "libxkbcommon-x11-0",
    "libfontconfig.so": "libfontconfig1",
    "libfreetype.so": "libfreetype6",
    "libdbus-1.so": "libdbus-1-3",
    "libglib-2.0.so": "libglib2.0-0",
    "libgthread-2.0.so": "libglib2.0-0",
    "libX11.so": "libx11-6",
    "libX11-xcb.so": "libx11-xcb1",
    "libxcb.so": "libxcb1",
    "libxcb-cursor.so": "libxcb-cursor0",
    "libxcb-icccm.so": "libxcb-icccm4",
    "libxcb-keysyms.so": "libxcb-keysyms1",
    "libxcb-image.so": "libxcb-image0",
    "libxcb-randr.so": "libxcb-randr0",
    "libxcb-render-util.so": "libxcb-render-util0",
    "libxcb-shape.so": "libxcb-shape0",
    "libxcb-xfixes.so": "libxcb-xfixes0",
    "libxcb-xkb.so": "libxcb-xkb1",
}
"""Shared libraries Qt needs on Linux -> the Debian/Ubuntu package that ships each."""

BASE_PACKAGES: Final = ("libegl1", "libgl1", "libxkbcommon0", "libfontconfig1", "libdbus-1-3")
"""What to suggest when Qt fails to load and the message names no library."""

XCB_PACKAGES: Final = (
    "libxcb-cursor0",
    "libxkbcommon-x11-0",
    "libxcb-icccm4",
    "libxcb-keysyms1",
    "libxcb-image0",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xfixes0",
    "libxcb-xkb1",
    "libx11-xcb1",
)
"""What Qt's X11 (xcb) platform plugin needs beyond the base libraries."""

PROBE_TIMEOUT: Final = 30.0
"""Seconds the probe process may take before it counts as hung."""

# importlib instead of import statements: the core must not contain a Qt import (a test greps).
_SCRIPT: Final = """
import importlib, json, sys
out = {}
try:
    core = importlib.import_module("PySide6.QtCore")
    out["qt_version"] = core.qVersion()
    widgets = importlib.import_module("PySide6.QtWidgets")
except ImportError as exc:
    out["import_error"] = str(exc)
    print(json.dumps(out))
    sys.exit(0)
app = widgets.QApplication(["approver-doctor"])
out["platform"] = app.platformName()
out["tray"] = bool(widgets.QSystemTrayIcon.isSystemTrayAvailable())
print(json.dumps(out))
"""

_SONAME: Final = re.compile(r"(lib[A-Za-z0-9_+.-]*?\.so)(?:\.[0-9]+)*")


@dataclass(frozen=True, slots=True)
class QtProbe:
    """What the probe process found; exactly one of ``platform`` and ``problem`` is set."""

    qt_version: str | None = None
    platform: str | None = None
    tray: bool = False
    problem: str | None = None
    """Why Qt did not start: an import error, a platform plugin failure, a crash or a timeout."""
    packages: tuple[str, ...] = ()
    """Debian/Ubuntu packages that probably fix :attr:`problem`."""


def apt_packages(message: str) -> tuple[str, ...]:
    """The packages providing the libraries a Qt error message names (in order, no repeats)."""
    found: list[str] = []
    for match in _SONAME.finditer(message):
        package = LIBRARY_PACKAGES.get(match.group(1))
        if package is not None and package not in found:
            found.append(package)
    for package in XCB_PACKAGES:
        if f"{package.removeprefix('lib')} or {package}" in message and package not in found:
            found.append(package)  # Qt's own hint: "xcb-cursor0 or libxcb-cursor0 is needed"
    return tuple(found)


def apt_hint(message: str) -> str:
    """``sudo apt-get install ...`` for the libraries ``message`` names, else for Qt's usual set."""
    packages = apt_packages(message) or BASE_PACKAGES
    return "sudo apt-get install " + " ".join(packages)


def probe_qt(environ: Mapping[str, str] | None = None, timeout: float = PROBE_TIMEOUT) -> QtProbe:
    """Start Qt in a child process with ``environ`` (default: ours) and report what happened."""
    env = dict(os.environ if environ is None else environ)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return QtProbe(problem=f"Qt did not start within {timeout:g} s")
    lines = done.stdout.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else {}
    except ValueError:
        found = {}
    if "import_error" in found:
        problem = f"PySide6 cannot be loaded: {found['import_error']}"
        return QtProbe(problem=problem, packages=apt_packages(problem) or BASE_PACKAGES)
    if done.returncode != 0 or "platform" not in found:
        return _crash(done.returncode, done.stderr, found.get("qt_version"))
    return QtProbe(
        qt_version=found.get("qt_version"), platform=found["platform"], tray=bool(found.get("tray"))
    )


def _crash(returncode: int, stderr: str, qt_version: str | None) -> QtProbe:
    last = [line.strip() for line in stderr.splitlines() if line.strip()]
    display = re.search(r"could not connect to display ?(\S*)", stderr)
    if display is not None:
        return QtProbe(
            qt_version=qt_version, problem=f"Qt cannot connect to display {display.group(1)}".rstrip()
        )
    plugin = re.search(r'Could not load the Qt platform plugin "([^"]+)"', stderr)
    if plugin is not None:
        named = apt_packages(stderr)
        # Qt names only the first missing library; the rest of the xcb set is often missing too.
        extra = XCB_PACKAGES if plugin.group(1) == "xcb" else BASE_PACKAGES
        packages = named + tuple(p for p in extra if p not in named)
        problem = f'Qt\'s "{plugin.group(1)}" platform plugin cannot load'
        return QtProbe(qt_version=qt_version, problem=problem, packages=packages)
    unknown = re.search(r'Could not find the Qt platform plugin "([^"]+)"', stderr)
    if unknown is not None:
        available = next((line for line in last if line.startswith("Available platform plugins")), "")
        problem = f'Qt has no platform plugin "{unknown.group(1)}" (QT_QPA_PLATFORM). {available}'.strip()
        return QtProbe(qt_version=qt_version, problem=problem)
    detail = next((line for line in last if line.startswith("qt.")), last[-1] if last else "")
    detail = detail or f"exit status {returncode}"
    return QtProbe(
        qt_version=qt_version, problem=f"Qt failed to start: {detail}", packages=apt_packages(stderr)
    )
