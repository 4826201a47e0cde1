"""``approver connect``: the stdio bridge, as a real subprocess, with and without a gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import keyring.backends.fail
import mcp.types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from approver.config.paths import Paths
from approver.testing.harness import ASKING_CALLBACKS, running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 40
POLICY = {
    "version": "1",
    "default": "allow",
    "tools": {"test__delete_note": {"action": "deny", "reason": "no"}},
}


def bridge_params(paths: Paths, client: str = "bridge") -> StdioServerParameters:
    env = dict(os.environ)
    # The bridge must find the token the gateway knows: both use the 0600 tokens file.
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "approver",
            "--data-dir",
            str(paths.data_dir),
            "--config-dir",
            str(paths.config_dir),
            "connect",
            "--client",
            client,
        ],
        env=env,
    )


@asynccontextmanager
async def bridged_session(paths: Paths, errlog: Path, **callbacks: object) -> AsyncIterator[ClientSession]:
    with errlog.open("w") as log:
        async with (
            stdio_client(bridge_params(paths), errlog=log) as (read, write),
            ClientSession(read, write, **callbacks) as session,  # type: ignore[arg-type]
        ):
            await session.initialize()
            yield session


async def test_a_legacy_stdio_client_reaches_upstream_tools_through_the_bridge(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths, keyring_backend=keyring.backends.fail.Keyring()) as service:
            async with bridged_session(paths, tmp_path / "bridge.log", **ASKING_CALLBACKS) as session:
                names = [tool.name for tool in (await session.list_tools()).tools]
                echo = await session.call_tool("test__echo", {"text": "via stdio"})
                denied = await session.call_tool("test__delete_note", {"path": "x"})
                sampled = await session.call_tool("test__sample", {"prompt": "1+1"})
            rows = service.audit.tail(0, 1000)
            assert service.fast is not None and service.fast.handled == 3  # the front door's fast path
    assert "test__echo" in names
    assert echo.structured_content == {"text": "via stdio"}
    assert denied.is_error
    assert sampled.structured_content == {"text": "answer to 1+1", "model": "fake-llm"}
    assert {row["client"] for row in rows} == {"bridge"}


async def test_a_2026_stdio_client_works_through_the_bridge(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)
    with anyio.fail_after(TIMEOUT), (tmp_path / "bridge.log").open("w") as log:
        async with (
            running_service(paths, keyring_backend=keyring.backends.fail.Keyring()),
            Client(stdio_client(bridge_params(paths), errlog=log), **ASKING_CALLBACKS) as client,
        ):
            echo = await client.call_tool("test__echo", {"text": "modern stdio"})
            roots = await client.call_tool("test__roots", {})
    assert echo.structured_content == {"text": "modern stdio"}
    assert roots.structured_content == {"roots": ["file:///work/a", "file:///work/b"]}


async def test_without_a_gateway_every_request_gets_an_error_saying_how_to_start_it(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)
    errlog = tmp_path / "bridge.log"
    with anyio.fail_after(TIMEOUT), errlog.open("w") as log:
        async with (
            stdio_client(bridge_params(paths), errlog=log) as (read, write),
            ClientSession(read, write) as session,
        ):
            with pytest.raises(MCPError) as raised:
                await session.initialize()
            with pytest.raises(MCPError) as again:
                await session.send_request(types.PingRequest(), types.EmptyResult)
    assert "approver is not running" in str(raised.value)
    assert "approver serve" in str(raised.value)
    assert "approver is not running" in str(again.value)


def approver_command(paths: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``approver`` command line, run as the user would in a terminal (tokens in the 0600 file)."""
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    dirs = ["--data-dir", str(paths.data_dir), "--config-dir", str(paths.config_dir)]
    return subprocess.run(
        [sys.executable, "-m", "approver", *dirs, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


async def test_a_running_bridge_keeps_working_when_its_token_is_rotated_and_stops_when_revoked(
    tmp_path: Path,
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, POLICY)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths, keyring_backend=keyring.backends.fail.Keyring()) as service:
            async with bridged_session(paths, tmp_path / "bridge.log") as session:
                before = await session.call_tool("test__echo", {"text": "before"})
                old = service.tokens.get("bridge")
                rotated = await anyio.to_thread.run_sync(
                    approver_command, paths, "token", "--client", "bridge", "--rotate"
                )
                after = await session.call_tool("test__echo", {"text": "after"})
                revoked = await anyio.to_thread.run_sync(
                    approver_command, paths, "token", "--client", "bridge", "--revoke"
                )
                with pytest.raises(MCPError) as refused:
                    await session.call_tool("test__echo", {"text": "revoked"})
            rows = [row for row in service.audit.tail(0, 1000) if row["kind"] == "decision"]
    assert rotated.returncode == 0 and rotated.stdout.strip() not in ("", old)
    assert "pick it up by themselves" in rotated.stderr
    assert before.structured_content == {"text": "before"}
    assert after.structured_content == {"text": "after"}
    assert revoked.returncode == 0, revoked.stderr
    assert "401" in str(refused.value) or "unauthorized" in str(refused.value).lower()
    assert [json.loads(row["arguments"])["text"] for row in rows] == ["before", "after"]
