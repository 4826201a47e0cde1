"""What a desktop user installs: the wheel's data, the desktop entry and the one-folder app."""

from __future__ import annotations

import configparser
import importlib.util
import os
import selectors
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

import approver
from approver.config.autostart import Autostart, icon_file

ROOT = Path(__file__).resolve().parent.parent
DESKTOP_FILE = ROOT / "packaging" / "linux" / "approver.desktop"
SPEC = ROOT / "packaging" / "pyinstaller" / "approver.spec"
BUILD_ENV = "APPROVER_TEST_PYINSTALLER"
REQUIRED_KEYS = ("Type", "Name", "Exec", "Icon", "Comment", "Terminal", "Categories")


def read_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def validate(path: Path) -> None:
    """desktop-file-validate's verdict when it is installed (apt install desktop-file-utils)."""
    tool = shutil.which("desktop-file-validate")
    if tool is not None:
        result = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0 and "error" not in result.stdout, result.stdout


def test_the_desktop_entry_launches_approver_with_its_themed_icon() -> None:
    entry = read_entry(DESKTOP_FILE)
    assert all(entry.get(key) for key in REQUIRED_KEYS), entry
    assert entry["Type"] == "Application" and entry["Exec"] == "approver" and entry["Icon"] == "approver"
    assert entry["Terminal"] == "false" and entry["Categories"].endswith(";")
    validate(DESKTOP_FILE)


def test_the_autostart_entry_agrees_with_the_desktop_entry_and_points_at_the_packaged_icon(
    tmp_path: Path,
) -> None:
    autostart = Autostart(
        ["/opt/approver/approver"], environ={"XDG_CONFIG_HOME": str(tmp_path)}, platform="linux"
    )
    autostart.set_enabled(True)
    written = read_entry(autostart.path)
    menu = read_entry(DESKTOP_FILE)
    assert {k: written[k] for k in ("Type", "Name", "Comment")} == {
        k: menu[k] for k in ("Type", "Name", "Comment")
    }
    icon = icon_file()
    assert icon is not None and written["Icon"] == str(icon)
    validate(autostart.path)


def test_the_packaged_icon_is_the_one_in_resources() -> None:
    icon = icon_file()
    assert icon is not None and icon.read_bytes() == (ROOT / "resources" / "approver.svg").read_bytes()


def test_a_built_wheel_holds_the_schemas_the_icon_and_py_typed(tmp_path: Path) -> None:
    # Build from a copy, so the build leaves nothing behind in the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "out"), str(source)],
        check=True,
        capture_output=True,
        timeout=110,
    )
    (wheel,) = (tmp_path / "out").glob("approver-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    schemas = {p.name for p in (ROOT / "src" / "approver" / "config" / "schemas").glob("*.json")}
    assert {"policy.schema.json", "servers.schema.json", "settings.schema.json"} <= schemas
    assert {f"approver/config/schemas/{name}" for name in schemas} <= names
    assert {"approver/resources/approver.svg", "approver/py.typed", "approver/cli/main.py"} <= names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The stderr ``serve`` wrote up to its "listening" line; fails if it ends or stays silent."""
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while b"gateway listening on" not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no 'listening' line within {timeout} s: {seen.decode()}"
            if selector.select(remaining):
                line = process.stderr.readline()
                assert line, f"the app exited before serving: {seen.decode()}"
                seen += line
    return seen.decode()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10):  # noqa: S310 - a loopback URL we built
            return 200
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.timeout(1200)
@pytest.mark.skipif(
    os.environ.get(BUILD_ENV) != "1" or importlib.util.find_spec("PyInstaller") is None,
    reason=f"builds the PyInstaller app (minutes): set {BUILD_ENV}=1 and pip install -e '.[packaging]'",
)
def test_the_pyinstaller_build_starts_checks_a_policy_and_serves(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(tmp_path / "dist"),
            "--workpath",
            str(tmp_path / "build"),
            str(SPEC),
        ],
        check=True,
        timeout=1100,
    )
    app = tmp_path / "dist" / "approver" / "approver"
    dirs = ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data")]
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }

    def run(*args: str) -> str:
        return subprocess.run(
            [str(app), *args], check=True, capture_output=True, text=True, env=env, timeout=120
        ).stdout

    assert run("--version").strip() == f"approver {approver.__version__}"
    assert run(*dirs, "policy", "check").startswith("ok:")
    assert "--root" in run("-m", "approver.demo.server", "--help")
    probe = (
        "from importlib import resources; from PySide6.QtWidgets import QApplication; "
        "from PySide6.QtGui import QIcon; app = QApplication([]); "
        "icon = QIcon(str(resources.files('approver') / 'resources' / 'approver.svg')); "
        "print(app.platformName(), icon.pixmap(32, 32).isNull())"
    )
    assert run("-c", probe).split() == ["offscreen", "False"]
    port = free_port()
    serve = subprocess.Popen([str(app), *dirs, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE)
    try:
        wait_until_listening(serve, timeout=60)
        assert http_status(f"http://127.0.0.1:{port}/mcp") == 401  # up, and wants a token
    finally:
        serve.terminate()
        _, stderr = serve.communicate(timeout=30)
    assert serve.returncode == 0, stderr.decode()
