"""What an agent learns after its call ran: a result a person reviewed first, and an edit it must know of.

A ``tools`` entry with ``"review_result": true`` has every result of its calls shown to a person
before the agent reads it (as VS Code does for tools it does not trust): the upstream's output
may carry secrets, or instructions meant for the model. :class:`ResultReview` holds the result in
the approval dialog; approving passes it on, denying withholds it and tells the agent the
person's message. Every review gets a ``review`` row in the audit log, committed before the agent
is answered; a row that cannot be written withholds the result (fail closed), and so does a
review nobody answers, a client that went away, or ``approver serve`` with no window to ask in.

:func:`told_edited` puts a note first in the result of a call a person edited before approving,
so the agent knows what really ran.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import mcp.types as types

from approver.approval.broker import ApprovalRequest, Broker, Resolution, Verdict
from approver.approval.keepalive import keepalive
from approver.audit.log import ReviewRecord
from approver.audit.recorder import Recorder
from approver.gateway.answers import tool_error
from approver.gateway.callers import Caller
from approver.gateway.catalog import ToolEntry
from approver.gateway.request_scope import client_gone

logger = logging.getLogger(__name__)

EDIT_NOTE_CHARS: Final = 4000
"""The longest copy of the approved arguments quoted to the agent in the edit note."""


class ResultReview:
    """Asks a person about a call's result before the agent gets it, and records the answer."""

    def __init__(self, broker: Broker, recorder: Recorder, keepalive_interval: Callable[[], float]) -> None:
        self.broker = broker
        self.recorder = recorder
        self._keepalive_interval = keepalive_interval

    async def review(
        self, caller: Caller, entry: ToolEntry, call_id: str, rule: str, result: types.CallToolResult
    ) -> types.CallToolResult:
        """``result`` if the person passes it on, else a tool error with their message. Never raises
        except when the client cancels (the review is then recorded as cancelled)."""
        now = time.time()
        request = ApprovalRequest(
            id=self.broker.new_id(),
            client=caller.client,
            session=caller.session or "",
            tool=entry.ref,
            risk=entry.risk,
            description=entry.exposed.description or "",
            arguments=b"{}",
            received=now,
            deadline=now + self.broker.timeout,
            rule=rule,
            result=result_text(result),
        )
        try:
            resolution = await self._ask(caller, request)
        except asyncio.CancelledError:
            cancelled = ReviewRecord(
                call_id, "deny", "cancelled", "the client went away while the result waited for review"
            )
            try:
                await asyncio.shield(self.recorder.review(cancelled))
            except Exception:
                logger.exception("could not record a cancelled review")
            raise
        except Exception as exc:
            logger.exception("the review of %s failed", entry.ref.name)
            resolution = Resolution(Verdict.DENIED, "error", f"approver could not ask for a review ({exc})")
        passed = resolution.verdict is Verdict.APPROVED
        reason = "the user passed the result on" if passed else _withheld(resolution)
        try:
            await self.recorder.review(
                ReviewRecord(call_id, "allow" if passed else "deny", resolution.decided_by, reason)
            )
        except Exception as exc:
            logger.error("could not record the review of %s: %s", entry.ref.name, exc)
            return tool_error(
                "approver withheld this call's result: its review cannot be recorded in the audit log "
                f"({type(exc).__name__}). The call itself did run."
            )
        if passed:
            return result
        return tool_error(f"approver withheld this call's result: {reason}. The call itself did run.")

    async def _ask(self, caller: Caller, request: ApprovalRequest) -> Resolution:
        gone = client_gone(caller.scope)
        interval = self._keepalive_interval()
        async with keepalive(caller.progress_reporter(), self.broker.timeout, interval):
            asking = asyncio.ensure_future(self.broker.submit(request))
            waits: set[asyncio.Future[Any]] = {asking}
            watcher = asyncio.ensure_future(gone.wait()) if gone is not None else None
            if watcher is not None:
                waits.add(watcher)
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if watcher is not None:
                    watcher.cancel()
            if not asking.done():
                asking.cancel()
                await asyncio.wait({asking})
                return Resolution(Verdict.CANCELLED, "cancelled", "the client went away during the review")
            return asking.result()


def _withheld(resolution: Resolution) -> str:
    if resolution.verdict is Verdict.TIMED_OUT:
        return "nobody reviewed the result in time"
    if resolution.decided_by == "user":
        return resolution.message or "the user withheld the result"
    return resolution.message or "the result could not be reviewed"


def result_text(result: types.CallToolResult) -> str:
    """A result as a person reviews it: its text blocks, what else it holds, its structured content."""
    parts: list[str] = []
    if result.is_error:
        parts.append("[the tool reported an error]")
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            parts.append(f"[{block.type}, {block.mime_type}, {len(block.data):,} characters of base64]")
        elif isinstance(block, types.EmbeddedResource | types.ResourceLink):
            parts.append(f"[{block.type}: {block.model_dump_json(exclude_none=True)[:2000]}]")
        else:
            parts.append(f"[{block.type}]")
    if result.structured_content is not None:
        structured = json.dumps(result.structured_content, indent=2, ensure_ascii=False)
        parts.append(f"Structured content:\n{structured}")
    return "\n\n".join(parts) if parts else "(an empty result)"


def told_edited(result: types.CallToolResult, approved: bytes) -> types.CallToolResult:
    """``result`` with a first text block that tells the agent a person changed its call, and how."""
    quoted = approved.decode(errors="replace")
    if len(quoted) > EDIT_NOTE_CHARS:
        quoted = quoted[: EDIT_NOTE_CHARS - 1] + "…"
    note = types.TextContent(
        type="text",
        text=(
            "approver: the user edited this call's arguments before approving it. It ran with these "
            f"arguments instead of the ones you sent: {quoted}"
        ),
    )
    return result.model_copy(update={"content": [note, *result.content]})
