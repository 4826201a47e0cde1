"""``approver url|token --rotate|--revoke`` against a running gateway: the old token is refused at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import keyring.backends.fail
import pytest

from approver.config.paths import Paths
from approver.service import client_url
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 40
POLICY = {"version": "1", "default": "allow", "tools": {}}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def approver(paths: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    dirs = ["--data-dir", str(paths.data_dir), "--config-dir", str(paths.config_dir)]
    command = [sys.executable, "-m", "approver", *dirs, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False)


async def status_of(url: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient() as http:
        return (await http.post(url, json=body, headers=headers)).status_code


async def test_rotating_prints_a_new_url_and_the_running_gateway_refuses_the_old_one_at_once(
    tmp_path: Path,
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths, keyring_backend=keyring.backends.fail.Keyring()) as service:
            old = service.tokens.get_or_create("cursor")
            async with legacy_client(client_url(service.port, old), None) as session:
                assert (await session.call_tool("test__echo", {"text": "x"})).structured_content == {
                    "text": "x"
                }
            rotated = await anyio.to_thread.run_sync(approver, paths, "url", "--client", "cursor", "--rotate")
            new_url = rotated.stdout.strip()
            old_status = await status_of(client_url(service.port, old))
            async with legacy_client(new_url, None) as session:
                after = await session.call_tool("test__echo", {"text": "y"})
            revoked = await anyio.to_thread.run_sync(
                approver, paths, "token", "--client", "cursor", "--revoke"
            )
            new_status = await status_of(new_url)
            again = await anyio.to_thread.run_sync(approver, paths, "token", "--client", "cursor", "--revoke")
    assert rotated.returncode == 0, rotated.stderr
    assert new_url.startswith(f"http://127.0.0.1:{service.port}/t/") and old not in new_url
    assert old_status == 401
    assert after.structured_content == {"text": "y"}
    assert revoked.returncode == 0 and "no longer works" in revoked.stderr
    assert new_status == 401
    assert again.returncode == 1 and "no client named 'cursor'" in again.stderr


def test_rotating_a_client_that_has_no_token_says_so(tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    result = approver(paths, "token", "--client", "ghost", "--rotate")
    assert result.returncode != 0
    assert "no client named 'ghost' has a token" in result.stderr
