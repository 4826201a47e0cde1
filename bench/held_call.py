"""A call approved 65 s after it arrived, from an agent on the TypeScript MCP SDK, at the real defaults.

Usage: ``python bench/held_call.py [--approve-after 65] [--patience 50] [--json]``. The agent runs
``@modelcontextprotocol/sdk`` (pinned in ``approver/testing/ts_agent``) with its default request
options: a request times out after 60 s, and progress does not extend it. approver holds the call,
answers it "call again" at the client's patience (50 s by default), joins the agent's retries to
the same pending decision, and the person approves 65 s after the call arrived. Needs ``node`` and
``npm``; takes about 70 s. Figures: when the result reached the agent, how many calls it made,
how many dialogs opened, how many times the upstream ran, and how many of the agent's requests
timed out in the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from common import Figure, print_figures

from approver.testing import ts_client
from approver.testing.harness import running_service, upstream_entry, write_config
from approver.testing.held_scenario import HeldRun, run_held_call

POLICY = {"version": "1", "default": "deny", "tools": {"test__echo": {"action": "require_approval"}}}


async def measure(root: Path, approve_after: float, patience: float | None) -> HeldRun:
    call_log = root / "calls.jsonl"
    paths = write_config(root, {"test": upstream_entry("test", "--call-log", str(call_log))}, POLICY)
    if patience is not None:
        paths.settings_file.write_text(json.dumps({"patience": patience}), "utf-8")
    async with running_service(paths, approval_timeout=300) as service:
        return await run_held_call(
            service,
            ts_client.install(),
            client="ts-agent",
            arguments={"text": "approved late"},
            approve_after=approve_after,
            call_log=call_log,
            bound=approve_after + 120,
        )


def main() -> int:
    """Command line: run once, then print the figures (or JSON lines with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--approve-after", type=float, default=65.0, help="seconds after the call arrived")
    parser.add_argument("--patience", type=float, help="approver's patience for the agent (default: 50 s)")
    parser.add_argument("--json", action="store_true", help="print JSON lines (for run_all.py)")
    args = parser.parse_args()
    missing = ts_client.missing_tools()
    if missing is not None:
        print(f"cannot run the TypeScript SDK agent: {missing}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as temp:
        run = asyncio.run(measure(Path(temp), args.approve_after, args.patience))
    results = run.results()
    answered = [r for r in results if not r["isError"]]
    told = [r for r in results if r["isError"] and ts_client.RETRY_HINT in r["text"]]
    name = f"held call, approved after {args.approve_after:g} s"
    result_at = answered[0]["at"] if answered else float("nan")
    held_again = bool(results and results[-1]["isError"] and ts_client.RETRY_HINT in results[-1]["text"])
    dialogs = len(run.arrived) - (1 if held_again else 0)
    figures = [
        Figure(name, "result reached the agent after", result_at, "s", "a result", bool(answered)),
        Figure(
            name, "calls the agent made until then", float(answered[0]["attempt"] if answered else 0), "calls"
        ),
        Figure(name, "answers 'call again' (all calls)", float(len(told)), "answers"),
        Figure(
            name,
            "requests timed out in the SDK",
            float(len(run.agent.of("error"))),
            "requests",
            "0",
            not run.agent.of("error"),
        ),
        Figure(
            name,
            "dialogs for the call and its retries",
            float(dialogs),
            "dialogs",
            "1",
            dialogs == 1,
        ),
        Figure(
            name, "upstream runs", float(len(run.upstream_calls)), "runs", "1", len(run.upstream_calls) == 1
        ),
        Figure(
            name,
            "identical call after the result",
            float(held_again),
            "held again",
            "held again (single use)",
            held_again and len(run.arrived) == 2,
        ),
    ]
    print_figures(figures, as_json=args.json)
    return 0 if all(figure.met is not False for figure in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
