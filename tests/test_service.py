"""The assembled service: startup, faults, and failing closed."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest

from approver.audit import AuditLog
from approver.calls import CallContext, Decision
from approver.errors import ConfigError
from approver.front import NonLoopbackError
from approver.paths import Paths
from approver.service import PortInUseError, Service, read_runtime
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.upstream import UpstreamState

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
