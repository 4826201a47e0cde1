"""The stored form of a call's arguments: redacted canonical JSON, cut to a preview, in bounded time.

The audit log keeps at most :data:`approver.audit.log.ARGUMENTS_CAP` bytes of a call's arguments
(with their full size and SHA-256). Redacting 4 MiB of arguments only to keep 64 KiB would make
one hostile call cost every other call its wait on the audit writer, so the preview is written
the way :func:`~approver.audit.records.canonical_json` would write the redacted arguments, and
stops as soon as the preview is full. Values after that are never visited; a long string or key
is redacted only as far as it can show (:meth:`Redactor.redact_prefix`, which never lets a secret
across the cut show). What is kept is ``canonical_json(redactor.redact_json(arguments))`` (but for
the order of keys that hold a known secret: keys are sorted before redaction) when it fits, and
otherwise the same text up to the first value that did not fit, cut within it.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from approver.audit.redact import Redactor, secret_key_kind

_STRING: Final = json.JSONEncoder(ensure_ascii=False).encode
"""A JSON string literal, exactly as the canonical encoder writes one."""


class _Full(Exception):
    """The preview holds as much as it may."""


class _Preview:
    """Canonical JSON of a redacted value, written until ``cap`` UTF-8 bytes are exceeded."""

    def __init__(self, redactor: Redactor, cap: int) -> None:
        self.redactor = redactor
        self.cap = cap
        self.parts: list[str] = []
        self.size = 0
        """UTF-8 bytes in :attr:`parts`."""

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text.encode())
        if self.size > self.cap:
            raise _Full

    def string(self, text: str) -> None:
        # A character takes at least one byte, so this many characters fill what is left.
        room = self.cap - self.size + 1
        redacted, cut = self.redactor.redact_prefix(text, room)
        literal = _STRING(redacted)
        if cut:
            self.add(literal[:-1])  # no closing quote: the string goes on
            raise _Full
        self.add(literal)

    def value(self, value: Any) -> None:
        if isinstance(value, str):
            self.string(value)
        elif value is None or isinstance(value, bool):
            self.add("null" if value is None else "true" if value else "false")
        elif isinstance(value, int):
            self.add(int.__repr__(value))
        elif isinstance(value, float):
            self.add(_float(value))
        elif isinstance(value, dict):
            self.mapping(value)
        elif isinstance(value, list | tuple):
            self.add("[")
            for index, item in enumerate(value):
                if index:
                    self.add(",")
                self.value(item)
            self.add("]")
        else:
            self.string(str(value))

    def mapping(self, value: dict[Any, Any]) -> None:
        self.add("{")
        try:
            keys = sorted(value)
        except TypeError:  # keys of mixed types: not from JSON, but written as the encoder would
            keys = sorted(value, key=str)
        for index, key in enumerate(keys):
            if index:
                self.add(",")
            item = value[key]
            name = key if isinstance(key, str) else str(key)
            self.string(name)
            self.add(":")
            kind = secret_key_kind(name) if isinstance(key, str) else None
            if kind is not None and item is not None:
                self.add(_STRING(f"[REDACTED:{kind}]"))
            else:
                self.value(item)
        self.add("}")


def _float(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def clip(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes (never inside a character), and whether it was cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text, False
    return encoded[:limit].decode(errors="ignore"), True


def redacted_preview(value: Any, redactor: Redactor, cap: int) -> tuple[str, bool]:
    """The redacted canonical JSON of ``value``, cut to ``cap`` UTF-8 bytes, and whether it was cut.

    Raises RecursionError for a value nested too deep to walk.
    """
    preview = _Preview(redactor, cap)
    try:
        preview.value(value)
    except _Full:
        return clip("".join(preview.parts), cap)[0], True
    return "".join(preview.parts), False


def redacted_text_preview(text: str, redactor: Redactor, cap: int) -> tuple[str, bool]:
    """``text`` redacted and cut to ``cap`` UTF-8 bytes, reading only about ``cap`` characters of it."""
    redacted, cut = redactor.redact_prefix(text, cap + 1)
    kept, clipped = clip(redacted, cap)
    return kept, cut or clipped
