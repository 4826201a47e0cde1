"""``approver connect``: the stdio bridge, as a real subprocess, with and without a gateway."""

from __future__ import annotations

import os
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
