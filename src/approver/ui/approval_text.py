"""What the approval dialog says, as plain strings: arguments, sizes, the countdown, warnings.

Qt-free, so each sentence can be tested on its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from approver.approval.broker import ApprovalRequest
from approver.visible import Revealed


def pretty_arguments(raw: bytes) -> str:
    """The arguments as indented JSON, or the raw text when they are not valid JSON."""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def describe_size(size: int) -> str:
    """``"1,048,600 bytes (1.0 MB)"``: exact, plus a rounded figure when it helps."""
    exact = f"{size:,} byte" + ("" if size == 1 else "s")
    if size < 1024:
        return exact
    if size < 1024 * 1024:
        return f"{exact} ({size / 1024:.1f} KB)"
    return f"{exact} ({size / (1024 * 1024):.1f} MB)"


def countdown_text(seconds_left: float) -> str:
    """What the countdown label says with ``seconds_left`` until the broker denies the call."""
    if seconds_left <= 0:
        return "Timing out now: the call will be denied."
    whole = math.ceil(seconds_left)
    return f"Times out in {whole // 60}:{whole % 60:02d}, then the call is denied."


def waiting_text(request: ApprovalRequest, now: float) -> str:
    """The countdown to the request's real deadline, and whether its agent was told to call again."""
    text = countdown_text(request.deadline - now)
    told = request.agent.told_to_retry_at
    if told is None:
        return text
    ago = max(0, round(now - told))
    retries = request.agent.retries
    joined = (
        "it has not called again yet"
        if retries == 0
        else f"{retries} identical call{'' if retries == 1 else 's'} joined this request since"
    )
    return (
        f"{text} Its client would not wait that long, so the agent was told {ago} s ago to call again; "
        f"{joined}. "
        "Approving runs the call once: now if a retry is waiting, else on the agent's next identical call."
    )


def hidden_warning(found: Sequence[tuple[str, Revealed]]) -> str:
    """One warning naming every field that hid characters, and any hidden tag text; "" when none did."""
    suspicious = [(where, shown) for where, shown in found if shown.suspicious]
    if not suspicious:
        return ""
    lines = ["Warning: hidden characters, shown here as <U+…>. Read the marked text carefully."]
    lines += [f"• {where}: {'; '.join(shown.findings)}" for where, shown in suspicious]
    hidden = dict.fromkeys(shown.hidden_text for _, shown in suspicious if shown.hidden_text)
    lines += [f"• Hidden tag text reads: {text!r}" for text in hidden]
    return "\n".join(lines)
