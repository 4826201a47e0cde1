"""A small scripted "agent" that makes the demo's calls through approver and says what happens.

It connects to the gateway over Streamable HTTP with a bearer token, lists the tools and makes
five calls against the demo sandbox: two reads (allowed by the policy), a write and a delete
(held for the user's approval), and a delete in ``keep/`` (denied by the policy). Each step is
narrated in plain words through ``say``. Run it as
``python -m approver.demo.agent --url URL --token TOKEN``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import httpx2
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from approver.approval.held import RETRY_PHRASE
from approver.demo.sandbox import PROTECTED_FOLDER, SERVER_NAME
from approver.errors import ApproverError

CLIENT_NAME: Final = "demo-agent"
"""The client name to create the demo agent's token under."""

TOKEN_ENV: Final = "APPROVER_DEMO_TOKEN"  # noqa: S105 - the variable's name, not a token
"""Environment variable ``main`` reads the token from when ``--token`` is not given."""

DENIED_PREFIX: Final = "approver denied this call: "
RETRY_DELAY: Final = 2.0
"""Seconds the demo agent waits before calling again when approver says the call is still held."""
"""How the gateway's answer to a call it did not forward begins."""

SUMMARY_TEXT: Final = (
    "Summary of notes.txt, written by approver's demo agent:\n"
    "approver lets reads run, asks before changes, and refuses what the policy forbids.\n"
)
"""What the agent asks to write to ``summary.txt``."""

HTTP_TIMEOUT: Final = httpx2.Timeout(30.0, read=600.0)
"""A call may wait for a person for minutes, so reads wait longer than approver's approval timeout."""

TOOLS_WAIT: Final = 60.0
"""Seconds the agent waits for approver to list the demo tools (the demo server starts alongside)."""

_RELIST_EVERY: Final = 1.0
"""Seconds between two listings while waiting, in case a list-changed notification is missed."""

_PREVIEW_CHARS: Final = 300
_POLICY_DENIAL: Final = re.compile(r"denied by policy rule (?:.+?): (.+)", re.DOTALL)
_URL_TOKEN: Final = re.compile(r"/t/[^/]+/")
"""The token part of a URL with an embedded token (``/t/<token>/mcp``), hidden when shown."""


class AgentError(ApproverError):
    """The agent could not reach approver or could not do its demo; the message says what to do."""

    def __init__(self, message: str, steps: Sequence[Step] = ()) -> None:
        super().__init__(message)
        self.steps = list(steps)
        """The steps that were made before the failure."""


@dataclass(frozen=True, slots=True)
class Step:
    """One call the agent made and what came of it."""

    tool: str
    """The tool's name as approver exposes it (``files__read_file``)."""
    arguments: Mapping[str, Any]
    allowed: bool
    """True when approver let the call through to the server; False when approver denied it."""
    text: str
    """The text that came back: the server's answer, or approver's reason for the denial."""
    error: bool
    """True for a denial and for an error the server reported."""


@dataclass(frozen=True, slots=True)
class _Plan:
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    intent: str = ""
    expect: str = ""


SCRIPT: Final = (
    _Plan("list_files", {}, "list the files in the sandbox", "Reading is allowed by the demo policy."),
    _Plan("read_file", {"path": "notes.txt"}, "read notes.txt", "Reading is allowed by the demo policy."),
    _Plan(
        "write_file",
        {"path": "summary.txt", "content": SUMMARY_TEXT},
        "write a summary to summary.txt",
        "Writing needs your approval: approve or deny it in approver's window.",
    ),
    _Plan(
        "delete_file",
        {"path": "draft.txt"},
        "delete draft.txt",
        "Deleting needs your approval too.",
    ),
    _Plan(
        "delete_file",
        {"path": f"{PROTECTED_FOLDER}/contract.txt"},
        f"delete {PROTECTED_FOLDER}/contract.txt",
        f"The demo policy protects {PROTECTED_FOLDER}/, so approver should refuse without asking you.",
    ),
)
"""The calls the agent makes, in order (tool names as the demo server spells them)."""


async def run_agent(
    url: str,
    token: str,
    *,
    pause: float = 1.5,
    say: Callable[[str], None] = print,
    tools_wait: float = TOOLS_WAIT,
) -> list[Step]:
    """Connect to approver at ``url`` with ``token``, make the demo calls and narrate them.

    approver starts the demo server alongside the agent, so the agent waits up to
    ``tools_wait`` seconds for the demo tools to be listed. It waits ``pause`` seconds between
    steps so a person can follow. A denied call or an error result is recorded as a
    :class:`Step`, never raised. Raises :class:`AgentError` when approver cannot be reached,
    refuses the token, or does not offer the demo tools in time. ``say`` gets text that
    includes what the server returned: show it as plain text.
    """
    steps: list[Step] = []
    shown = _URL_TOKEN.sub("/t/***/", url)
    say(f"agent: Hello! I am approver's demo agent. Connecting to approver at {shown} ...")
    try:
        async with _connect(url, token) as (session, listed):
            names = await _wait_for_tools(session, listed, tools_wait, say)
            say(f"agent: approver lists the tools I need: {', '.join(names.values())}.")
            for plan in SCRIPT:
                await anyio.sleep(pause)
                steps.append(await _make(session, names[plan.tool], plan, say))
    except Exception as error:
        message = _problem(error, shown)
        if message is None:
            raise
        raise AgentError(message, steps) from None
    await anyio.sleep(pause)
    say("agent: That was the demo. approver's audit log lists every call and who decided it.")
    return steps


class _ToolListWatch:
    """Notices approver's tool-list-changed notifications, one wait at a time."""

    def __init__(self) -> None:
        self._changed = anyio.Event()

    async def on_message(self, message: object) -> None:
        """The session's message handler."""
        if isinstance(message, types.ToolListChangedNotification):
            self._changed.set()

    def renew(self) -> None:
        """Forget earlier notifications: :meth:`wait` waits for the next one."""
        self._changed = anyio.Event()

    async def wait(self, seconds: float) -> None:
        """Until the next notification, or ``seconds`` at most."""
        with anyio.move_on_after(seconds):
            await self._changed.wait()


@asynccontextmanager
async def _connect(url: str, token: str) -> AsyncIterator[tuple[ClientSession, _ToolListWatch]]:
    headers = {"authorization": f"Bearer {token}"}
    watch = _ToolListWatch()
    async with (
        httpx2.AsyncClient(headers=headers, timeout=HTTP_TIMEOUT) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, message_handler=watch.on_message) as session,
    ):
        await session.initialize()
        yield session, watch


async def _wait_for_tools(
    session: ClientSession, listed: _ToolListWatch, seconds: float, say: Callable[[str], None]
) -> dict[str, str]:
    """The demo tools' exposed names once approver lists them all; AgentError after ``seconds``.

    approver lists an upstream's tools once that server has started, and tells connected
    clients with a list-changed notification; a listing every second covers a missed one.
    """
    deadline = anyio.current_time() + seconds
    told = False
    while True:
        listed.renew()
        names, missing = _tool_names([tool.name for tool in (await session.list_tools()).tools])
        if not missing:
            return names
        left = deadline - anyio.current_time()
        if left <= 0:
            raise AgentError(
                f"approver does not offer the demo tools {', '.join(missing)} after {seconds:g} s: the "
                f"demo server '{SERVER_NAME}' did not start; its state and error are in approver's "
                "Servers window"
            )
        if not told:
            say("agent: approver is still starting the demo server; I wait until it lists its tools ...")
            told = True
        await listed.wait(min(_RELIST_EVERY, left))


def _tool_names(offered: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The exposed name of each scripted tool among ``offered``, and the scripted tools missing."""
    names: dict[str, str] = {}
    for plan in SCRIPT:
        wanted = f"{SERVER_NAME}__{plan.tool}"
        found = (
            wanted if wanted in offered else next((n for n in offered if n.endswith(f"__{plan.tool}")), None)
        )
        if found is not None:
            names[plan.tool] = found
    return names, sorted({plan.tool for plan in SCRIPT} - names.keys())


async def _make(session: ClientSession, tool: str, plan: _Plan, say: Callable[[str], None]) -> Step:
    say(f"agent: I want to {plan.intent}. {plan.expect}")
    while True:
        try:
            result = await session.call_tool(tool, plan.arguments)
        except MCPError as error:
            text = f"the call failed: {error.error.message}"
            say(f"agent: {text}")
            return Step(tool, dict(plan.arguments), allowed=False, text=text, error=True)
        text = "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
        if not (result.is_error and RETRY_PHRASE in text):
            break
        # approver held the call longer than this client's patience: ask again, as told.
        say("agent: approver is still waiting for you to decide; I will call again in a moment.")
        await anyio.sleep(RETRY_DELAY)
    if result.is_error and text.startswith(DENIED_PREFIX):
        say(f"approver: {_denial(text.removeprefix(DENIED_PREFIX))}")
        return Step(tool, dict(plan.arguments), allowed=False, text=text, error=True)
    if result.is_error:
        say(f"agent: approver let the call through, but the server reported an error: {_preview(text)}")
    else:
        say(f"agent: done. The server answered: {_preview(text)}")
    return Step(tool, dict(plan.arguments), allowed=True, text=text, error=result.is_error)


def _denial(reason: str) -> str:
    """``denied by policy: <reason>`` for a policy rule's denial; other denials as approver wrote them."""
    match = _POLICY_DENIAL.fullmatch(reason)
    if match is not None:
        return f"denied by policy: {match.group(1)}"
    return reason if reason.startswith("denied") else f"denied: {reason}"


def _preview(text: str) -> str:
    flat = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 3] + "..."


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _problem(error: Exception, url: str) -> str | None:
    """A message for a failure to reach or use approver; None for anything else (a bug)."""
    for leaf in _leaves(error):
        if isinstance(leaf, AgentError):
            return str(leaf)
        if isinstance(leaf, httpx2.TimeoutException):
            return f"approver at {url} stopped answering ({type(leaf).__name__}); is it still running?"
        if isinstance(leaf, httpx2.HTTPError | OSError):
            return f"could not reach approver at {url}: {leaf}; is approver running, and is the URL right?"
        if isinstance(leaf, MCPError):
            return f"approver refused the connection: {leaf.error.message}"
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: run the demo agent against a running approver."""
    parser = argparse.ArgumentParser(
        prog="python -m approver.demo.agent", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--url", required=True, help="approver's MCP endpoint, like http://127.0.0.1:PORT/mcp"
    )
    parser.add_argument("--token", help=f"the client token (default: ${TOKEN_ENV})")
    parser.add_argument("--pause", type=float, default=1.5, help="seconds between steps (default 1.5)")
    options = parser.parse_args(argv)
    token = options.token or os.environ.get(TOKEN_ENV)
    if not token:
        parser.error(f"give the client token with --token or ${TOKEN_ENV}")
    try:
        anyio.run(lambda: run_agent(options.url, token, pause=options.pause))
    except AgentError as error:
        print(f"agent: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
