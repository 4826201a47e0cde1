"""A held call end to end: an agent on the TypeScript SDK, a person who approves late, one upstream run.

:func:`run_held_call` starts the scripted agent (:mod:`approver.testing.ts_client`) against a
running service, sits where the approval dialog would (it sees each request arrive and approves
the first one ``approve_after`` seconds after it arrived, through the broker), and reports what
happened. The gateway tests check it at a short patience; ``bench/held_call.py`` runs it at the
real defaults: the SDK's 60 s timeout, approver's 50 s patience, approval after 65 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from approver.approval.broker import ApprovalRequest, Resolution
from approver.service import Service
from approver.testing.ts_client import TsAgent


@dataclass
class HeldRun:
    """What one run saw."""

    agent: TsAgent
    arrived: list[ApprovalRequest] = field(default_factory=list)
    """Every request the dialog got, in order (one per dialog the person would see)."""
    approved_after: float = 0.0
    """Seconds from the first request's arrival to the approval."""
    upstream_calls: list[dict[str, Any]] = field(default_factory=list)
    """The calls the upstream received (its call log)."""

    def results(self) -> list[dict[str, Any]]:
        """The agent's tool results, in order."""
        return self.agent.of("result")


async def run_held_call(
    service: Service,
    agent_folder: Path,
    *,
    client: str,
    arguments: dict[str, Any],
    approve_after: float,
    call_log: Path,
    bound: float,
    tool: str = "test__echo",
) -> HeldRun:
    """Run the agent once: it calls ``tool``, retries while told to, then makes one more identical call.

    Raises TimeoutError past ``bound`` seconds, and RuntimeError when the agent fails.
    """
    agent = TsAgent(
        agent_folder,
        {
            "url": service.url,
            "token": service.tokens.get_or_create(client),
            "tool": tool,
            "arguments": arguments,
            "attempts": 200,
            "retryDelayMs": 1000,
            "callsAfterResult": 1,
        },
    )
    run = HeldRun(agent)
    first = asyncio.Event()
    loop = asyncio.get_running_loop()

    def seen(request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None:
            run.arrived.append(request)
            first.set()

    detach = service.broker.attach_approver()
    unsubscribe = service.broker.subscribe(seen)
    try:
        await agent.start()
        async with asyncio.timeout(bound):
            await first.wait()
            arrived = time.monotonic()
            held = run.arrived[0].id

            def approve() -> None:
                run.approved_after = time.monotonic() - arrived
                service.broker.approve(held)

            loop.call_later(approve_after, approve)
            code = await agent.finish()
        if code != 0:
            raise RuntimeError(f"the agent failed ({code}): {agent.stderr}")
    finally:
        agent.kill()
        unsubscribe()
        detach()
    run.upstream_calls = read_call_log(call_log)
    return run


def read_call_log(path: Path) -> list[dict[str, Any]]:
    """The calls a test server wrote to its ``--call-log`` (none when it has no file yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]
