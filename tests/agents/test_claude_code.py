"""Claude Code's hook JSON: what approver reads from stdin and what it prints."""

from __future__ import annotations

import json

import pytest

from approver.agents.claude_code import HookPayloadError, answer, parse_payload, read_answer
from approver.approval.editing import encode_arguments


def test_a_pretooluse_payload_is_read_with_its_session_and_working_directory() -> None:
    call = parse_payload(
        json.dumps(
            {
                "session_id": "abc",
                "cwd": "/home/me/p",
                "hook_event_name": "PreToolUse",
                "tool_name": "Bash",
                "tool_input": {"command": "ls"},
                "tool_use_id": "toolu_9",
                "permission_mode": "default",
            }
        ).encode()
    )
    assert (call.tool_name, call.tool_input, call.session_id, call.cwd) == (
        "Bash",
        {"command": "ls"},
        "abc",
        "/home/me/p",
    )
    assert not call.own


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"[]", "not a JSON object"),
        (b'{"hook_event_name": "PostToolUse", "tool_name": "Bash"}', "not 'PostToolUse'"),
        (b'{"tool_input": {}}', "no tool_name"),
        (b'{"tool_name": "Bash", "tool_input": "ls"}', "tool_input is not a JSON object"),
        (b"{", "not JSON"),
    ],
)
def test_input_that_is_not_a_pretooluse_call_says_what_is_wrong(data: bytes, said: str) -> None:
    with pytest.raises(HookPayloadError, match=said):
        parse_payload(data)


def test_an_allow_with_an_edit_carries_exactly_the_approved_bytes() -> None:
    approved = encode_arguments({"command": 'echo \u00e9 "quoted"', "timeout": 5})
    body = answer("allow", "approved", updated_input=approved, context="edited")
    assert approved in body
    output = json.loads(body)["hookSpecificOutput"]
    assert output == {
        "hookEventName": "PreToolUse",
        "permissionDecision": "allow",
        "permissionDecisionReason": "approved",
        "additionalContext": "edited",
        "updatedInput": {"command": 'echo \u00e9 "quoted"', "timeout": 5},
    }
    assert read_answer(body) == "allow"


def test_only_a_well_formed_pretooluse_answer_is_read_as_one() -> None:
    assert read_answer(answer("deny", "no")) == "deny"
    for bad in (b"{}", b'{"hookSpecificOutput": {"permissionDecision": "allow"}}', b"x"):
        with pytest.raises(HookPayloadError):
            read_answer(bad)
    wrong = json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "yes"}})
    with pytest.raises(HookPayloadError):
        read_answer(wrong.encode())
