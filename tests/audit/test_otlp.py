"""Audit events shipped to a real OTLP/HTTP receiver on 127.0.0.1, from a real gateway."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest

from approver.audit.log import AuditLog, DecisionRecord, canonical_json
from approver.audit.otlp import OtlpExport
from approver.config.paths import Paths
from approver.config.settings import OtlpSettings
from approver.events import EventHub, Recorded
from approver.testing.harness import (
    MemoryKeyring,
    legacy_client,
    running_service,
    upstream_entry,
    write_config,
)
from approver.testing.otlp_receiver import OtlpReceiver

TIMEOUT = 40
ALLOW_ALL = {"version": "1", "default": "allow"}
SECRET = "kr-upstream-secret-7f3a9c"


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def configure(tmp_path: Path, otlp: dict[str, Any]) -> Paths:
    servers = {"t": {**upstream_entry("t"), "env": {"API_TOKEN": "${keyring:api}"}}}
    paths = write_config(tmp_path, servers, ALLOW_ALL)
    paths.settings_file.write_text(json.dumps({"otlp": otlp}), "utf-8")
    return paths


def keyring_with_secrets() -> MemoryKeyring:
    backend = MemoryKeyring()
    backend.set_password("approver", "api", SECRET)
    backend.set_password("approver", "otlp", "collector-token-1")
    return backend


def decision(n: int) -> DecisionRecord:
    return DecisionRecord(
        call_id=f"call-{n}",
        client="c",
        server="s",
        tool="s__t",
        upstream_tool="t",
        risk_class="read",
        risk_level="low",
        risk_reasons=[],
        arguments=canonical_json({"n": n}),
        decision="allow",
        decided_by="policy",
        rule="",
        reason="",
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_a_gateway_call_reaches_the_collector_as_a_decision_and_an_outcome_record(
    tmp_path: Path,
) -> None:
    with OtlpReceiver() as receiver:
        headers = {"authorization": "Bearer ${keyring:otlp}"}
        paths = configure(
            tmp_path, {"endpoint": receiver.endpoint, "headers": headers, "resource": {"team": "a"}}
        )
        with anyio.fail_after(TIMEOUT):
            async with running_service(paths, keyring_backend=keyring_with_secrets()) as service:
                token = service.tokens.get_or_create("cursor")
                async with legacy_client(service.url, token) as session:
                    result = await session.call_tool("t__echo", {"text": "hello"})
                records = await anyio.to_thread.run_sync(receiver.wait_for, 2)
                startup = "\n".join(service.describe_startup())
        rows = AuditLog(paths.audit_db, read_only=True).tail()
    assert text_of(result) == "hello"
    assert f"OpenTelemetry collector at {receiver.endpoint}/v1/logs" in startup
    decision, outcome = records
    assert decision.event_name == "approver.decision" and outcome.event_name == "approver.outcome"
    assert {k: decision.attributes[k] for k in ("approver.client", "approver.server", "approver.tool")} == {
        "approver.client": "cursor",
        "approver.server": "t",
        "approver.tool": "t__echo",
    }
    assert decision.attributes["approver.decision"] == "allow"
    assert decision.attributes["approver.decided_by"] == "policy"
    assert decision.attributes["approver.policy.risk.class"] == rows[0]["risk_class"]
    assert decision.attributes["approver.audit.log.row_id"] == rows[0]["id"]
    assert decision.attributes["approver.audit.log.hash"] == rows[0]["hash"]
    assert "approver.arguments" not in decision.attributes
    assert outcome.attributes["approver.outcome"] == "ok"
    assert outcome.attributes["approver.duration_ms"] == rows[1]["duration_ms"]
    assert outcome.attributes["approver.audit.log.hash"] == rows[1]["hash"]
    assert outcome.attributes["approver.call_id"] == decision.attributes["approver.call_id"]
    assert decision.body == "allow t__echo for cursor (policy)" and decision.severity_text == "INFO"
    assert decision.resource["service.name"] == "approver" and decision.resource["team"] == "a"
    assert decision.resource["host.name"] == socket.gethostname()
    assert decision.scope == "approver.audit.log"
    assert decision.headers["authorization"] == "Bearer collector-token-1"
    assert decision.headers["content-type"] == "application/x-protobuf"


@pytest.mark.anyio
async def test_arguments_go_out_only_when_asked_and_secrets_stay_redacted(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        paths = configure(tmp_path, {"endpoint": receiver.endpoint, "include_arguments": True})
        with anyio.fail_after(TIMEOUT):
            async with running_service(paths, keyring_backend=keyring_with_secrets()) as service:
                token = service.tokens.get_or_create("cursor")
                async with legacy_client(service.url, token) as session:
                    await session.call_tool("t__echo", {"text": f"key {SECRET} end"})
                records = await anyio.to_thread.run_sync(receiver.wait_for, 2)
    arguments = records[0].attributes["approver.arguments"]
    assert "key " in arguments and " end" in arguments
    sent = json.dumps([record.attributes for record in records]) + json.dumps([r.body for r in records])
    assert SECRET not in sent


@pytest.mark.anyio
async def test_a_dead_collector_never_delays_or_denies_calls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = configure(tmp_path, {"endpoint": f"http://127.0.0.1:{closed_port()}", "timeout": 0.5})
    durations = []
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths, keyring_backend=keyring_with_secrets()) as service:
            token = service.tokens.get_or_create("cursor")
            async with legacy_client(service.url, token) as session:
                await session.call_tool("t__echo", {"text": "warm up"})
                for n in range(10):
                    start = time.perf_counter()
                    result = await session.call_tool("t__echo", {"text": f"call {n}"})
                    durations.append(time.perf_counter() - start)
                    assert not result.is_error and text_of(result) == f"call {n}"
            export = service.otlp
            stopping = time.perf_counter()
        stop_seconds = time.perf_counter() - stopping
    assert export is not None and export.sent == 0 and export.failing
    assert export.dropped == 22  # 11 calls, a decision and an outcome each: all counted
    assert max(durations) < 1.0, durations
    assert stop_seconds < 5.0
    failures = [r for r in caplog.records if "failed" in r.getMessage() and r.name == "approver.audit.otlp"]
    assert len(failures) == 1 and "calls are not affected" in failures[0].getMessage()
    assert "Connection refused" in failures[0].getMessage() or "retries" in failures[0].getMessage()


def test_a_full_queue_drops_and_counts_and_a_returning_collector_gets_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="approver.audit.otlp")
    log = AuditLog(tmp_path / "audit.db")
    events = EventHub()
    with OtlpReceiver() as receiver:
        receiver.status = 503
        settings = OtlpSettings(endpoint=f"{receiver.endpoint}/v1/logs", timeout=0.5)
        export = OtlpExport(settings, log, max_queue=3, linger=0.0, backoff=(0.05, 0.2))
        export.attach(events)
        export.start()
        total = 12
        for n in range(total):
            record = decision(n)
            events.publish(Recorded(log.record_decision(record), record))
        receiver.status = 200
        received = receiver.wait_for(1)
        export.close()
        received = receiver.records
    log.close()
    assert export.dropped >= total - 2 * 3  # only a batch in flight (<= 3) and a full queue survive
    assert export.sent + export.dropped == total and export.sent == len(received)
    ids = [r.attributes["approver.audit.log.row_id"] for r in received]
    assert ids == sorted(ids) and set(ids) <= set(range(1, total + 1))
    messages = [r.getMessage() for r in caplog.records if r.name == "approver.audit.otlp"]
    assert sum("failed" in m for m in messages) == 1
    assert sum("works again (" in m for m in messages) == 1


def test_without_the_otel_extra_approver_runs_and_turning_the_export_on_says_what_to_install(
    tmp_path: Path,
) -> None:
    # A meta path finder refusing the extra's modules plays an install without it (the
    # opentelemetry API itself stays: mcp depends on it).
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith(('opentelemetry.sdk', 'opentelemetry.exporter')):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import approver.audit.otlp, approver.service\n"
        "from approver.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    paths = configure(tmp_path, {"endpoint": "http://127.0.0.1:4318"})
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    paths.servers_file.write_text(json.dumps({"mcpServers": {}}), "utf-8")
    dirs = ["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir)]
    check = subprocess.run(
        [sys.executable, "-c", code, *dirs, "policy", "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    serve = subprocess.run(
        [sys.executable, "-c", code, *dirs, "serve", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert serve.returncode == 2
    assert "pip install 'approver[otel]'" in serve.stderr and "Traceback" not in serve.stderr
