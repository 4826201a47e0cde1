"""``approver hook claude-code``: the command hook that hands each of the agent's tool calls to approver.

Claude Code runs it before every tool call with the call as JSON on stdin. It posts the call to
the running gateway's ``/hooks/claude-code``, authenticated with the client's token (as the stdio
bridge is), and prints the gateway's answer. It never decides by itself, except where deciding
is safe:

* approver's own MCP tools (``mcp__approver__...``) are answered ``allow`` at once: the gateway
  decides those when the call reaches it, never twice;
* approver not running, a refused token, any error: ``ask``, with the reason, so Claude Code asks
  the person itself. Never ``allow``. A watchdog answers ``ask`` if the gateway has not taken the
  call within :data:`REACH_SECONDS` (a keyring that hangs, a gateway that does not answer);
* a gateway that takes the call but does not answer before the hook's own timeout: ``deny``,
  :data:`MARGIN_SECONDS` before Claude Code would kill the hook. The gateway itself answers
  ``deny`` ("call again") a little earlier still, so this is only the backstop.

Only the standard library and approver's light modules are imported: the answer must come fast.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final

from approver.agents.claude_code import AGENT, HookPayloadError, answer, parse_payload, read_answer

DEFAULT_TIMEOUT: Final = 600
"""Seconds: Claude Code's default timeout for a command hook, and the ``timeout`` install writes."""
MARGIN_SECONDS: Final = 3.0
"""How long before the hook's timeout approver gives its answer, so the answer is read in time."""
GATEWAY_MARGIN: Final = 2.0
"""How much earlier still the gateway answers a held call (so its clear "call again" arrives)."""
REACH_SECONDS: Final = 1.5
"""How long reading the token and reaching the gateway may take before the hook answers ``ask``."""
NOT_RUNNING: Final = (
    "approver is not running, so Claude Code asks you itself. Start approver (`approver`) to decide "
    "this agent's tools with your policy and approval window."
)


@dataclass(frozen=True, slots=True)
class Gateway:
    """Where the running gateway listens, and the token the hook presents."""

    port: int
    token: str


Finder = Callable[[], Gateway | None]
"""Finds the running gateway and this client's token; None when approver is not running."""


class _Once:
    """Writes exactly one answer to stdout, whichever comes first: the real one or the watchdog's."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self.done = False

    def give(self, body: bytes) -> bool:
        with self._lock:
            if self.done:
                return False
            self.done = True
            self._out.write(body + b"\n")
            self._out.flush()
            return True


class _Watchdog:
    """Answers ``fallback`` at ``deadline`` unless an answer was given first; then ends the process."""

    def __init__(self, once: _Once, on_fire: Callable[[], None]) -> None:
        self._once = once
        self._on_fire = on_fire
        self._changed = threading.Condition()
        self._deadline = 0.0
        self._fallback = b""
        self._thread = threading.Thread(target=self._run, name="approver-hook-watchdog", daemon=True)

    def arm(self, deadline: float, fallback: bytes) -> None:
        with self._changed:
            self._deadline, self._fallback = deadline, fallback
            self._changed.notify()
        if not self._thread.is_alive():
            self._thread.start()

    def _run(self) -> None:
        with self._changed:
            while not self._once.done:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    if self._once.give(self._fallback):
                        self._on_fire()
                    return
                self._changed.wait(left)


def run_hook(
    stdin: bytes,
    out: BinaryIO,
    find: Finder,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_fire: Callable[[], None] = lambda: os._exit(0),
) -> None:
    """Answer one hook call read from ``stdin`` on ``out``; never raises, always answers once.

    ``timeout`` is the hook's timeout in Claude Code's settings; ``on_fire`` ends the process when
    the watchdog answered (tests pass a function that returns).
    """
    started = time.monotonic()
    once = _Once(out)
    watchdog = _Watchdog(once, on_fire)
    watchdog.arm(started + REACH_SECONDS, answer("ask", f"approver did not answer within {REACH_SECONDS} s"))
    try:
        once.give(_decide(stdin, find, timeout, started, watchdog))
    except Exception as exc:  # any error: Claude Code asks the person, never allow
        once.give(
            answer("ask", f"approver's hook failed ({type(exc).__name__}: {exc}); Claude Code asks you")
        )


def _decide(stdin: bytes, find: Finder, timeout: float, started: float, watchdog: _Watchdog) -> bytes:
    try:
        call = parse_payload(stdin)
    except HookPayloadError as exc:
        return answer("ask", f"approver could not read this call ({exc}); Claude Code asks you")
    if call.own:
        return answer("allow", "approver decides its own tools when the call reaches it")
    gateway = find()
    if gateway is None:
        return answer("ask", NOT_RUNNING)
    deadline = started + timeout - MARGIN_SECONDS
    budget = deadline - time.monotonic() - GATEWAY_MARGIN
    if budget <= 0:
        return answer(
            "deny", f"approver had no time left to decide within the hook's timeout ({timeout:g} s)"
        )
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=REACH_SECONDS)
    try:
        connection.connect()
    except OSError as exc:  # refused, or nothing answers: approver is not there to decide
        connection.close()
        reason = (
            NOT_RUNNING
            if isinstance(exc, ConnectionRefusedError)
            else f"approver could not be reached ({exc})"
        )
        return answer("ask", reason)
    try:
        if connection.sock is not None:
            connection.sock.settimeout(budget + GATEWAY_MARGIN)
        connection.putrequest("POST", f"/hooks/{AGENT}", skip_host=True, skip_accept_encoding=True)
        for name, value in (
            ("Host", f"127.0.0.1:{gateway.port}"),
            ("Authorization", f"Bearer {gateway.token}"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(stdin))),
            ("X-Approver-Hook-Budget", f"{budget:.1f}"),
        ):
            connection.putheader(name, value)
        connection.endheaders(stdin)
        # The gateway has the call: from now on a missing answer means it is still deciding.
        watchdog.arm(deadline, answer("deny", _too_slow(timeout)))
        response = connection.getresponse()
        body = response.read()
    except TimeoutError:
        return answer("deny", _too_slow(timeout))
    except (OSError, http.client.HTTPException) as exc:
        return answer("ask", f"approver's answer did not arrive ({exc}); Claude Code asks you")
    finally:
        connection.close()
    return _checked(response.status, body)


def _checked(status: int, body: bytes) -> bytes:
    """The gateway's answer, passed on only when it is a well-formed hook answer."""
    if status == 401:
        return answer(
            "ask",
            f"approver refused this hook's token for client {AGENT!r}; Claude Code asks you. "
            "Run `approver token --client claude-code` to make one.",
        )
    if status != 200:
        try:
            error = json.loads(body).get("error", "")
            said = str(error.get("message", error) if isinstance(error, dict) else error)
        except (ValueError, AttributeError):
            said = body[:200].decode(errors="replace")
        return answer("ask", f"approver answered HTTP {status} ({said}); Claude Code asks you")
    try:
        read_answer(body)
    except HookPayloadError as exc:
        return answer("ask", f"approver's answer could not be read ({exc}); Claude Code asks you")
    return body


def _too_slow(timeout: float) -> str:
    return (
        f"approver: nobody decided this call within the hook's {timeout:g} s timeout, so it is denied. "
        "If the user approves it in approver's window, the same call made again runs."
    )


def main(find: Finder, timeout: float) -> int:
    """The command: read stdin, answer on stdout, exit 0 (Claude Code reads the JSON only then)."""
    data = sys.stdin.buffer.read()
    run_hook(data, sys.stdout.buffer, find, timeout=timeout)
    return 0
