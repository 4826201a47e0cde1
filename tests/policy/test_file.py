"""The policy file holder: safe default, reloads, keeping the last good policy on a broken edit."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from approver.calls import Action, CallContext, Risk, RiskClass, RiskLevel, ToolRef
from approver.policy.engine import Policy
from approver.policy.file import PolicyFile
from approver.policy.limits import RateLimiter

WRITE_TOOL = CallContext(
    client="claude",
    tool=ToolRef(server="files", tool="write_file", name="files__write_file"),
    risk=Risk(RiskClass.WRITE, RiskLevel.MEDIUM),
)
ALLOW_WRITES: dict[str, Any] = {"version": "1", "default": "deny", "risk_defaults": {"write": "allow"}}
DENY_WRITES: dict[str, Any] = {"version": "1", "default": "deny", "risk_defaults": {"write": "deny"}}


def action_for_writes(holder: PolicyFile) -> Action:
    return holder.policy.decide(WRITE_TOOL, RateLimiter(), 0.0).action


def write(path: Path, data: Any) -> None:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")


class Listener:
    """Counts how often the holder announced a new policy."""

    def __init__(self, holder: PolicyFile) -> None:
        self.calls = 0
        holder.on_change(self)

    def __call__(self) -> None:
        self.calls += 1


def test_a_missing_file_means_the_safe_default_policy(tmp_path: Path) -> None:
    holder = PolicyFile(tmp_path / "policy.json")
    listener = Listener(holder)

    assert holder.load() is False

    assert holder.using_default
    assert holder.error is None
    assert holder.policy.source == "<default policy>"
    assert action_for_writes(holder) is Action.REQUIRE_APPROVAL
    assert listener.calls == 0
    assert "safe default policy" in holder.describe()


def test_a_valid_file_is_loaded_and_announced(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, ALLOW_WRITES)
    holder = PolicyFile(path)
    listener = Listener(holder)

    assert holder.load() is True

    assert not holder.using_default
    assert holder.error is None
    assert holder.policy.source == str(path)
    assert action_for_writes(holder) is Action.ALLOW
    assert listener.calls == 1
    assert holder.describe() == f"policy from {path}"


@pytest.mark.parametrize(
    "broken",
    ['{"version": "1", "default": "maybe"}', '{"version": "1",', "[]"],
    ids=["schema", "syntax", "not-an-object"],
)
def test_an_invalid_edit_keeps_the_last_good_policy_and_names_the_file(tmp_path: Path, broken: str) -> None:
    path = tmp_path / "policy.json"
    write(path, ALLOW_WRITES)
    holder = PolicyFile(path)
    holder.load()
    good = holder.policy
    listener = Listener(holder)

    write(path, broken)
    assert holder.load() is False

    assert holder.policy is good
    assert action_for_writes(holder) is Action.ALLOW
    assert not holder.using_default
    assert holder.error is not None
    assert str(path) in holder.error
    assert listener.calls == 0


def test_fixing_the_file_clears_the_error_and_takes_effect(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, ALLOW_WRITES)
    holder = PolicyFile(path)
    holder.load()
    write(path, '{"version": "2"}')
    holder.load()
    assert holder.error is not None
    listener = Listener(holder)

    write(path, DENY_WRITES)
    assert holder.load() is True

    assert holder.error is None
    assert action_for_writes(holder) is Action.DENY
    assert listener.calls == 1
    assert "invalid" not in holder.describe()


def test_an_invalid_first_file_keeps_the_safe_default(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, '{"tools": {}}')
    holder = PolicyFile(path)

    assert holder.load() is False

    assert holder.using_default
    assert action_for_writes(holder) is Action.REQUIRE_APPROVAL
    assert holder.error is not None
    assert "version" in holder.error


def test_describe_mentions_the_error_of_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, ALLOW_WRITES)
    holder = PolicyFile(path)
    holder.load()

    write(path, '{"version": "1", "default": "maybe"}')
    holder.load()

    description = holder.describe()
    assert description.startswith(f"policy from {path}")
    assert "invalid" in description
    assert "last good policy kept" in description
    assert holder.error is not None
    assert holder.error in description


def test_describe_does_not_call_an_invalid_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, '{"version": "1", "default": "maybe"}')
    holder = PolicyFile(path)
    holder.load()

    description = holder.describe()

    assert "safe default policy" in description
    assert "no policy.json yet" not in description
    assert str(path) in description


def test_deleting_the_file_returns_to_the_safe_default_and_announces_it(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, ALLOW_WRITES)
    holder = PolicyFile(path)
    holder.load()
    listener = Listener(holder)

    path.unlink()
    assert holder.load() is True

    assert holder.using_default
    assert action_for_writes(holder) is Action.REQUIRE_APPROVAL
    assert listener.calls == 1


def test_changed_on_disk_is_false_right_after_a_load(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, ALLOW_WRITES)
    holder = PolicyFile(path)
    holder.load()

    assert holder.changed_on_disk() is False


def test_changed_on_disk_detects_a_rewrite_of_a_different_size(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, ALLOW_WRITES)
    holder = PolicyFile(path)
    holder.load()
    stat = path.stat()

    write(path, {**ALLOW_WRITES, "description": "now with a description"})
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert holder.changed_on_disk() is True


def test_changed_on_disk_detects_a_new_modification_time_of_the_same_size(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, ALLOW_WRITES)
    holder = PolicyFile(path)
    holder.load()
    stat = path.stat()

    write(path, ALLOW_WRITES)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    assert path.stat().st_size == stat.st_size
    assert holder.changed_on_disk() is True


def test_changed_on_disk_detects_creation_and_deletion(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    holder = PolicyFile(path)
    holder.load()
    assert holder.changed_on_disk() is False

    write(path, ALLOW_WRITES)
    assert holder.changed_on_disk() is True
    holder.load()

    path.unlink()
    assert holder.changed_on_disk() is True


def test_a_failed_load_is_not_retried_until_the_file_changes_again(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, "{")
    holder = PolicyFile(path)

    holder.load()

    assert holder.error is not None
    assert holder.changed_on_disk() is False


def test_a_fixed_policy_has_no_file_and_never_changes() -> None:
    policy = Policy.from_data(ALLOW_WRITES)
    holder = PolicyFile.fixed(policy)
    listener = Listener(holder)

    assert holder.load() is False
    assert holder.changed_on_disk() is False
    assert holder.policy is policy
    assert not holder.using_default
    assert listener.calls == 0
    assert holder.describe() == "built-in policy"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_watch_reloads_the_file_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, ALLOW_WRITES)
    holder = PolicyFile(path)
    holder.load()
    reloaded = asyncio.Event()
    holder.on_change(reloaded.set)

    watcher = asyncio.create_task(holder.watch(interval=0))
    try:
        write(path, {**DENY_WRITES, "description": "a longer file than before"})
        with anyio.fail_after(5):
            await reloaded.wait()
    finally:
        watcher.cancel()

    assert action_for_writes(holder) is Action.DENY
