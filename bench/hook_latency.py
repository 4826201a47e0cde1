"""How long ``approver hook claude-code`` takes to answer, as Claude Code runs it (one run, wall clock).

Usage: python bench/hook_latency.py [RUNS]

Runs the hook as a real subprocess, a fresh Python each time, fed a real ``PreToolUse`` payload:
against a running gateway whose policy denies the command (the answer a person never waits
for), against one that allows it, and with approver stopped (the answer must be ``ask`` within
2 s). Prints the median and the slowest run of each, and the bare Python start-up for scale.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import keyring.backends.fail

from approver.config.paths import Paths
from approver.testing.harness import running_service, write_config

POLICY = {
    "version": "1",
    "default": "deny",
    "tools": {
        "claude-code__Bash": {
            "action": "allow",
            "conditions": [
                {"when": {"command": {"contains": "rm -rf"}}, "action": "deny", "reason": "never"}
            ],
        }
    },
}


def payload(command: str) -> bytes:
    call = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command}}
    return json.dumps({"session_id": "bench", "cwd": "/tmp", **call}).encode()


async def run(argv: list[str], data: bytes) -> tuple[float, str]:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await process.communicate(data)
    took = time.perf_counter() - started
    answer = json.loads(out)["hookSpecificOutput"]["permissionDecision"] if out else "(nothing)"
    return took, answer


async def series(argv: list[str], data: bytes, runs: int) -> tuple[list[float], set[str]]:
    times, answers = [], set()
    for _ in range(runs):
        took, answer = await run(argv, data)
        times.append(took)
        answers.add(answer)
    return times, answers


def line(label: str, times: list[float], answers: set[str]) -> str:
    median, worst = statistics.median(times) * 1000, max(times) * 1000
    said = ", ".join(sorted(answers))
    return f"  {label:<34} {median:7.0f} ms median, {worst:7.0f} ms slowest, answered {said}"


async def main(runs: int) -> None:
    python = await series([sys.executable, "-c", "pass"], b"", runs)
    with tempfile.TemporaryDirectory() as root:
        paths = write_config(Path(root), {}, POLICY)
        hook = [sys.executable, "-m", "approver", "--data-dir", str(paths.data_dir), "hook", "claude-code"]
        backend = keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]
        async with running_service(paths, keyring_backend=backend):
            denied = await series(hook, payload("rm -rf ~/project"), runs)
            allowed = await series(hook, payload("git status"), runs)
        stopped_paths = Paths(paths.config_dir, Path(root) / "no-gateway")
        stopped_hook = [*hook[:3], "--data-dir", str(stopped_paths.data_dir), *hook[5:]]
        stopped = await series(stopped_hook, payload("rm -rf ~/project"), runs)
    print(f"approver hook claude-code, {runs} runs each (a fresh process per run):")
    print(line("python -c pass (for scale)", *python))
    print(line("denied by policy (rm -rf)", *denied))
    print(line("allowed by policy (git status)", *allowed))
    print(line("approver not running", *stopped))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
