"""The assembled service: startup, faults, and failing closed."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest

from approver.approval.broker import ApprovalRequest, Resolution, Scope
from approver.audit.log import AuditLog
from approver.calls import CallContext, Decision
from approver.config.paths import Paths
from approver.errors import ConfigError
from approver.events import Event, PausedChanged, PolicyChanged, Recorded, UpstreamChanged
from approver.gateway.front import NonLoopbackError
from approver.service import PortInUseError, Service, describe_holder, free_port, read_runtime
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.upstream.status import UpstreamState

pytestmark = pytest.mark.anyio

TIMEOUT = 40
ALLOW_ALL = {"version": "1", "default": "allow"}


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_with_no_config_the_gateway_starts_empty_with_the_safe_default_policy(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "config", tmp_path / "data")
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session:
                tools = (await session.list_tools()).tools
            startup = "\n".join(service.describe_startup())
            runtime = read_runtime(paths)
    assert tools == []
    assert "No servers configured yet" in startup
    assert "safe default policy" in startup
    assert runtime is not None and runtime.port == service.port
    assert read_runtime(paths) is None


async def test_an_upstream_that_crashes_mid_call_gives_a_tool_error_and_restarts(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"a": upstream_entry("a"), "b": upstream_entry("b")}, ALLOW_ALL)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session:
                crashed = await session.call_tool("a__crash", {})
                other = await session.call_tool("b__echo", {"text": "still here"})
                await service.upstreams["a"].wait_for_state(UpstreamState.READY)
                again = await session.call_tool("a__echo", {"text": "back"})
            restarts = service.upstreams["a"].restarts
            outcomes = [
                r for r in service.audit.tail(0, 1000) if r["kind"] == "outcome" and r["tool"] == "a__crash"
            ]
    assert crashed.is_error and "stopped during the call" in text_of(crashed)
    assert other.structured_content == {"text": "still here"}
    assert again.structured_content == {"text": "back"}
    assert restarts == 1
    assert outcomes[0]["outcome"] == "error"


async def test_a_server_that_cannot_start_is_failed_with_its_error_and_others_run(tmp_path: Path) -> None:
    servers = {"good": upstream_entry("good"), "bad": {"command": "/nonexistent/mcp-server"}}
    paths = write_config(tmp_path, servers, ALLOW_ALL)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            bad = service.upstreams["bad"].status()
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session:
                result = await session.call_tool("good__echo", {"text": "ok"})
    assert bad.state in (UpstreamState.FAILED, UpstreamState.RESTARTING)
    assert bad.error is not None and "/nonexistent/mcp-server" in bad.error
    assert result.structured_content == {"text": "ok"}


async def test_when_the_audit_log_cannot_be_written_every_call_is_denied_and_not_forwarded(
    tmp_path: Path,
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, ALLOW_ALL)
    marker = tmp_path / "marker"
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            # A real SQLite refusal: the log reopened read-only, as on a read-only or full disk.
            writable = service.recorder.log
            service.recorder.log = AuditLog(paths.audit_db, read_only=True)
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session:
                result = await session.call_tool("test__slow", {"seconds": 0.1, "marker_file": str(marker)})
            service.recorder.log.close()
            service.recorder.log = writable
    assert result.is_error and "audit log cannot be written" in text_of(result)
    assert not marker.exists()


class _BrokenPolicy:
    """Stands in for a policy whose evaluation raises: no real policy file can make it do so."""

    def decide(self, ctx: CallContext, limiter: Any, now: float) -> Decision:
        raise RuntimeError("policy engine exploded")

    def apply_overrides(self, tool: Any, risk: Any) -> Any:
        return risk


async def test_an_error_while_deciding_denies_the_call_and_records_why(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, ALLOW_ALL)
    marker = tmp_path / "marker"
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            service.policy.policy = _BrokenPolicy()  # type: ignore[assignment]
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session:
                result = await session.call_tool("test__slow", {"seconds": 0.1, "marker_file": str(marker)})
            decision = service.audit.tail(0, 10)[-1]
    assert result.is_error and "could not decide" in text_of(result)
    assert "Traceback" not in text_of(result)
    assert not marker.exists()
    assert decision["decision"] == "deny" and decision["decided_by"] == "error"


async def test_a_policy_edit_takes_effect_and_a_broken_edit_keeps_the_last_good_policy(
    tmp_path: Path,
) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, ALLOW_ALL)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session:
                paths.policy_file.write_text(json.dumps({"version": "1", "default": "deny"}))
                assert service.policy.load()
                denied = await session.call_tool("test__echo", {"text": "x"})
                paths.policy_file.write_text('{"version": "1", "default": "maybe"}')
                assert not service.policy.load()
                still_denied = await session.call_tool("test__echo", {"text": "x"})
            error = service.policy.error
    assert denied.is_error and still_denied.is_error
    assert error is not None and "/default" in error and "maybe" in error


async def test_a_non_loopback_address_is_refused_with_an_explanation(tmp_path: Path) -> None:
    with pytest.raises(NonLoopbackError, match="loopback"):
        Service(Paths(tmp_path / "c", tmp_path / "d"), host="0.0.0.0")


async def test_a_port_in_use_is_a_clear_error_that_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = Service(Paths(tmp_path / "c", tmp_path / "d"), port=port)
        with pytest.raises(PortInUseError, match="--port"):
            await service.start()
        service.recorder.close()


def test_an_invalid_servers_file_names_the_file_and_pointer(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "c", tmp_path / "d")
    paths.ensure()
    paths.servers_file.write_text('{"mcpServers": {"x": {"command": 5}}}')
    with pytest.raises(ConfigError) as raised:
        Service(paths)
    assert "servers.json" in str(raised.value) and "/mcpServers/x/command" in str(raised.value)


# -- controls a front-end uses --------------------------------------------------------------------

APPROVE_ECHO = {"version": "1", "default": "allow", "tools": {"test__echo": {"action": "require_approval"}}}


async def _first_pending(service: Service) -> ApprovalRequest:
    arrived = anyio.Event()
    seen: list[ApprovalRequest] = []

    def observe(request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None:
            seen.append(request)
            arrived.set()

    unsubscribe = service.broker.subscribe(observe)
    try:
        await arrived.wait()
    finally:
        unsubscribe()
    return seen[0]


async def test_pausing_denies_the_waiting_call_and_every_new_one_until_resumed(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, APPROVE_ECHO)
    events: list[Event] = []
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            service.events.subscribe(events.append)
            detach = service.broker.attach_approver()
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session, anyio.create_task_group() as group:
                results: list[types.CallToolResult] = []

                async def call() -> None:
                    results.append(await session.call_tool("test__echo", {"text": "waiting"}))

                group.start_soon(call)
                await _first_pending(service)
                assert service.pause() == 1
            async with legacy_client(service.url, token) as session:
                while_paused = await session.call_tool("test__add", {"a": 1, "b": 2})
                service.resume()
                resumed = await session.call_tool("test__add", {"a": 1, "b": 2})
            detach()
            rows = service.audit.query(limit=10)
    assert results[0].is_error and "paused" in text_of(results[0])
    assert while_paused.is_error and "paused" in text_of(while_paused)
    assert not resumed.is_error
    assert [row["decided_by"] for row in rows] == ["policy", "paused", "paused"]
    assert [e.paused for e in events if isinstance(e, PausedChanged)] == [True, False]


async def test_every_committed_row_and_every_upstream_change_is_published(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, ALLOW_ALL)
    events: list[Event] = []
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            service.events.subscribe(events.append)
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session:
                await session.call_tool("test__echo", {"text": "x"})
            await service.recorder.flush()
            service.restart_upstream("test")
            await service.upstreams["test"].wait_for_state(UpstreamState.RESTARTING)
            await service.upstreams["test"].wait_for_state(UpstreamState.READY)
    recorded = [e for e in events if isinstance(e, Recorded)]
    assert [type(e.record).__name__ for e in recorded] == ["DecisionRecord", "OutcomeRecord"]
    assert [e.row_id for e in recorded] == [1, 2]
    assert UpstreamChanged("test", "state") in events


async def test_an_upstream_change_is_published_once_the_catalog_has_it(tmp_path: Path) -> None:
    # The Servers window reads the catalog when told: told before, it showed "Tools (0)".
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, ALLOW_ALL)
    seen: list[set[str]] = []
    told = anyio.Event()

    def listener(event: Event) -> None:
        if event == UpstreamChanged("test", "tools"):
            seen.append({entry.ref.tool for entry in service.catalog.tools() if entry.ref.server == "test"})
            told.set()

    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            service.events.subscribe(listener)
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session:
                await session.call_tool("test__add_tool", {"name": "fresh"})
                await told.wait()
    assert "fresh" in seen[0]


async def test_a_broken_policy_edit_is_published_with_its_error_and_a_fix_clears_it(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, ALLOW_ALL)
    events: list[Event] = []
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            service.events.subscribe(events.append)
            paths.policy_file.write_text('{"version": "1", "default": "maybe"}')
            broken = service.reload_policy()
            paths.policy_file.write_text(json.dumps(ALLOW_ALL))
            fixed = service.reload_policy()
    changes = [e for e in events if isinstance(e, PolicyChanged)]
    assert broken is not None and "maybe" in broken and fixed is None
    assert [e.error is None for e in changes] == [False, True]


async def test_always_allow_adds_the_shown_rule_and_later_calls_pass_without_asking(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {"test": upstream_entry("test")}, APPROVE_ECHO)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            detach = service.broker.attach_approver()
            token = service.tokens.get_or_create("c")
            async with legacy_client(service.url, token) as session, anyio.create_task_group() as group:
                first: list[types.CallToolResult] = []

                async def call() -> None:
                    first.append(await session.call_tool("test__echo", {"text": "one"}))

                group.start_soon(call)
                request = await _first_pending(service)
                shown = service.always_allow_rule(request)
                service.always_allow(request)
                service.broker.approve(request.id, Scope.ALWAYS)
            detach()  # with no approver attached, only the policy can let the next call through
            async with legacy_client(service.url, token) as session:
                second = await session.call_tool("test__echo", {"text": "two"})
    assert not first[0].is_error and not second.is_error
    assert json.loads(shown) == {"tools": {"test__echo": {"action": "allow"}}}
    written = json.loads(paths.policy_file.read_text())
    assert written["tools"]["test__echo"] == {"action": "allow"}
    assert written["default"] == "allow"


async def test_who_holds_a_port_is_said_in_words(tmp_path: Path) -> None:
    mine = write_config(tmp_path / "mine", {})
    other = write_config(tmp_path / "other", {})
    with anyio.fail_after(TIMEOUT):
        async with running_service(mine) as service:
            # approver serve for this data directory, then the same gateway seen from another one
            own = await anyio.to_thread.run_sync(describe_holder, mine, service.port)
            foreign = await anyio.to_thread.run_sync(describe_holder, other, service.port)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        stranger = describe_holder(mine, taken)
        free = free_port(after=taken - 1)
    assert own.startswith("`approver serve` for this data directory (pid ")
    assert foreign == "another approver, one with another data directory (such as `approver demo`)"
    assert stranger == "another program"
    assert free != taken


async def test_gateway_json_says_whether_the_desktop_app_or_serve_runs(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {})
    service = Service(paths, port=0, app="desktop")
    with anyio.fail_after(TIMEOUT):
        await service.start()
        try:
            info = read_runtime(paths)
            holder = await anyio.to_thread.run_sync(describe_holder, paths, service.port)
        finally:
            await service.stop()
    assert info is not None and info.app == "desktop"
    assert holder == f"approver's desktop app for this data directory (pid {info.pid})"
