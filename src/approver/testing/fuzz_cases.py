"""Hostile inputs for the gateway and the stdio bridge, generated from a seed.

Each :class:`Case` is one message as raw bytes, what kind of answer a sound gateway gives it
(:class:`Expect`) and, for the HTTP door, the headers and session it is sent with. The same
seed always gives the same cases, so a failure found by a fuzz run is a reproducible test.
"""

from __future__ import annotations

import enum
import json
import random
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

LEGACY: Final = "2025-11-25"
"""The session-based protocol era (``initialize``, ``mcp-session-id``)."""
MODERN: Final = "2026-07-28"
"""The sessionless protocol era (``_meta`` and routing headers on every request)."""
META: Final[dict[str, Any]] = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "approver-fuzz", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
"""The ``_meta`` a 2026-07-28 request carries."""
ACCEPTED_DEPTH: Final = 99
"""The deepest array nested in an argument that approver accepts (with the arguments object
around it, 100 levels: :data:`approver.gateway.arguments.MAX_ARGUMENT_DEPTH`)."""
MIB: Final = 1024 * 1024


class Expect(enum.Enum):
    """What a sound gateway answers to a case."""

    ERROR = "error"
    """A JSON-RPC error, a tool error result, or an HTTP 4xx with a message."""
    ANSWER = "answer"
    """Any well-formed answer: odd but valid input may be served."""
    SILENT = "silent"
    """Read as a notification: no answer (HTTP 202), or an error."""


@dataclass(frozen=True)
class Case:
    """One hostile message."""

    category: str
    body: bytes
    expect: Expect
    era: str = LEGACY
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra HTTP headers; an empty value removes a default header."""
    session: str = "live"
    """Legacy era: ``live`` (the runner's session), ``none``, ``stale``, ``other-client``, or a forged id."""
    request_id: str | int | None = None
    """The id an answer carries when the message is a readable request."""


def dumps(message: Any) -> bytes:
    """Compact JSON bytes; NaN and Infinity are written as JavaScript literals on purpose."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def request(method: str, params: dict[str, Any] | None, request_id: Any, era: str) -> dict[str, Any]:
    """A JSON-RPC request of ``era`` (2026-07-28 requests carry ``_meta``)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if era == MODERN:
        params = dict(params or {}, _meta=META)
    if params is not None:
        message["params"] = params
    return message


def routing(method: str, name: str | None = None) -> dict[str, str]:
    """The headers a 2026-07-28 request needs besides its body."""
    headers = {"mcp-protocol-version": MODERN, "mcp-method": method}
    if name is not None:
        headers["mcp-name"] = name
    return headers


class _Builder:
    """Builds the case of each category for one seed."""

    def __init__(self, seed: int, tool: str) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        self.seed = seed
        self.tool = tool
        self.index = 0

    def marker(self) -> str:
        return f"fuzz-{self.seed}-{self.index}"

    def call(
        self, era: str, arguments: Any, *, category: str, expect: Expect, name: str | None = None
    ) -> Case:
        name = self.tool if name is None else name
        body = dumps(request("tools/call", {"name": name, "arguments": arguments}, self.index, era))
        headers = routing("tools/call", name) if era == MODERN else {}
        return Case(category, body, expect, era, headers, request_id=self.index)

    def raw(self, era: str, body: bytes, expect: Expect, category: str, method: str = "tools/call") -> Case:
        headers = routing(method, self.tool if method == "tools/call" else None) if era == MODERN else {}
        return Case(category, body, expect, era, headers)

    # -- categories -----------------------------------------------------------------------------

    def malformed_json(self, era: str) -> Case:
        junk = "".join(self.rng.choice(string.printable) for _ in range(self.rng.randint(1, 64)))
        body = self.rng.choice(
            [b"{not json", b"", b'{"jsonrpc":"2.0",}', b"null", b"42", b'"ping"', junk.encode(), b"{" * 3]
        )
        return self.raw(era, body, Expect.ERROR, "malformed-json")

    def truncated_json(self, era: str) -> Case:
        whole = self.call(era, {"text": self.marker()}, category="", expect=Expect.ERROR).body
        cut = whole[: self.rng.randint(1, len(whole) - 1)]
        return self.raw(era, cut, Expect.ERROR, "truncated-json")

    def invalid_utf8(self, era: str) -> Case:
        bad = self.rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
        whole = self.call(era, {"text": self.marker()}, category="", expect=Expect.ERROR).body
        body = whole.replace(self.marker().encode(), self.marker().encode() + bad, 1)
        headers = routing("tools/call", self.tool) if era == MODERN else {}
        return Case("invalid-utf8", body, Expect.ERROR, era, headers, request_id=self.index)

    def wrong_shape(self, era: str) -> Case:
        good = request(
            "tools/call", {"name": self.tool, "arguments": {"text": self.marker()}}, self.index, era
        )
        variants: list[Callable[[dict[str, Any]], None]] = [
            lambda m: m.pop("jsonrpc"),
            lambda m: m.update(jsonrpc="1.0"),
            lambda m: m.update(jsonrpc=2.0),
            lambda m: m.update(method=42),
            lambda m: m.update(params=[self.tool, {"text": "x"}]),
            lambda m: m.update(params="tools"),
            lambda m: m["params"].update(arguments=["not", "an", "object"]),
            lambda m: m["params"].update(arguments="text=x"),
            lambda m: m["params"].pop("name"),
            lambda m: m["params"].update(name=42),
        ]
        self.rng.choice(variants)(good)
        case = self.raw(era, dumps(good), Expect.ERROR, "wrong-shape")
        return Case(case.category, case.body, case.expect, era, case.headers, request_id=self.index)

    def extra_fields(self, era: str) -> Case:
        message = request("ping", {"unexpected": [1, 2]}, self.index, era)
        message |= {"extra": {"nested": True}, "x-fuzz": self.marker()}
        headers = routing("ping") if era == MODERN else {}
        return Case("extra-fields", dumps(message), Expect.ANSWER, era, headers, request_id=self.index)

    def answer_shaped(self, era: str) -> Case:
        body = self.rng.choice([b" ", b"", dumps({"jsonrpc": "2.0", "id": 10**6 + self.index, "result": {}})])
        expect = Expect.SILENT if body.startswith(b"{") else Expect.ERROR
        return Case("answer-shaped", body, expect, era)

    def odd_id(self, era: str) -> Case:
        odd = self.rng.choice([1.5, {"a": 1}, [1], True, None, -0.0])
        headers = routing("ping") if era == MODERN else {}
        # The SDK reads an object whose id is no string or integer as a notification.
        return Case("odd-id", dumps(request("ping", None, odd, era)), Expect.SILENT, era, headers)

    def long_id(self, era: str) -> Case:
        choices: list[str | int] = [2**70, -(2**63), "i" * 10_000, "\u202eevil\u200b"]
        odd = self.rng.choice(choices)
        headers = routing("ping") if era == MODERN else {}
        return Case(
            "odd-id", dumps(request("ping", None, odd, era)), Expect.ANSWER, era, headers, request_id=odd
        )

    def batch(self, era: str) -> Case:
        one = request(
            "tools/call", {"name": self.tool, "arguments": {"text": self.marker()}}, self.index, era
        )
        body = self.rng.choice([dumps([one, one]), b"[]", dumps([1, 2, 3]), dumps([one])])
        return self.raw(era, body, Expect.ERROR, "batch")

    def notification_with_id(self, era: str) -> Case:
        method = self.rng.choice(["notifications/initialized", "notifications/cancelled"])
        headers = routing(method) if era == MODERN else {}
        body = dumps(request(method, {"requestId": 1}, self.index, era))
        return Case("notification-with-id", body, Expect.ERROR, era, headers, request_id=self.index)

    def call_without_id(self, era: str) -> Case:
        message = request("tools/call", {"name": self.tool, "arguments": {"text": self.marker()}}, 0, era)
        del message["id"]
        # A notification named tools/call: never answered, and must never reach an upstream.
        return self.raw(era, dumps(message), Expect.SILENT, "call-without-id")

    def unknown_method(self, era: str) -> Case:
        method = self.rng.choice(
            ["evil/method", "tools/delete", "", "rpc.discover", "m" * 5000, "tools/call/"]
        )
        headers = routing(method) if era == MODERN else {}
        body = dumps(request(method, {}, self.index, era))
        return Case("unknown-method", body, Expect.ERROR, era, headers, request_id=self.index)

    def unknown_tool(self, era: str) -> Case:
        name = self.rng.choice(["nope__missing", "test__echo\u200b", "x" * 10_000, "../../etc/passwd"])
        return self.call(
            era, {"text": self.marker()}, category="unknown-tool", expect=Expect.ERROR, name=name
        )

    def huge_arguments(self, era: str) -> Case:
        size = self.rng.choice([10 * MIB, 5 * MIB, 2 * MIB])
        expect = Expect.ERROR if size > 4 * MIB else Expect.ANSWER
        arguments = {"text": self.marker(), "padding": "x" * size}
        return self.call(era, arguments, category="huge-arguments", expect=expect)

    def deep_arguments(self, era: str) -> Case:
        depth = self.rng.choice([100_000, 10_000, 1_000, 900, 300, ACCEPTED_DEPTH + 1, ACCEPTED_DEPTH])
        deep = "[" * depth + "]" * depth
        whole = self.call(era, {"text": self.marker(), "deep": 0}, category="", expect=Expect.ERROR)
        body = whole.body.replace(b'"deep":0', b'"deep":' + deep.encode(), 1)
        expect = Expect.ANSWER if depth <= ACCEPTED_DEPTH else Expect.ERROR
        return Case("deep-arguments", body, expect, era, whole.headers, request_id=self.index)

    def odd_numbers(self, era: str) -> Case:
        number, expect = self.rng.choice(
            [(float("nan"), Expect.ERROR), (float("inf"), Expect.ERROR), (float("-inf"), Expect.ERROR),
             (2**200, Expect.ANSWER), (-0.0, Expect.ANSWER), (1e-320, Expect.ANSWER)]
        )  # fmt: skip
        return self.call(era, {"text": self.marker(), "n": number}, category="odd-numbers", expect=expect)

    def content_type(self, era: str) -> Case:
        case = self.call(era, {"text": self.marker()}, category="content-type", expect=Expect.ERROR)
        header, value = self.rng.choice(
            [("content-type", "text/plain"), ("content-type", ""), ("content-type", "multipart/form-data"),
             ("accept", "text/html"), ("accept", "application/xml")]
        )  # fmt: skip
        return Case(case.category, case.body, Expect.ERROR, era, {**case.headers, header: value})

    def forged_session(self, era: str) -> Case:
        session = self.rng.choice(
            ["f" * 32, "".join(self.rng.choice("0123456789abcdef") for _ in range(32)), "../../admin",
             "s" * 8000, "none", "stale", "other-client"]
        )  # fmt: skip
        case = self.call(LEGACY, {"text": self.marker()}, category="forged-session", expect=Expect.ERROR)
        return Case(case.category, case.body, Expect.ERROR, LEGACY, {}, session, case.request_id)

    def header_mismatch(self, era: str) -> Case:
        case = self.call(MODERN, {"text": self.marker()}, category="header-mismatch", expect=Expect.ERROR)
        header, value = self.rng.choice(
            [("mcp-name", "test__delete_note"), ("mcp-method", "ping"), ("mcp-name", ""),
             ("mcp-protocol-version", "1999-01-01")]
        )  # fmt: skip
        return Case(case.category, case.body, Expect.ERROR, MODERN, {**case.headers, header: value})


HTTP_CATEGORIES: Final = (
    "malformed_json", "truncated_json", "invalid_utf8", "wrong_shape", "extra_fields", "odd_id", "long_id",
    "batch", "notification_with_id", "call_without_id", "unknown_method", "unknown_tool", "huge_arguments",
    "deep_arguments", "odd_numbers", "content_type", "forged_session", "header_mismatch",
)  # fmt: skip
"""Every category sent to the HTTP door, in the order a run cycles through them."""


def http_cases(seed: int, count: int, tool: str = "test__echo") -> list[Case]:
    """``count`` cases for the HTTP door, cycling through :data:`HTTP_CATEGORIES`, both eras."""
    builder = _Builder(seed, tool)
    cases = []
    for index in range(count):
        builder.index = index
        make: Callable[[str], Case] = getattr(builder, HTTP_CATEGORIES[index % len(HTTP_CATEGORIES)])
        cases.append(make(builder.rng.choice([LEGACY, MODERN])))
    return cases


BRIDGE_CATEGORIES: Final = (
    "malformed_json", "truncated_json", "invalid_utf8", "wrong_shape", "extra_fields", "odd_id", "long_id",
    "batch", "notification_with_id", "call_without_id", "unknown_method", "unknown_tool", "huge_arguments",
    "deep_arguments", "odd_numbers", "answer_shaped",
)  # fmt: skip
"""Every category written to the bridge's stdin (headers and sessions are the bridge's own)."""

_BRIDGE_EXPECT: Final = {"invalid-utf8": Expect.ANSWER, "odd-numbers": Expect.ANSWER}
"""Where the bridge differs from the HTTP door, because the SDK's stdio reader changes the input
before approver sees it: invalid UTF-8 becomes U+FFFD, and NaN/Infinity are re-encoded as
``null``. Either way the gateway decides on, records and forwards the changed value."""


def bridge_cases(seed: int, count: int, tool: str = "test__echo") -> list[Case]:
    """``count`` stdin lines for ``approver connect``, cycling through :data:`BRIDGE_CATEGORIES`."""
    builder = _Builder(seed, tool)
    cases = []
    for index in range(count):
        builder.index = index
        make: Callable[[str], Case] = getattr(builder, BRIDGE_CATEGORIES[index % len(BRIDGE_CATEGORIES)])
        case = make(builder.rng.choice([LEGACY, MODERN]))
        body = case.body.replace(b"\n", b" ")  # one message a line; JSON never needs a raw newline
        expect = _BRIDGE_EXPECT.get(case.category, case.expect)
        cases.append(Case(case.category, body, expect, case.era, request_id=case.request_id))
    return cases
