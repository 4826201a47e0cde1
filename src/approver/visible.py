"""Make invisible and deceptive characters visible before a person reads text from outside.

Text from servers, clients and arguments can hide things from the person approving a call:
bidirectional overrides that reorder what is displayed, zero-width characters, control
characters, Unicode "tag" characters that spell out hidden instructions, and characters that draw
nothing at all (fillers such as U+3164 HANGUL FILLER, blanks such as U+2800 BRAILLE PATTERN BLANK)
and can pad the real content out of view. :func:`reveal` replaces each with a visible
``<U+XXXX>`` marker (a run of one character as ``<U+2800 ×500>``) and says what it found, so the
approval dialog can warn. The result is plain text; the UI must still show it as plain text.

What counts as hidden comes from Unicode data: the general category (``unicodedata``) for
controls, format characters, separators, spaces, private-use and unassigned code points, and the
Default_Ignorable_Code_Point property, which Python's ``unicodedata`` does not offer, from the
table below. Only the few blank-looking symbols that no Unicode property marks are listed by hand.
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

_DEFAULT_IGNORABLE: Final = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
"""Default_Ignorable_Code_Point, from Unicode 15.0 ``DerivedCoreProperties.txt`` (ranges merged).

Characters a renderer shows as nothing when it has no glyph for them: among them letters and
marks that no category betrays (U+115F/U+1160/U+3164/U+FFA0 Hangul fillers, U+034F, U+17B4/5).
``tests/test_visible.py`` checks the table against the file when Debian's ``unicode-data`` is
installed."""

_BLANK_SYMBOLS: Final = frozenset([0x2800, 0x1D159, 0x16FE4])
"""Characters that draw a blank glyph but are ordinary symbols or letters to every Unicode property:
U+2800 BRAILLE PATTERN BLANK, U+1D159 MUSICAL SYMBOL NULL NOTEHEAD, U+16FE4 KHITAN SMALL SCRIPT FILLER."""

_RUN: Final = 3
"""A run of at least this many of the same hidden character is written once, with a count."""

_KINDS: Final = {
    "bidi": "bidirectional control characters (they can reorder what you see)",
    "zero-width": "zero-width characters",
    "control": "control characters",
    "tag": "invisible tag characters (they can carry hidden text)",
    "variation": "variation selectors (they can carry hidden data)",
    "format": "invisible formatting characters",
    "private": "private-use or unassigned characters",
    "space": "unusual spaces",
    "blank": "characters that draw nothing (fillers and blank symbols such as U+3164 or U+2800)",
}


def _default_ignorable(code: int) -> bool:
    return any(low <= code <= high for low, high in _DEFAULT_IGNORABLE)


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
    if code in _BLANK_SYMBOLS or _default_ignorable(code):
        return "blank"
    return None


def reveal(text: str, *, keep_newlines: bool = False) -> Revealed:
    """``text`` with every hidden character replaced by ``<U+XXXX>`` (a run of 3 or more by ``<U+XXXX ×N>``).

    ``keep_newlines`` leaves line feeds and tabs alone (for multi-line views such as
    pretty-printed JSON); everywhere else they are marked too, so a one-line label cannot hide a
    second line.
    """
    kinds: dict[str, None] = {}
    hidden: list[str] = []

    def mark(run: re.Match[str]) -> str:
        out = []
        text = run.group()
        index = 0
        while index < len(text):
            char = text[index]
            kind = _kind(char, keep_newlines)
            if kind is None:
                out.append(char)
                index += 1
                continue
            kinds.setdefault(kind)
            repeat = 1
            while index + repeat < len(text) and text[index + repeat] == char:
                repeat += 1
            if kind == "tag" and 0x20 <= ord(char) - 0xE0000 < 0x7F:
                hidden.append(chr(ord(char) - 0xE0000) * repeat)
            if repeat >= _RUN:
                # Padding made of one invisible character stays one short marker, so it cannot
                # push the real content out of view once revealed.
                out.append(f"<U+{ord(char):04X} ×{repeat:,}>")
            else:
                out.append(f"<U+{ord(char):04X}>" * repeat)
            index += repeat
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
