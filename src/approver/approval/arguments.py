"""A waiting call's arguments laid out for a person: in the tool's own order, key arguments first.

The gateway holds the arguments as canonical JSON (sorted keys), which puts a 50 KB ``content``
before the ``path`` it is written to, and lets an agent pick key names that sort first.
:func:`lay_out` orders them as the tool's ``inputSchema`` lists its properties, then any the
schema does not declare in the order the client sent them, and moves the key arguments (paths,
commands, URLs, recipients, amounts, repositories, queries, SQL) to the top. Each argument is
shown as itself: a string without JSON escaping, anything else as JSON. Long or multi-line
values become numbered text blocks. Secrets the audit redactor recognises are flagged, not hidden.

Qt-free, so the dialog, notifications and tests share it.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from approver.audit.redact import secret_key_kind, secret_shapes
from approver.policy.risk import tokenize_name

BLOCK_CHARS: Final = 100
"""A value longer than this (or with a line break) is shown as a text block, not in the form."""

KEY_ROLES: Final = ("amount", "currency", "recipient", "command", "sql", "path", "url", "repository", "query")
"""Roles that say what a call will do; arguments with one are shown first."""

_ROLE_WORDS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("repository", frozenset({"repo", "repository", "repositories", "repos"})),
    ("currency", frozenset({"currency"})),
    ("amount", frozenset({"amount", "total", "price", "sum", "cents", "amt"})),
    ("recipient", frozenset({
        "to", "recipient", "recipients", "destination", "payee", "beneficiary", "iban", "email",
        "emails", "account", "channel", "phone", "address", "cc", "bcc", "customer",
    })),
    ("command", frozenset({"command", "commands", "cmd", "script", "shell", "bash", "powershell"})),
    ("sql", frozenset({"sql", "statement"})),
    ("url", frozenset({"url", "uri", "href", "endpoint", "link", "website"})),
    ("path", frozenset({
        "path", "paths", "file", "files", "filename", "filepath", "dir", "directory", "folder",
        "target", "source", "dest",
    })),
    ("query", frozenset({"query", "q", "search", "keyword", "keywords", "pattern", "term"})),
    ("content", frozenset({"content", "contents", "body", "text", "data", "patch", "diff", "message"})),
)  # fmt: skip
"""Which words in an argument's name give it which role, checked in this order."""

_CODE_WORDS: Final = frozenset(
    {"code", "python", "javascript", "js", "source", "shell", "bash", "ruby", "node"}
)
_SENDER_WORDS: Final = frozenset({"from", "sender", "src", "source", "origin"})
"""Words that make an account-like argument the sender, not the recipient."""

_SQL: Final = re.compile(
    r"\s*(?:select|insert|update|delete|drop|create|alter|truncate|with|grant|revoke|merge|replace)\b",
    re.IGNORECASE,
)
_URL: Final = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_NUMBER: Final = re.compile(r"-?\d+(?:\.\d+)?")

_SECRET_WORDS: Final = {
    "private_key": "looks like a private key",
    "github": "looks like a GitHub token",
    "anthropic": "looks like an Anthropic API key",
    "openai": "looks like an OpenAI API key",
    "slack": "looks like a Slack token",
    "aws_access_key_id": "looks like an AWS access key",
    "stripe": "looks like a Stripe key",
    "google": "looks like a Google API key",
    "jwt": "looks like a JSON Web Token",
    "bearer": "looks like a bearer token",
}


@dataclass(frozen=True, slots=True)
class Argument:
    """One argument as the dialog shows it."""

    name: str
    value: Any
    """The decoded JSON value."""
    text: str
    """What is shown: a string as itself, any other value as JSON."""
    block: bool
    """Shown as a numbered text block (long or multi-line) rather than a line of the form."""
    role: str | None
    """What the argument is (one of :data:`KEY_ROLES`, or ``"content"``), or None."""
    declared: bool
    """Whether the tool's input schema names it (an undeclared name may be a decoy)."""
    secrets: tuple[str, ...] = ()
    """Why it may hold a secret ("looks like a private key"), if it may."""

    @property
    def key(self) -> bool:
        """Whether it says what the call will do (shown first)."""
        return self.role in KEY_ROLES

    @property
    def lines(self) -> int:
        """Lines of :attr:`text`."""
        return line_count(self.text)

    @property
    def size(self) -> int:
        """Bytes of :attr:`text` in UTF-8."""
        return len(self.text.encode("utf-8", errors="replace"))


@dataclass(frozen=True, slots=True)
class Arguments:
    """The arguments of one call, ordered for reading, and the raw JSON."""

    items: tuple[Argument, ...]
    raw: str
    """The exact arguments as indented JSON (or the bytes as text when they are not JSON)."""
    problem: str = ""
    """Why the arguments could not be laid out as a form (then there is one block, the raw text)."""

    @property
    def form(self) -> tuple[Argument, ...]:
        """The short values, shown as ``name: value`` lines."""
        return tuple(item for item in self.items if not item.block)

    @property
    def blocks(self) -> tuple[Argument, ...]:
        """The long or multi-line values, shown as numbered text blocks."""
        return tuple(item for item in self.items if item.block)

    def with_role(self, *roles: str) -> Argument | None:
        """The first argument with one of ``roles`` (in ``roles`` order), or None."""
        for role in roles:
            found = next((item for item in self.items if item.role == role), None)
            if found is not None:
                return found
        return None


def schema_properties(schema: Mapping[str, Any] | None) -> list[str]:
    """The property names of an input schema, in the order the tool lists them."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    return [str(name) for name in properties] if isinstance(properties, Mapping) else []


def role_of(name: str, value: Any) -> str | None:
    """What an argument is, from its name's words and its value's shape; None when unclear."""
    words = set(tokenize_name(name)) or {name.lower()}
    if "code" in words and (words == {"code"} or len(words & _CODE_WORDS) > 1) and isinstance(value, str):
        return "command"  # python_code, source_code; not country_code
    for role, role_words in _ROLE_WORDS:
        if words & role_words and _fits(role, value) and not (role == "recipient" and words & _SENDER_WORDS):
            return role
    if isinstance(value, str):
        if _URL.match(value):
            return "url"
        if "query" in words and _SQL.match(value):
            return "sql"
    return None


def _fits(role: str, value: Any) -> bool:
    if role == "amount":
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        return numeric or (isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None)
    if role == "query" and isinstance(value, str) and _SQL.match(value):
        return False  # a "query" that is SQL is taken as SQL below
    if role in ("path", "recipient", "repository"):
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    return isinstance(value, str)


def shown_value(value: Any) -> str:
    """A value as the dialog shows it: a string as itself, anything else as JSON."""
    if isinstance(value, str):
        return value
    compact = json.dumps(value, ensure_ascii=False)
    if len(compact) <= BLOCK_CHARS:
        return compact
    return json.dumps(value, ensure_ascii=False, indent=2)


def _secrets(name: str, text: str) -> tuple[str, ...]:
    found = [_SECRET_WORDS.get(kind, f"looks like a {kind} secret") for kind in secret_shapes(text)]
    named = secret_key_kind(name)
    if named is not None:
        found.append(f"its name says it holds a {named.replace('_', ' ')}")
    return tuple(found)


def lay_out(raw: bytes, schema: Mapping[str, Any] | None = None, sent_order: Sequence[str] = ()) -> Arguments:
    """The arguments in ``raw`` (canonical JSON) ordered for reading.

    Order: key arguments first, then the rest; within each, the schema's property order, then
    names the schema does not declare in ``sent_order`` (the client's order), then any others.
    When the schema declares properties, an undeclared argument never counts as a key one.
    """
    text = raw.decode("utf-8", errors="replace")
    try:
        decoded = json.loads(raw)
    except ValueError as error:
        return Arguments((_raw_block(text),), text, f"the arguments are not valid JSON ({error})")
    pretty = json.dumps(decoded, indent=2, ensure_ascii=False)
    if not isinstance(decoded, dict):
        return Arguments((_raw_block(pretty),), pretty, "the arguments are not a JSON object")
    declared = schema_properties(schema)
    known = set(declared)
    order = [name for name in declared if name in decoded]
    order += [name for name in sent_order if name in decoded and name not in known and name not in order]
    order += [name for name in decoded if name not in order]
    items = []
    for name in order:
        value = decoded[name]
        shown = shown_value(value)
        role = role_of(name, value)
        if declared and name not in known and role in KEY_ROLES:
            role = None  # a decoy "path" next to the tool's real "file_path" must not lead
        block = "\n" in shown or len(shown) > BLOCK_CHARS
        items.append(
            Argument(name, value, shown, block, role, name in known or not declared, _secrets(name, shown))
        )
    items.sort(key=lambda item: not item.key)  # stable: key arguments first, each group in order
    return Arguments(tuple(items), pretty)


def _raw_block(text: str) -> Argument:
    return Argument("arguments", text, text, True, None, True, _secrets("arguments", text))


def line_count(text: str) -> int:
    """Lines of ``text`` as a plain-text view draws them before wrapping (line feeds only).

    Other line breaks (CR, U+2028, ...) are revealed as ``<U+…>`` markers in approver's views,
    so they draw no break.
    """
    return text.count("\n") + 1


def cells(line: str) -> int:
    """Columns ``line`` takes in a monospace font: wide characters 2, combining marks 0, tabs 8."""
    width = 0
    for char in line:
        if char == "\t":
            width += 8 - width % 8
        elif unicodedata.combining(char):
            continue
        else:
            width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def drawn_lines(text: str, columns: int) -> int:
    """Lines ``text`` takes on screen when wrapped anywhere at ``columns`` columns."""
    columns = max(1, columns)
    return sum(max(1, math.ceil(cells(line) / columns)) for line in text.split("\n"))


def short_size(size: int) -> str:
    """``"512 bytes"``, ``"50 KB"``, ``"1.2 MB"``: for captions and headlines."""
    if size < 1024:
        return f"{size:,} byte" + ("" if size == 1 else "s")
    if size < 1024 * 1024:
        kb = size / 1024
        return f"{kb:.1f} KB" if kb < 10 else f"{kb:,.0f} KB"
    return f"{size / (1024 * 1024):,.1f} MB"


def block_caption(lines: int, size: int, drawn: int | None = None) -> str:
    """``"1,204 lines / 50 KB"``, adding how many lines wrapping draws when that is more."""
    text = f"{lines:,} line{'' if lines == 1 else 's'} / {short_size(size)}"
    if drawn is not None and drawn > lines:
        text += f", drawn as {drawn:,} lines at this width"
    return text


def result_argument(result: str) -> Argument:
    """A tool's result, shown for review as one numbered text block."""
    return Argument("result", result, result, True, "content", True, _secrets("result", result))
