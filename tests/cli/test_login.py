"""``approver login|logout`` as a person runs them: a subprocess, a stand-in browser, a keyring file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from approver.testing.browser import write_browser_script
from approver.testing.file_keyring import FILE_ENV
from approver.testing.harness import write_config
from approver.testing.oauth_server import read_events, running_oauth_server

TIMEOUT = 60


def approver(tmp_path: Path, *args: str, browser: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        PYTHON_KEYRING_BACKEND="approver.testing.file_keyring.FileKeyring",
        **{FILE_ENV: str(tmp_path / "keyring.json")},
    )
    env.pop("BROWSER", None)
    env.pop("DISPLAY", None)
    if browser:
        env["BROWSER"] = str(write_browser_script(tmp_path))
    dirs = ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [sys.executable, "-m", "approver", *dirs, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with running_oauth_server(tmp_path / "events.jsonl", "--token-lifetime", "30") as base:
        write_config(tmp_path, {"remote": {"type": "http", "url": f"{base}/mcp"}})
        yield base


def test_login_opens_the_browser_and_tools_then_work_and_refresh_without_it(
    tmp_path: Path, server: str
) -> None:
    before = approver(tmp_path, "tools")
    assert "Sign in needed (not signed in yet)" in before.stderr and "approver login remote" in before.stderr

    login = approver(tmp_path, "login", "remote")
    assert login.returncode == 0, login.stderr
    assert f"{server}/authorize?" in login.stderr and "(opened in your browser)" in login.stderr
    assert "Signed in to remote" in login.stdout and "system keyring" in login.stdout

    tools = approver(tmp_path, "tools", browser=False)  # a new process: tokens come from the keyring
    assert tools.returncode == 0 and "remote__echo" in tools.stdout, tools.stderr
    kinds = [(e["event"], e.get("grant_type")) for e in read_events(tmp_path / "events.jsonl")]
    assert kinds.count(("authorize", None)) == 1
    assert ("token", "refresh_token") in kinds  # 30 s tokens are refreshed before they are sent

    logout = approver(tmp_path, "logout", "remote")
    assert logout.returncode == 0 and "Signed out of remote" in logout.stdout
    after = approver(tmp_path, "tools")
    assert "Sign in needed (not signed in yet)" in after.stderr


def test_login_without_a_browser_prints_the_address_and_gives_up_after_its_timeout(
    tmp_path: Path, server: str
) -> None:
    login = approver(tmp_path, "login", "remote", "--timeout", "2", browser=False)
    assert login.returncode == 1
    assert f"{server}/authorize?" in login.stderr and "opened in your browser" not in login.stderr
    assert "nobody finished signing in to remote in the browser in time" in login.stderr


def test_login_names_the_servers_there_are_when_the_name_is_wrong(tmp_path: Path, server: str) -> None:
    result = approver(tmp_path, "login", "nope")
    assert result.returncode == 1 and "servers: remote" in result.stderr


def test_login_refuses_a_stdio_server(tmp_path: Path) -> None:
    write_config(tmp_path, {"local": {"command": "true"}})
    result = approver(tmp_path, "login", "local")
    assert result.returncode == 1 and "it is a stdio server" in result.stderr
