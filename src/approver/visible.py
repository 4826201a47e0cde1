"""Make invisible and deceptive characters visible before a person reads text from outside.

Text from servers, clients and arguments can hide things from the person approving a call:
bidirectional overrides that reorder what is displayed, zero-width characters, control
characters, and Unicode "tag" characters that spell out hidden instructions. :func:`reveal`
replaces each with a visible ``<U+XXXX>`` marker and says what it found, so the approval dialog
can warn. The result is plain text; the UI must still show it as plain text.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

_BIDI: Final = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_ZERO_WIDTH: Final = frozenset([0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E])
_TAGS: Final = range(0xE0000, 0xE0080)
# U+FE0E/U+FE0F (text or emoji presentation) are everyday emoji parts; the others carry no
# meaning in ordinary text and are how data is smuggled after a visible character.
_VARIATION_SELECTORS: Final = (range(0xFE00, 0xFE0E), range(0xE0100, 0xE01F0))

_NOT_PRINTABLE_ASCII: Final = re.compile(r"[^\x20-\x7e]+")

_KINDS: Final = {
    "bidi": "bidirectional control characters (they can reorder what you see)",
    "zero-width": "zero-width characters",
    "control": "control characters",
    "tag": "invisible tag characters (they can carry hidden text)",
    "variation": "variation selectors (they can carry hidden data)",
    "format": "invisible formatting characters",
    "private": "private-use or unassigned characters",
    "space": "unusual spaces",
}


@dataclass(frozen=True, slots=True)
class Revealed:
    """Text with hidden characters made visible, and what was found."""

    text: str
    findings: tuple[str, ...] = ()
    """Human-readable kinds of hidden characters found, in first-seen order (empty: none)."""
    hidden_text: str = ""
    """What tag characters spelled out, if any (an attacker's hidden instruction, usually)."""

    @property
    def suspicious(self) -> bool:
        """Whether anything was hidden."""
        return bool(self.findings)

    def warning(self) -> str:
        """One sentence for the user, or "" when nothing was hidden."""
        if not self.findings:
            return ""
        text = "This text contains " + "; ".join(self.findings) + ", shown as <U+…>."
        if self.hidden_text:
            text += f" Hidden tag text reads: {self.hidden_text!r}."
        return text


@functools.lru_cache(maxsize=8192)
def _kind(char: str, keep_newlines: bool) -> str | None:
    """The kind of hidden character ``char`` is, or None when it displays as itself."""
    code = ord(char)
    if char == " " or (keep_newlines and char in "\n\t") or code in (0xFE0E, 0xFE0F):
        return None
    if code in _BIDI:
        return "bidi"
    if code in _ZERO_WIDTH:
        return "zero-width"
    if code in _TAGS:
        return "tag"
    if any(code in selectors for selectors in _VARIATION_SELECTORS):
        return "variation"
    category = unicodedata.category(char)
    if category == "Cc" or category in ("Zl", "Zp"):
        return "control"
    if category == "Cf":
        return "format"
    if category in ("Co", "Cn", "Cs"):
        return "private"
    if category == "Zs":
        return "space"
    return None


def reveal(text: str, *, keep_newlines: bool = False) -> Revealed:
    """``text`` with every hidden character replaced by ``<U+XXXX>``.

    ``keep_newlines`` leaves line feeds and tabs alone (for multi-line views such as
    pretty-printed JSON); everywhere else they are marked too, so a one-line label cannot hide a
    second line.
    """
    kinds: dict[str, None] = {}
    hidden: list[str] = []

    def mark(run: re.Match[str]) -> str:
        out = []
        for char in run.group():
            kind = _kind(char, keep_newlines)
            if kind is None:
                out.append(char)
                continue
            kinds.setdefault(kind)
            if kind == "tag" and 0x20 <= ord(char) - 0xE0000 < 0x7F:
                hidden.append(chr(ord(char) - 0xE0000))
            out.append(f"<U+{ord(char):04X}>")
        return "".join(out)

    # Printable ASCII is never hidden: only runs of other characters are looked at one by one,
    # which keeps a megabyte of ordinary JSON fast.
    result = _NOT_PRINTABLE_ASCII.sub(mark, text)
    if not kinds:
        return Revealed(text)
    return Revealed(result, tuple(_KINDS[kind] for kind in kinds), "".join(hidden))


def reveal_text(text: str, *, keep_newlines: bool = False) -> str:
    """Just the revealed text (for table cells and titles)."""
    return reveal(text, keep_newlines=keep_newlines).text


def _json_escape(run: re.Match[str]) -> str:
    return "".join(json.dumps(char)[1:-1] if _kind(char, False) is not None else char for char in run.group())


def escape_hidden_json(text: str) -> str:
    """JSON text with every hidden character written as a ``\\uXXXX`` escape.

    The JSON value is unchanged (a decoder gives back the same strings, so hashes still verify),
    but the text can go to a terminal: ``json.dumps(..., ensure_ascii=False)`` escapes only
    C0 controls and leaves bidi overrides, C1 controls and tag characters raw.
    """
    return _NOT_PRINTABLE_ASCII.sub(_json_escape, text)
