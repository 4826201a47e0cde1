"""One upstream connection: restart and stop requests are never lost, and a restart is prompt."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from approver.config.servers import ServerConfig
from approver.upstream.connection import Upstream, UpstreamHooks
from approver.upstream.status import UpstreamState

pytestmark = pytest.mark.anyio

TIMEOUT = 30


def stdio_config(name: str = "test") -> ServerConfig:
    return ServerConfig(
        name=name,
        transport="stdio",
        command=sys.executable,
        args=("-m", "approver.testing.server", "--name", name),
    )


async def test_a_restart_requested_while_the_server_turns_ready_is_not_lost(tmp_path: Path) -> None:
    states: list[str] = []
    upstream: Upstream

    async def changed(u: Upstream, what: str) -> None:
        if what == "state":
            states.append(u.state.value)
            if u.state is UpstreamState.READY and states.count("ready") == 1:
                u.request_restart()  # arrives while the run task is still announcing "ready"

    upstream = Upstream(stdio_config(), tmp_path, UpstreamHooks(changed=changed))
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(upstream.run)
            while states.count("ready") < 2:
                await upstream.wait_for_state(UpstreamState.RESTARTING)
                await upstream.wait_for_state(UpstreamState.READY)
            upstream.stop()
    assert states == ["ready", "restarting", "ready", "stopped"]
    assert upstream.restarts == 1 and upstream.error is None


async def test_a_stop_requested_while_the_server_turns_ready_ends_the_run_task(tmp_path: Path) -> None:
    async def changed(u: Upstream, what: str) -> None:
        if what == "state" and u.state is UpstreamState.READY:
            u.stop()

    upstream = Upstream(stdio_config(), tmp_path, UpstreamHooks(changed=changed))
    with anyio.fail_after(TIMEOUT):
        await upstream.run()
    assert upstream.state is UpstreamState.STOPPED


async def test_restarting_a_ready_server_reconnects_at_once_without_reporting_a_failure(
    tmp_path: Path,
) -> None:
    states: list[str] = []

    async def changed(u: Upstream, what: str) -> None:
        if what == "state":
            states.append(u.state.value)

    upstream = Upstream(stdio_config(), tmp_path, UpstreamHooks(changed=changed))
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(upstream.run)
            await upstream.wait_for_state(UpstreamState.READY)
            upstream.request_restart()
            await upstream.wait_for_state(UpstreamState.RESTARTING)
            await upstream.wait_for_state(UpstreamState.READY)
            upstream.stop()
    assert states == ["ready", "restarting", "ready", "stopped"]
    assert "failed" not in states
