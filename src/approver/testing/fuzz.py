"""Fuzz loops that send hostile input to a running gateway and check it keeps its promises.

:func:`run_http_fuzz` posts raw bytes to the gateway's ``/mcp`` endpoint; :func:`run_bridge_fuzz`
(from :mod:`approver.testing.fuzz_bridge`) writes raw lines to an ``approver connect``
subprocess. Both take any running gateway, generate their inputs from a seed
(:mod:`approver.testing.fuzz_cases`), prove after every input that the gateway still serves,
and return a :class:`FuzzReport`. Given the upstream test server's ``--call-log`` file and the
audit database, they also check that every call that reached the upstream had an ``allow``
decision row for exactly its arguments. The three promises, as report fields that must stay
empty: ``unexpected`` (every input got a proper error or a valid answer), ``gateway_failures``
(it kept serving), ``undecided_calls`` (nothing reached an upstream without a decision).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Final

import httpx2

from approver.testing.fuzz_bridge import connect_command, run_bridge_fuzz
from approver.testing.fuzz_cases import LEGACY, MODERN, Case, dumps, http_cases, request, routing
from approver.testing.fuzz_report import ERROR, RESULT, SILENT, FuzzReport, undecided_calls

__all__ = ["FuzzReport", "classify_http", "connect_command", "run_bridge_fuzz", "run_http_fuzz"]

FAILURE: Final = "failure"
"""An answer kind: a 5xx, a dropped connection or a timeout."""
_BASE_HEADERS: Final = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def classify_http(status: int, body: bytes) -> tuple[str, str]:
    """The kind of an HTTP answer and a one-line detail.

    Kinds: :data:`ERROR`, :data:`RESULT`, :data:`SILENT`, :data:`FAILURE`, or a description of
    something else (an empty 4xx, a 200 without an answer).
    """
    detail = f"HTTP {status} {body[:160]!r}"
    if status >= 500:
        return FAILURE, detail
    if status == 202 and not body.strip():
        return SILENT, detail
    if 400 <= status < 500:
        return (ERROR if body.strip() else "bare 4xx"), detail
    for message in _messages(body):
        if "error" in message:
            return ERROR, detail
        if "result" in message:
            result = message["result"]
            return (ERROR if isinstance(result, dict) and result.get("isError") is True else RESULT), detail
    return "no answer", detail


def _messages(body: bytes) -> list[dict[str, Any]]:
    """The JSON-RPC messages in a JSON or Server-Sent Events body."""
    text = body.decode("utf-8", errors="replace")
    chunks = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")] or [text]
    found = []
    for chunk in chunks:
        try:
            message = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(message, dict):
            found.append(message)
    return found


class _HttpFuzzer:
    """One run against one gateway URL; owns a legacy session used by the cases and the checks."""

    def __init__(
        self, http: httpx2.AsyncClient, url: str, token: str, other_token: str | None, tool: str | None
    ):
        self.http = http
        self.url = url
        self.token = token
        self.other_token = other_token
        self.tool = tool
        self.session = ""
        self.checks = 0

    def _auth(self, token: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {token or self.token}"}

    async def open_session(self, token: str | None = None) -> str:
        """Initialize a 2025-11-25 session and return its id."""
        params = {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "approver-fuzz", "version": "0"},
        }
        headers = _BASE_HEADERS | self._auth(token)
        answer = await self.http.post(
            self.url, headers=headers, content=dumps(request("initialize", params, 0, LEGACY))
        )
        answer.raise_for_status()
        session = answer.headers["mcp-session-id"]
        initialized = dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        headers |= {"mcp-session-id": session, "mcp-protocol-version": LEGACY}
        (await self.http.post(self.url, headers=headers, content=initialized)).raise_for_status()
        # As clients do before calling: the gateway then knows the session, and its tool calls
        # take the front door's fast path, which is what most real calls go through.
        listing = dumps(request("tools/list", None, "list", LEGACY))
        (await self.http.post(self.url, headers=headers, content=listing)).raise_for_status()
        return str(session)

    async def _session_header(self, session: str) -> dict[str, str]:
        if session == "live":
            return {"mcp-session-id": self.session, "mcp-protocol-version": LEGACY}
        if session == "none":
            return {"mcp-protocol-version": LEGACY}
        if session == "stale":
            stale = await self.open_session()
            await self.http.delete(self.url, headers=self._auth() | {"mcp-session-id": stale})
            return {"mcp-session-id": stale, "mcp-protocol-version": LEGACY}
        if session == "other-client":
            # Another client's live session: the gateway must not let this client ride it.
            other = await self.open_session(self.other_token) if self.other_token else uuid.uuid4().hex
            return {"mcp-session-id": other, "mcp-protocol-version": LEGACY}
        return {"mcp-session-id": session, "mcp-protocol-version": LEGACY}

    async def send(self, case: Case) -> tuple[str, str]:
        """Post one case and classify the answer."""
        headers = _BASE_HEADERS | self._auth()
        if case.era == LEGACY:
            headers |= await self._session_header(case.session)
        headers |= case.headers
        # A hostile client sends whatever bytes it likes; httpx would refuse non-ASCII str values.
        wire = {name.encode(): value.encode("utf-8") for name, value in headers.items() if value}
        try:
            answer = await self.http.post(self.url, headers=wire, content=case.body)
        except (httpx2.HTTPError, TimeoutError) as exc:
            return FAILURE, f"{type(exc).__name__}: {exc}"
        return classify_http(answer.status_code, answer.content)

    async def alive(self, index: int) -> str | None:
        """None when a valid request is served now; else what went wrong."""
        self.checks += 1
        marker = f"alive-{uuid.uuid4().hex}"
        if index % 2 == 0 and self.tool is not None:
            params = {"name": self.tool, "arguments": {"text": marker}}
            body, headers = request("tools/call", params, 1, MODERN), routing("tools/call", self.tool)
        elif index % 2 == 0:
            body, headers = request("ping", None, 1, MODERN), routing("ping")
        else:
            body, headers = request("ping", None, 1, LEGACY), await self._session_header("live")
        try:
            answer = await self.http.post(
                self.url, headers=_BASE_HEADERS | self._auth() | headers, content=dumps(body)
            )
        except (httpx2.HTTPError, TimeoutError) as exc:
            return f"liveness check after input {index}: {type(exc).__name__}: {exc}"
        kind, detail = classify_http(answer.status_code, answer.content)
        if kind != RESULT or (body["method"] == "tools/call" and marker.encode() not in answer.content):
            return f"liveness check after input {index}: {detail}"
        return None


async def run_http_fuzz(
    url: str,
    token: str,
    *,
    seed: int,
    count: int,
    other_token: str | None = None,
    tool: str | None = "test__echo",
    call_log: Path | None = None,
    audit_db: Path | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - a per-request bound for the HTTP client
) -> FuzzReport:
    """Send ``count`` hostile inputs (from ``seed``) to the MCP endpoint ``url`` with client ``token``.

    ``other_token`` (a second client's token) enables the case where one client presents
    another client's live session id. ``tool`` is an allowed tool that echoes its ``text``
    argument, called between inputs to prove the gateway still serves (None: ping only).
    With ``call_log`` (the test server's ``--call-log``) and ``audit_db`` (the gateway's audit
    database) the report also lists upstream calls that had no ``allow`` decision.
    """
    report = FuzzReport("http", seed)
    started = time.monotonic()
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(timeout)) as http:
        fuzzer = _HttpFuzzer(http, url, token, other_token, tool)
        fuzzer.session = await fuzzer.open_session()
        for index, case in enumerate(http_cases(seed, count, tool or "test__echo")):
            kind, detail = await fuzzer.send(case)
            if kind == FAILURE:
                report.tried[case.category] += 1
                report.gateway_failures.append(f"{case.category} ({case.era}): {detail}")
            else:
                report.record(case, kind, detail)
            problem = await fuzzer.alive(index)
            if problem is not None:
                report.gateway_failures.append(problem)
                fuzzer.session = await fuzzer.open_session()
        report.liveness_checks = fuzzer.checks
    if call_log is not None and audit_db is not None:
        report.upstream_calls, report.undecided_calls = undecided_calls(call_log, audit_db)
    report.seconds = time.monotonic() - started
    return report
