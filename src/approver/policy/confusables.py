"""Find tool names that look alike across servers (Unicode confusables).

A malicious server can offer ``ѕend_email`` (Cyrillic ``ѕ``) next to a trusted server's
``send_email``, hoping the person approving a call reads the wrong one. :func:`skeleton` reduces
a name to a form in which such look-alikes collide, in the spirit of Unicode TR39's skeleton;
:func:`find_lookalikes` groups different names with the same skeleton and names the characters
that make them differ, so the approval dialog and the servers window can warn.

Decisions:

- ``-``, ``_`` and ``.`` stay distinct: they differ visibly, so ``send-email`` and ``send_email``
  are not look-alikes. Unicode dashes, minus signs and fullwidth separators *are* mapped to them.
- ``i``, ``l``, ``I``, ``1`` and ``|`` are one class: capital I, small l and digit 1 are
  indistinguishable in many UI fonts, and casefolding already makes I and i one letter. ``0`` and
  ``o`` are one class, and ``rn`` reads as ``m``. The price is that names differing only there
  (rare among tool names) are flagged too; a false warning is cheaper than a missed one.
- The same name offered by two servers is *not* reported on its own: that is common and
  legitimate (two file servers both offering ``read_file``), and the server names tell them apart.
  When a group is reported, each spelling lists every server that offers it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from approver.visible import reveal_text

# Capitals whose Latin look-alike is a capital, mapped *before* casefolding (afterwards Greek
# Η becomes η, which looks like n rather than h).
_CAPITALS: Final = str.maketrans(
    {
        **dict.fromkeys("АΑ", "a"),
        **dict.fromkeys("ВΒ", "b"),
        **dict.fromkeys("СϹ", "c"),
        **dict.fromkeys("ЕΕ", "e"),
        **dict.fromkeys("НΗ", "h"),
        **dict.fromkeys("ІΙӀ", "l"),
        **dict.fromkeys("Ј", "j"),
        **dict.fromkeys("КΚ", "k"),
        **dict.fromkeys("МΜ", "m"),
        **dict.fromkeys("Ν", "n"),
        **dict.fromkeys("ОΟՕ", "o"),
        **dict.fromkeys("РΡ", "p"),
        **dict.fromkeys("Ѕ", "s"),
        **dict.fromkeys("ТΤ", "t"),
        **dict.fromkeys("ХΧ", "x"),
        **dict.fromkeys("ҮΥ", "y"),
        **dict.fromkeys("Ζ", "z"),
    }
)

# Lower-case look-alikes, after casefolding; the i/l/1 and o/0 classes are explained above.
_LETTERS: Final = str.maketrans(
    {
        **dict.fromkeys("аαɑ", "a"),
        **dict.fromkeys("сϲ", "c"),
        **dict.fromkeys("ԁ", "d"),
        **dict.fromkeys("е", "e"),
        **dict.fromkeys("ɡ", "g"),
        **dict.fromkeys("һհ", "h"),
        **dict.fromkeys("iıіιӏ1|l", "l"),
        **dict.fromkeys("јϳ", "j"),
        **dict.fromkeys("κ", "k"),
        **dict.fromkeys("оο0օ", "o"),
        **dict.fromkeys("рρ", "p"),
        **dict.fromkeys("ԛ", "q"),
        **dict.fromkeys("ѕ", "s"),
        **dict.fromkeys("τ", "t"),
        **dict.fromkeys("υս", "u"),
        **dict.fromkeys("νѵ", "v"),
        **dict.fromkeys("ԝ", "w"),
        **dict.fromkeys("хχ", "x"),
        **dict.fromkeys("уү", "y"),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u02d7", "-"),
        **dict.fromkeys("\u02cd", "_"),
    }
)

# Default-ignorable characters that are not format (Cf) or control (Cc) characters: the
# combining grapheme joiner, Hangul fillers, Khmer inherent vowels and all variation selectors
# (visible.py leaves U+FE0E/U+FE0F alone in prose; in a tool name they only hide a difference).
_IGNORABLE: Final = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0x180B, 0x1810)]
)
_VARIATION_SELECTORS: Final = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))

# Letters of these scripts mix in ordinary names (Japanese, Chinese, Korean) and with Latin,
# as TR39's "highly restrictive" level allows.
_EAST_ASIAN: Final = frozenset(["CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO"])


def _displays(char: str) -> bool:
    """Whether ``char`` shows anything on screen (bidi, zero-width, tag, control: no)."""
    code = ord(char)
    if code in _IGNORABLE or any(code in selectors for selectors in _VARIATION_SELECTORS):
        return False
    return unicodedata.category(char) not in ("Cf", "Cc", "Zl", "Zp")


def skeleton(name: str) -> str:
    """A normalised form of ``name`` in which look-alike names are equal.

    NFKC (fullwidth and mathematical letters become plain ones), invisible characters dropped,
    casefolded, and common Cyrillic, Greek and Armenian look-alikes, Unicode dashes and the
    ASCII classes i/l/1 and o/0 mapped to one Latin character; ``rn`` becomes ``m``. The result
    is for comparison only, never for display.
    """
    if name.isascii() and name.isprintable():
        text = name.casefold()
    else:
        text = unicodedata.normalize("NFKC", name)
        text = "".join(char for char in text if _displays(char)).translate(_CAPITALS)
        text = unicodedata.normalize("NFKC", text.casefold())
    return text.translate(_LETTERS).replace("rn", "m")


def _script(char: str) -> str:
    """The script of letter ``char``, as the first word of its Unicode name."""
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def is_suspicious(name: str) -> bool:
    """Whether ``name`` mixes scripts (Latin with Cyrillic or Greek, say) or hides characters.

    Only letters count; Chinese, Japanese and Korean letters may mix with one another and with
    one other script. Fullwidth and mathematical letters count as the script NFKC makes them.
    """
    if name.isascii():
        return not name.isprintable()
    if not all(_displays(char) for char in name):
        return True
    scripts = {_script(char) for char in unicodedata.normalize("NFKC", name) if char.isalpha()}
    return len(scripts - _EAST_ASIAN) > 1


@dataclass(frozen=True, slots=True)
class Unusual:
    """A character of a name that is not printable ASCII."""

    position: int
    """0-based index of the character in the name (in code points)."""
    code_point: int
    unicode_name: str
    """Its Unicode name, or its general category (``<Cf>``) when it has none."""

    def __str__(self) -> str:
        return f"U+{self.code_point:04X} {self.unicode_name} at position {self.position}"


def unusual_characters(name: str) -> tuple[Unusual, ...]:
    """The characters of ``name`` outside printable ASCII, in order."""
    return tuple(
        Unusual(index, ord(char), unicodedata.name(char, f"<{unicodedata.category(char)}>"))
        for index, char in enumerate(name)
        if not " " <= char <= "~"
    )


@dataclass(frozen=True, slots=True)
class Spelling:
    """One of the look-alike names, the servers offering it and its unusual characters."""

    name: str
    servers: tuple[str, ...]
    unusual: tuple[Unusual, ...]

    def label(self) -> str:
        """``name (server, server)``, with hidden characters shown as ``<U+XXXX>``."""
        return f"{reveal_text(self.name)} ({', '.join(reveal_text(s) for s in self.servers)})"


@dataclass(frozen=True, slots=True)
class Lookalike:
    """Different tool names that look alike; the plainest spelling comes first."""

    skeleton: str
    spellings: tuple[Spelling, ...]

    def involves(self, server: str, name: str) -> bool:
        """Whether ``server`` offers upstream tool ``name`` as one of these spellings."""
        return any(s.name == name and server in s.servers for s in self.spellings)

    def describe(self) -> str:
        """One line for the user, such as ``send_email (mail) vs ѕend_email (evil): U+0455 …``."""
        names = " vs ".join(spelling.label() for spelling in self.spellings)
        odd = [spelling for spelling in self.spellings if spelling.unusual]
        if not odd:
            return f"{names}: the names differ only in letter case or look-alike letters and digits"
        if len(odd) == 1:
            details = ", ".join(str(char) for char in odd[0].unusual)
        else:
            details = "; ".join(
                f"{reveal_text(s.name)}: " + ", ".join(str(char) for char in s.unusual) for s in odd
            )
        return f"{names}: {details}"


def find_lookalikes(names: Mapping[str, Iterable[str]]) -> list[Lookalike]:
    """Groups of different tool names with the same :func:`skeleton`.

    ``names`` maps each server to its upstream tool names. Groups come in the order their first
    name was seen; within a group, names with fewer unusual characters come first. Linear in
    the number of names.
    """
    groups: dict[str, dict[str, list[str]]] = {}
    for server, tools in names.items():
        for tool in tools:
            servers = groups.setdefault(skeleton(tool), {}).setdefault(tool, [])
            if server not in servers:
                servers.append(server)
    found = []
    for key, spellings in groups.items():
        if len(spellings) < 2:
            continue
        ordered = sorted(
            (Spelling(name, tuple(servers), unusual_characters(name)) for name, servers in spellings.items()),
            key=lambda spelling: len(spelling.unusual),
        )
        found.append(Lookalike(key, tuple(ordered)))
    return found
