"""What changed in a tool's definition, field by field and word by word, for side-by-side display.

:func:`field_changes` compares a pinned definition with the current one and returns one
:class:`FieldChange` per field that differs (description, input schema, annotations, the
server's instructions, ...). Each side is split into pieces marked changed or not, by words, so a
UI can colour exactly the words that were swapped. Qt-free.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

_TOKENS: Final = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)
_FIELD_ORDER: Final = (
    "description",
    "title",
    "inputSchema",
    "annotations",
    "outputSchema",
    "instructions",
    "name",
)

Pieces = tuple[tuple[str, bool], ...]
"""Text pieces in order, each with whether it differs from the other side."""


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a definition that differs: its text before and after, in marked pieces."""

    field: str
    old: str
    new: str
    old_pieces: Pieces
    new_pieces: Pieces


def field_text(value: Any) -> str:
    """A field's value as text: a string as itself, anything else as indented JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def word_diff(old: str, new: str) -> tuple[Pieces, Pieces]:
    """``old`` and ``new`` as pieces, marking the words each side does not share."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    old_pieces: list[tuple[str, bool]] = []
    new_pieces: list[tuple[str, bool]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        changed = op != "equal"
        if a1 > a0:
            old_pieces.append(("".join(a[a0:a1]), changed))
        if b1 > b0:
            new_pieces.append(("".join(b[b0:b1]), changed))
    return tuple(old_pieces), tuple(new_pieces)


def field_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldChange]:
    """Every field that differs between two definitions, the most telling first."""
    names = [name for name in _FIELD_ORDER if name in old or name in new]
    names += sorted((set(old) | set(new)) - set(names))
    changes = []
    for name in names:
        before, after = field_text(old.get(name)), field_text(new.get(name))
        if before != after:
            old_pieces, new_pieces = word_diff(before, after)
            changes.append(FieldChange(name, before, after, old_pieces, new_pieces))
    return changes
