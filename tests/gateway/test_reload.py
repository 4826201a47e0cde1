"""servers.json edits applied to a running gateway: real upstream subprocesses, real HTTP clients."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest

from approver.config.paths import Paths
from approver.events import ServersReloaded
from approver.service import Service
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.upstream.status import UpstreamState

pytestmark = pytest.mark.anyio

TIMEOUT = 30
POLICY = {"version": "1", "default": "allow"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def write_servers(paths: Paths, servers: dict[str, Any]) -> None:
    """Rewrite servers.json, making sure its modification stamp differs from the last one."""
    before = paths.servers_file.stat()
    paths.servers_file.write_text(json.dumps({"mcpServers": servers}), "utf-8")
    after = paths.servers_file.stat()
    if (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size):
        os.utime(paths.servers_file, ns=(after.st_atime_ns, after.st_mtime_ns + 1_000_000))


async def ready(service: Service, name: str) -> None:
    await service.upstreams[name].wait_for_state(UpstreamState.READY)


async def tool_names(service: Service, token: str) -> list[str]:
    async with legacy_client(service.url, token) as session:
        return [tool.name for tool in (await session.list_tools()).tools]


async def test_an_added_server_starts_and_clients_are_told_while_the_others_keep_running(
    tmp_path: Path,
) -> None:
    paths = write_config(tmp_path, {"alpha": upstream_entry("alpha")}, POLICY)
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("tester")
            alpha = service.upstreams["alpha"]
            async with legacy_client(service.url, token, message_handler=on_message) as session:
                await session.list_tools()
                write_servers(paths, {"alpha": upstream_entry("alpha"), "beta": upstream_entry("beta")})
                result = await service.reload_servers()
                await ready(service, "beta")
                await changed.wait()
                names = [tool.name for tool in (await session.list_tools()).tools]
                echoed = await session.call_tool("beta__echo", {"text": "hi"})
            assert result == ServersReloaded(added=("beta",))
            assert service.upstreams["alpha"] is alpha and alpha.restarts == 0
            assert alpha.state is UpstreamState.READY
    assert "beta__echo" in names and "alpha__echo" in names
    assert not echoed.is_error


async def test_the_watcher_applies_an_edit_without_being_asked(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"alpha": upstream_entry("alpha")}, POLICY)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            reloaded = anyio.Event()
            seen: list[ServersReloaded] = []

            def listen(event: object) -> None:
                if isinstance(event, ServersReloaded):
                    seen.append(event)
                    reloaded.set()

            service.events.subscribe(listen)
            write_servers(paths, {"alpha": upstream_entry("alpha"), "beta": upstream_entry("beta")})
            await reloaded.wait()
            await ready(service, "beta")
    assert seen[0].added == ("beta",)


async def test_a_changed_entry_restarts_only_that_server(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"alpha": upstream_entry("alpha"), "beta": upstream_entry("beta")}, POLICY)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("tester")
            alpha, old_beta = service.upstreams["alpha"], service.upstreams["beta"]
            write_servers(
                paths,
                {"alpha": upstream_entry("alpha"), "beta": {**upstream_entry("beta"), "prefix": "b"}},
            )
            result = await service.reload_servers()
            new_beta = service.upstreams["beta"]
            await ready(service, "beta")
            names = await tool_names(service, token)
            assert result == ServersReloaded(restarted=("beta",))
            assert new_beta is not old_beta and old_beta.state is UpstreamState.STOPPED
            assert service.upstreams["alpha"] is alpha and alpha.state is UpstreamState.READY
            assert list(service.upstreams) == ["alpha", "beta"]
    assert "b__echo" in names and "beta__echo" not in names and "alpha__echo" in names


async def test_a_removed_or_disabled_server_stops_and_its_tools_leave_the_list(tmp_path: Path) -> None:
    paths = write_config(
        tmp_path,
        {"alpha": upstream_entry("alpha"), "beta": upstream_entry("beta"), "gamma": upstream_entry("gamma")},
        POLICY,
    )
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("tester")
            beta, gamma = service.upstreams["beta"], service.upstreams["gamma"]
            write_servers(
                paths,
                {"alpha": upstream_entry("alpha"), "gamma": {**upstream_entry("gamma"), "disabled": True}},
            )
            result = await service.reload_servers()
            names = await tool_names(service, token)
            async with legacy_client(service.url, token) as session:
                gone = await session.call_tool("beta__echo", {"text": "hi"})
    assert result == ServersReloaded(removed=("beta", "gamma"))
    assert beta.state is UpstreamState.STOPPED and gamma.state is UpstreamState.STOPPED
    assert list(service.upstreams) == ["alpha"]
    assert [name for name in names if not name.startswith("alpha__")] == []
    assert gone.is_error


async def test_an_invalid_edit_changes_nothing_and_says_why(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"alpha": upstream_entry("alpha")}, POLICY)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            alpha = service.upstreams["alpha"]
            paths.servers_file.write_text('{"mcpServers": {"alpha": {"comand": "x"}}}', "utf-8")
            result = await service.reload_servers()
            assert result.error is not None and "comand" in result.error
            assert service.servers_reload.error == result.error
            assert service.upstreams == {"alpha": alpha} and alpha.state is UpstreamState.READY
            write_servers(paths, {"alpha": upstream_entry("alpha")})
            fixed = await service.reload_servers()
    assert fixed == ServersReloaded() and not fixed.changed
    assert service.servers_reload.error is None
