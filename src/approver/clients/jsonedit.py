"""Edit one member of a JSON (or JSON-with-comments) document in place, leaving the rest as it was.

Client config files are written by their clients and edited by people: they carry keys approver
knows nothing about, comments (VS Code's ``mcp.json`` is JSONC) and their own indentation. Instead
of re-serialising the whole document, :func:`set_member` replaces only the text of the one value
it changes (or inserts it), indented like the rest of the file, so a diff shows just that change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Final

from approver.errors import ConfigError

DEFAULT_INDENT: Final = "  "
"""The indentation of a file approver creates, and of one whose indentation cannot be told."""

_DECODER: Final = json.JSONDecoder()
_WHITESPACE: Final = " \t\r\n"
_INDENT: Final = re.compile(r"\n([ \t]+)\S")


def strip_jsonc(text: str) -> str:
    """``text`` with comments, trailing commas and a BOM blanked out, every offset unchanged.

    The result is strict JSON when ``text`` is JSONC, and each value sits at the same position as
    in ``text``, so spans found in the result apply to the original.
    """
    out = list(text)
    if text.startswith("\ufeff"):
        out[0] = " "
    i, n = 0, len(text)
    last_comma: int | None = None
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            last_comma = None
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            out[i:end] = [ch if ch in "\r\n" else " " for ch in text[i:end]]
            i = end
            continue
        elif c == ",":
            last_comma = i
        elif c in "}]":
            if last_comma is not None:
                out[last_comma] = " "
            last_comma = None
        elif c not in _WHITESPACE:
            last_comma = None
        i += 1
    return "".join(out)


def parse(text: str, file: str) -> Any:
    """The value of a JSON or JSONC document, or a ConfigError naming the file, line and column."""
    try:
        return json.loads(strip_jsonc(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            file, "", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _skip(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WHITESPACE:
        i += 1
    return i


def _members(s: str, start: int) -> list[tuple[str, int, int]]:
    """(key, value start, value end) of each member of the object at ``start`` in strict JSON ``s``."""
    members: list[tuple[str, int, int]] = []
    i = _skip(s, start + 1)
    while s[i] != "}":
        key, i = json.decoder.scanstring(s, i + 1)  # type: ignore[attr-defined]
        i = _skip(s, _skip(s, i) + 1)  # past the colon
        _, end = _DECODER.raw_decode(s, i)
        members.append((key, i, end))
        i = _skip(s, end)
        if s[i] == ",":
            i = _skip(s, i + 1)
    return members


def find_span(stripped: str, path: Sequence[str]) -> tuple[int, int] | None:
    """Where the value at ``path`` (object keys from the root) is in ``stripped``, or None.

    With a duplicate key the last one counts, as in ``json.loads``.
    """
    start = _skip(stripped, 0)
    _, end = _DECODER.raw_decode(stripped, start)
    for key in path:
        if stripped[start] != "{":
            return None
        found = [(s, e) for k, s, e in _members(stripped, start) if k == key]
        if not found:
            return None
        start, end = found[-1]
    return start, end


def indent_unit(text: str) -> str | None:
    """The file's indentation step (spaces or tabs), or None for a file written on one line."""
    if "\n" not in text.strip():
        return None
    match = _INDENT.search(text)
    return match.group(1) if match else DEFAULT_INDENT


def dumps(value: Any, unit: str | None, depth: int = 0, newline: str = "\n") -> str:
    """``value`` as JSON for a place ``depth`` levels deep in a file indented by ``unit``."""
    if unit is None:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, indent=unit, ensure_ascii=False).replace("\n", newline + unit * depth)


def new_document(value: Any) -> str:
    """The text of a new file holding ``value``."""
    return dumps(value, DEFAULT_INDENT) + "\n"


def set_member(text: str, path: Sequence[str], value: Any) -> str:
    """``text`` with the value at ``path`` replaced by ``value`` (created, with its parents, if missing).

    ``text`` must hold an object at the root (and objects along ``path``); everything outside the
    changed value, comments included, is kept byte for byte.
    """
    if not path:
        raise ValueError("path must name at least one key")
    stripped = strip_jsonc(text)
    unit = indent_unit(text)
    newline = "\r\n" if "\r\n" in text else "\n"
    span = find_span(stripped, path)
    if span is not None:
        start, end = span
        return text[:start] + dumps(value, unit, len(path), newline) + text[end:]
    depth = len(path) - 1
    while depth > 0 and find_span(stripped, path[:depth]) is None:
        depth -= 1
    for key in reversed(path[depth + 1 :]):
        value = {key: value}
    parent = find_span(stripped, path[:depth])
    if parent is None or stripped[parent[0]] != "{":
        raise ValueError(f"no object at {list(path[:depth])!r} to add {path[depth]!r} to")
    start, end = parent
    key = path[depth]
    if not _members(stripped, start):
        return text[:start] + dumps({key: value}, unit, depth, newline) + text[end:]
    member = f"{json.dumps(key, ensure_ascii=False)}: {dumps(value, unit, depth + 1, newline)},"
    if unit is not None:
        member = newline + unit * (depth + 1) + member
    return text[: start + 1] + member + text[start + 1 :]
