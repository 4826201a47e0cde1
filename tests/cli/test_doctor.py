"""``approver doctor``: each check against the real thing it checks, and the command end to end."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring.backends.fail
import pytest

from approver.cli.doctor import (
    Status,
    check_clients,
    check_keyring,
    check_policy,
    check_port,
    check_pyside,
    check_python,
    check_qt,
    check_servers,
)
from approver.cli.qt_probe import apt_packages, probe_qt
from approver.config.paths import Paths
from approver.config.schema import schema_uri
from approver.config.servers import SecretResolver
from approver.testing.harness import (
    LockedKeyring,
    MemoryKeyring,
    running_service,
    upstream_entry,
    write_config,
)
from approver.testing.squatter import can_squat, squatter

TIMEOUT = 90


# -- Python and Qt --------------------------------------------------------------------------------


def test_python_older_than_3_11_fails() -> None:
    assert check_python((3, 10, 12)).status is Status.FAIL
    assert check_python((3, 11, 2)).status is Status.OK
    assert "3.11.2" in check_python((3, 11, 2)).detail


def test_pyside_6_12_fails_on_python_3_11_only_and_says_which_version_to_install() -> None:
    bad = check_pyside("6.12.0", (3, 11))
    assert bad.status is Status.FAIL and "<6.12" in bad.fix
    assert check_pyside("6.12.0", (3, 12)).status is Status.OK
    assert check_pyside("6.11.3", (3, 11)).status is Status.OK
    assert check_pyside(None, (3, 11)).status is Status.FAIL


def test_missing_qt_libraries_map_to_the_debian_packages_that_ship_them() -> None:
    assert apt_packages("libEGL.so.1: cannot open shared object file: No such file or directory") == (
        "libegl1",
    )
    assert apt_packages("libxkbcommon.so.0: cannot open; libGL.so.1 too; libEGL.so.1") == (
        "libxkbcommon0",
        "libgl1",
        "libegl1",
    )
    qt_hint = "qt.qpa.plugin: From 6.5.0, xcb-cursor0 or libxcb-cursor0 is needed to load the Qt xcb plugin."
    assert apt_packages(qt_hint) == ("libxcb-cursor0",)
    assert apt_packages("something else went wrong") == ()


def test_without_a_display_qt_is_still_checked_offscreen_and_display_and_tray_are_warnings() -> None:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    checks = {c.name: c for c in check_qt(environ, timeout=60)}
    assert checks["qt"].status is Status.OK and checks["qt"].detail.startswith("Qt 6.")
    assert checks["display"].status is Status.WARN and "DISPLAY" in checks["display"].detail
    assert checks["tray"].status is Status.WARN


def test_a_qt_that_cannot_load_its_libraries_is_reported_with_packages_not_a_crash(tmp_path: Path) -> None:
    # A PySide6 whose import fails the way a missing system library makes it fail.
    fake = tmp_path / "PySide6"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise ImportError('libEGL.so.1: cannot open shared object file: No such file or directory')\n"
    )
    probe = probe_qt(dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=60)
    assert probe.problem is not None and "libEGL.so.1" in probe.problem
    assert probe.packages == ("libegl1",)


def test_a_qt_platform_plugin_that_aborts_the_process_is_reported_not_fatal() -> None:
    checks = check_qt(dict(os.environ, QT_QPA_PLATFORM="no-such-platform"), timeout=60)
    assert [c.name for c in checks] == ["qt"]
    assert checks[0].status is Status.FAIL and "no-such-platform" in checks[0].detail
    assert "offscreen" in checks[0].detail and "QT_QPA_PLATFORM" in checks[0].fix


# -- keyring --------------------------------------------------------------------------------------


def test_keyring_kinds_are_told_apart() -> None:
    assert check_keyring(MemoryKeyring()).status is Status.OK
    locked = check_keyring(LockedKeyring())
    assert locked.status is Status.FAIL and "unlock" in locked.detail
    missing = check_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    assert missing.status is Status.WARN and "gnome-keyring" in missing.fix


def test_a_keyring_that_never_answers_is_a_warning_after_the_timeout() -> None:
    release = threading.Event()

    class Prompting(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            release.wait(30)  # like a Secret Service waiting on its unlock prompt
            return None

    try:
        result = check_keyring(Prompting(), timeout=0.2)
    finally:
        release.set()
    assert result.status is Status.WARN and "did not answer" in result.detail


# -- the port -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def other_http_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.RequestHandlerClass.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_free_port_is_ok() -> None:
    result = check_port(_free_port())
    assert result.status is Status.OK and "free" in result.detail


def test_a_port_held_by_another_web_server_fails_and_says_to_use_another_port(other_http_server: int) -> None:
    result = check_port(other_http_server)
    assert result.status is Status.FAIL and "another program" in result.detail and "--port" in result.fix


def test_a_port_held_by_something_that_is_not_http_fails() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def close_at_once() -> None:
            connection, _ = listener.accept()
            connection.close()

        thread = threading.Thread(target=close_at_once, daemon=True)
        thread.start()
        result = check_port(port)
        thread.join(10)
    assert result.status is Status.FAIL and "does not answer HTTP" in result.detail


def test_a_port_held_by_another_program_of_yours_names_its_process(other_http_server: int) -> None:
    result = check_port(other_http_server)

    assert result.status is Status.FAIL
    assert f"it is held by pid {os.getpid()} (" in result.detail and "user " in result.detail


@pytest.mark.skipif(not can_squat(), reason="starting a program as another user needs root")
def test_another_users_program_answering_like_approver_fails_the_port_check_and_takes_no_token() -> None:
    with squatter() as (port, process):
        result = check_port(port)
        also_with_a_gateway_json = check_port(port, running_pid=os.getpid())

    for check in (result, also_with_a_gateway_json):
        assert check.status is Status.FAIL
        assert (
            f"held by pid {process.pid}" in check.detail
            and "user nobody (uid 65534), not by you" in check.detail
        )
        assert "approver connect" in check.fix and "--port" in check.fix


def test_a_running_approver_is_recognised_by_its_front_door(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {})

    async def scenario() -> tuple[Status, str, Status]:
        async with running_service(paths) as service:
            ours = await asyncio.to_thread(check_port, service.port, os.getpid())
            foreign = await asyncio.to_thread(check_port, service.port, None)
            return ours.status, ours.detail, foreign.status

    status, detail, foreign = asyncio.run(scenario())
    assert status is Status.OK and f"pid {os.getpid()}" in detail
    assert foreign is Status.WARN


# -- config files ---------------------------------------------------------------------------------


def test_a_missing_keyring_secret_fails_the_servers_check_and_names_the_command(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"gh": {"command": "x", "env": {"T": "${keyring:github}"}}})
    check, servers = check_servers(paths, SecretResolver(keyring_get=MemoryKeyring().get_password))
    assert servers is None and check.status is Status.FAIL
    assert "approver secret set github" in check.detail


def test_an_invalid_policy_fails_with_its_pointer(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {}, policy={"version": "1", "tools": {"x": {"acton": "allow"}}})
    check = check_policy(paths)
    assert check.status is Status.FAIL and "/tools/x" in check.detail and "acton" in check.detail


def test_a_schema_reference_to_a_removed_install_is_a_warning_with_the_current_uri(tmp_path: Path) -> None:
    paths = write_config(
        tmp_path, {}, policy={"$schema": "file:///gone/approver/policy.schema.json", "version": "1"}
    )
    check = check_policy(paths)
    assert check.status is Status.WARN and schema_uri("policy") in check.fix


# -- the command ----------------------------------------------------------------------------------


def doctor(paths: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        HOME=str(paths.config_dir.parent),
        XDG_CONFIG_HOME=str(paths.config_dir.parent / "xdg"),
    )
    dirs = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir)]
    return subprocess.run(
        [sys.executable, "-m", "approver", *dirs, "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


def test_doctor_starts_each_server_lists_its_tools_and_fails_on_a_broken_one(tmp_path: Path) -> None:
    paths = write_config(
        tmp_path,
        {
            "notes": upstream_entry("notes"),
            "broken": {"command": str(tmp_path / "no-such-program")},
            "later": {"command": "x", "env": {"T": "${keyring:unset}"}, "disabled": True},
        },
        policy={"version": "1", "default": "deny"},
    )
    result = doctor(paths, "--json", "--port", str(_free_port()), "--timeout", "40")
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["server notes"]["status"] == "ok" and "tools" in checks["server notes"]["detail"]
    assert checks["server broken"]["status"] == "fail"
    assert "no-such-program" in checks["server broken"]["detail"]
    assert checks["server later"] == {
        "name": "server later",
        "status": "ok",
        "detail": "disabled: not started",
        "fix": "",
    }
    assert checks["keyring"]["status"] == "warn"
    assert checks["display"]["status"] == "warn"  # offscreen: windows are not visible
    assert checks["policy.json"]["status"] == "ok" and checks["port"]["status"] == "ok"
    assert not list(paths.logs_dir.glob("*.log"))  # upstream stderr went to a throwaway directory


def test_doctor_prints_one_line_per_check_and_exits_0_when_nothing_fails(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {})
    result = doctor(paths, "--port", str(_free_port()), "--no-servers")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    names = [line.split()[1] for line in lines]
    assert names == [
        "python",
        "pyside6",
        "qt",
        "display",
        "tray",
        "keyring",
        "port",
        "servers.json",
        "policy.json",
        "clients",
    ]
    assert all(line.split()[0] in ("ok", "warn") for line in lines)
    assert "fix: unset QT_QPA_PLATFORM" in lines[3]
    assert "0 failed" in result.stderr


# -- clients --------------------------------------------------------------------------------------


def test_clients_routed_through_approver_are_ok_and_others_are_warned_about(tmp_path: Path) -> None:
    bridge = {"command": "approver", "args": ["connect", "--client", "cursor"]}
    (tmp_path / ".cursor").mkdir()
    (tmp_path / ".cursor" / "mcp.json").write_text(json.dumps({"mcpServers": {"approver": bridge}}))
    (tmp_path / ".claude.json").write_text(json.dumps({"mcpServers": {"git": {"command": "uvx"}}}))
    checks = {c.name: c for c in check_clients(home=tmp_path)}
    assert set(checks) == {"client cursor", "client claude-code"}
    assert checks["client cursor"].status is Status.OK
    assert checks["client claude-code"].status is Status.WARN
    assert checks["client claude-code"].fix == "approver install claude-code"


def test_no_client_configuration_is_one_ok_line(tmp_path: Path) -> None:
    assert [(c.name, c.status) for c in check_clients(home=tmp_path)] == [("clients", Status.OK)]
