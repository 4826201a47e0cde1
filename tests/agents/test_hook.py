"""``approver hook claude-code`` as Claude Code runs it: a real subprocess, real JSON on stdin, a
real gateway behind it, and the answer read back from stdout."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import keyring.backends.fail
import pytest

from approver.agents.hook import REACH_SECONDS, Gateway, run_hook
from approver.approval.editing import encode_arguments
from approver.audit.log import AuditLog
from approver.config.paths import Paths
from approver.service import Service
from approver.testing.harness import Desk, running_service, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 40
POLICY: dict[str, Any] = {
    "version": "1",
    "default": "require_approval",
    "risk_defaults": {"read": "allow"},
    "tools": {
        "claude-code__Bash": {
            "action": "require_approval",
            "conditions": [
                {
                    "when": {"command": {"matches": r"(?s).*\brm\s+-[a-zA-Z]*[rR].*"}},
                    "action": "deny",
                    "reason": "rm -rf never",
                },
                {"when": {"command": {"command_prefix": "git status"}}, "action": "allow"},
                {"when": {"command": {"command_prefix": "ls"}}, "action": "allow"},
            ],
        }
    },
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def payload(tool: str, tool_input: dict[str, Any], session: str = "session-1") -> bytes:
    return json.dumps(
        {
            "session_id": session,
            "transcript_path": "/tmp/transcript.jsonl",
            "cwd": "/home/me/project",
            "permission_mode": "default",
            "hook_event_name": "PreToolUse",
            "tool_name": tool,
            "tool_input": tool_input,
            "tool_use_id": "toolu_01",
        }
    ).encode()


async def run(paths: Paths, data: bytes, *extra: str) -> tuple[dict[str, Any], float, int]:
    """Run the hook as Claude Code does; returns its answer's hookSpecificOutput, seconds and exit status."""
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    args = ["-m", "approver", "--data-dir", str(paths.data_dir), "--config-dir", str(paths.config_dir)]
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        "hook",
        "claude-code",
        *extra,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    out, _ = await process.communicate(data)
    took = time.monotonic() - started
    return json.loads(out)["hookSpecificOutput"], took, process.returncode or 0


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    paths = write_config(tmp_path, {}, POLICY)
    backend = keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]
    async with running_service(paths, keyring_backend=backend, approval_timeout=60) as running:
        yield running


@pytest.fixture
async def desk(service: Service) -> AsyncIterator[Desk]:
    sitting = Desk(service, TIMEOUT)
    yield sitting
    sitting.leave()


def rows(service: Service) -> list[dict[str, Any]]:
    return service.audit.tail(0, 10_000)


async def test_rm_rf_under_a_deny_condition_is_denied_with_the_policys_reason_in_under_two_seconds(
    service: Service,
) -> None:
    with anyio.fail_after(TIMEOUT):
        said, took, status = await run(service.paths, payload("Bash", {"command": "rm -rf ~/project"}))
    assert status == 0
    assert said["hookEventName"] == "PreToolUse"
    assert said["permissionDecision"] == "deny"
    assert "rm -rf never" in said["permissionDecisionReason"]
    assert 'tools["claude-code__Bash"].conditions[0]' in said["permissionDecisionReason"]
    assert took < 2.0, took
    [decision] = rows(service)
    assert (decision["client"], decision["tool"], decision["decision"]) == (
        "claude-code",
        "claude-code__Bash",
        "deny",
    )
    assert (decision["risk_class"], decision["risk_level"]) == ("destructive", "critical")


async def test_git_status_runs_without_asking_and_its_outcome_says_the_agent_runs_it(
    service: Service,
) -> None:
    with anyio.fail_after(TIMEOUT):
        said, _, _ = await run(service.paths, payload("Bash", {"command": "git status -s"}))
    assert said["permissionDecision"] == "allow"
    await service.recorder.flush()
    decision, outcome = rows(service)
    assert decision["decided_by"] == "policy" and outcome["outcome"] == "agent-runs"
    assert outcome["client"] == "claude-code"


async def test_a_write_held_for_approval_is_allowed_once_the_person_approves(
    service: Service, desk: Desk
) -> None:
    call = payload("Write", {"file_path": "/home/me/project/notes.md", "content": "# Notes\n"})
    with anyio.fail_after(TIMEOUT):
        hook = asyncio.create_task(run(service.paths, call))
        request = await desk.next()
        assert request.tool.name == "claude-code__Write" and request.client == "claude-code"
        assert request.risk.risk_class.value == "write"
        assert desk.broker.approve(request.id)
        said, _, _ = await hook
    assert said["permissionDecision"] == "allow"
    assert "updatedInput" not in said
    assert rows(service)[0]["reason"].startswith("approved by the user")


async def test_an_edited_hook_call_is_allowed_with_exactly_the_approved_input(
    service: Service, desk: Desk
) -> None:
    call = payload("Bash", {"command": "npm publish", "description": "Publish"})
    edited = encode_arguments({"command": "npm publish --dry-run", "description": "Publish"})
    with anyio.fail_after(TIMEOUT):
        hook = asyncio.create_task(run(service.paths, call))
        request = await desk.next()
        assert desk.broker.approve(request.id, arguments=edited)
        said, _, _ = await hook
    assert said["permissionDecision"] == "allow"
    assert encode_arguments(said["updatedInput"]) == edited
    assert "npm publish --dry-run" in said["additionalContext"]
    await service.recorder.flush()
    decision, edit, outcome = rows(service)
    assert json.loads(decision["arguments"])["command"] == "npm publish"
    assert json.loads(edit["arguments"])["command"] == "npm publish --dry-run"
    assert (edit["kind"], outcome["outcome"]) == ("edit", "agent-runs")
    with AuditLog(service.paths.audit_db, read_only=True) as log:
        assert log.verify().ok


async def test_a_call_held_past_the_hooks_timeout_is_denied_before_it_and_the_retry_gets_the_approval(
    service: Service, desk: Desk
) -> None:
    call = payload("Edit", {"file_path": "/home/me/project/a.py", "old_string": "a", "new_string": "b"})
    with anyio.fail_after(TIMEOUT):
        said, took, _ = await run(service.paths, call, "--timeout", "8")
        request = await desk.next()
        assert said["permissionDecision"] == "deny"
        assert "Call this tool again with exactly the same arguments" in said["permissionDecisionReason"]
        assert took < 8 - 2, took
        assert [waiting.id for waiting in service.broker.pending()] == [request.id], "the dialog stays open"
        assert desk.broker.approve(request.id)
        again, _, _ = await run(service.paths, call, "--timeout", "8")
    assert again["permissionDecision"] == "allow"
    assert f"held call {request.id}" in again["permissionDecisionReason"]


async def test_with_approver_stopped_the_answer_is_ask_within_two_seconds(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {}, POLICY)
    # A gateway.json left behind by an approver that is gone.
    paths.runtime_file.write_text(json.dumps({"port": 9, "pid": 2**22 + 17, "started": 0}), "utf-8")
    with anyio.fail_after(TIMEOUT):
        said, took, status = await run(paths, payload("Write", {"file_path": "/tmp/a", "content": "x"}))
    assert status == 0 and said["permissionDecision"] == "ask"
    assert said["permissionDecisionReason"].startswith("approver is not running")
    assert took < 2.0, took


async def test_approvers_own_mcp_tools_are_allowed_at_once_and_not_decided_twice(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {}, POLICY)
    with anyio.fail_after(TIMEOUT):
        said, _, _ = await run(paths, payload("mcp__approver__github__delete_repo", {"repo": "a"}))
    assert said["permissionDecision"] == "allow"


async def test_input_that_is_not_a_hook_call_is_answered_ask(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {}, POLICY)
    with anyio.fail_after(TIMEOUT):
        said, _, _ = await run(paths, b"not json")
    assert said["permissionDecision"] == "ask" and "not JSON" in said["permissionDecisionReason"]


def test_a_gateway_that_cannot_be_reached_in_time_gets_ask_from_the_watchdog() -> None:
    out = io.BytesIO()
    release = threading.Event()
    fired = threading.Event()

    def stuck() -> Gateway | None:  # a keyring that hangs, say
        release.wait(REACH_SECONDS * 4)
        return None

    worker = threading.Thread(
        target=run_hook,
        args=(payload("Bash", {"command": "ls"}), out, stuck),
        kwargs={"on_fire": fired.set},
    )
    worker.start()
    assert fired.wait(REACH_SECONDS * 3)
    release.set()
    worker.join(REACH_SECONDS * 4)
    [line] = out.getvalue().splitlines()
    assert json.loads(line)["hookSpecificOutput"]["permissionDecision"] == "ask"
