"""Which policy patterns name a tool, a prompt, a resource or a server, and how specifically.

A pattern is a name or an ``fnmatch`` glob (``*``, ``?``, ``[abc]``). What it may match is
decided by its own text, never by a name a server chose:

* A pattern with ``__`` names a server: ``github__*`` is "any tool of the server ``github``".
  Its part before a ``__`` must match the server's name in servers.json or its (non-empty)
  prefix, and its part after must match the tool's upstream name or the rest of its exposed
  name. A server picks its tool names, so it controls only the part after ``__``: a tool named
  ``trusted__send_email`` on server ``evil`` is ``evil__trusted__send_email``, and never falls
  under a rule for ``trusted``.
* A pattern without ``__`` names no server and is matched against the whole exposed name:
  ``*``, ``*delete*``, or ``read_file`` for a server whose prefix is ``""``. The upstream
  name alone (the "bare name") is never matched: any server could choose it.

Of several matching patterns, the most specific wins (see :func:`name_rank`).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from typing import Final

SEPARATOR: Final = "__"
"""Between a server's name (or prefix) and a tool's name in a pattern."""

Rank = tuple[int, int]
"""How specifically a pattern matched: higher is more specific (see :func:`name_rank`)."""

_WILDCARDS: Final = re.compile(r"\[!?+\]?+[^\]]*\]|[*?]")  # fnmatch's bracket rule


def literal_chars(pattern: str) -> int:
    """Characters of a glob that match only themselves (``*``, ``?`` and ``[...]`` don't count)."""
    return len(_WILDCARDS.sub("", pattern))


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` has a wildcard, so it is not an exact name."""
    return _WILDCARDS.search(pattern) is not None


class _Part:
    """One side of a pattern, compiled once: equality when it has no wildcard, else a regex."""

    __slots__ = ("_exact", "_regex")

    def __init__(self, text: str) -> None:
        self._exact = None if is_glob(text) else text
        self._regex = None if self._exact is not None else re.compile(fnmatch.translate(text))

    def matches(self, name: str) -> bool:
        if self._regex is None:
            return name == self._exact
        return self._regex.match(name) is not None


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a pattern's text says, worked out once per pattern (policies are matched on every call)."""

    glob: bool
    literal: int
    whole: _Part
    splits: tuple[tuple[_Part, _Part], ...]
    """Every (server part, rest) split at a ``__``: a server name or prefix may itself hold ``__``."""


@functools.lru_cache(maxsize=65536)
def _shape(pattern: str, before_colon: bool = False) -> _Shape:
    """The compiled pattern; with ``before_colon`` only a ``__`` before the first ``:`` splits it."""
    end = len(pattern)
    if before_colon and ":" in pattern:
        end = pattern.index(":")
    splits = []
    start = pattern.find(SEPARATOR)
    while 0 < start < end:
        splits.append((_Part(pattern[:start]), _Part(pattern[start + len(SEPARATOR) :])))
        start = pattern.find(SEPARATOR, start + 1)
    return _Shape(is_glob(pattern), literal_chars(pattern), _Part(pattern), tuple(splits))


def name_rank(pattern: str, server: str, prefix: str, upstream: str, exposed: str) -> Rank | None:
    """How ``pattern`` matches a tool or prompt, or ``None`` when it does not.

    ``server`` is the name in servers.json, ``prefix`` the server's prefix in exposed names
    (``""`` for none), ``upstream`` the server's own name for the tool, ``exposed`` the name
    clients see. An exact pattern beats any glob: the exposed name ``(3, length)``, the
    server-qualified ``server__tool`` ``(2, length)``. A glob ranks ``(0, literal characters)``.
    """
    shape = _shape(pattern)
    if not shape.splits:
        if pattern == exposed:
            return (3, len(pattern))
        return (0, shape.literal) if shape.glob and shape.whole.matches(exposed) else None
    rest = (
        exposed[len(prefix) + len(SEPARATOR) :] if prefix and exposed.startswith(prefix + SEPARATOR) else None
    )
    best: Rank | None = None
    for left, right in shape.splits:
        by_prefix = rest is not None and left.matches(prefix) and right.matches(rest)
        by_server = left.matches(server) and right.matches(upstream)
        if shape.glob and (by_prefix or by_server):
            return (0, shape.literal)
        if by_prefix and pattern == exposed:
            return (3, len(pattern))
        if by_server or by_prefix:
            best = (2, len(pattern))
    return best


def uri_rank(pattern: str, server: str, uri: str) -> Rank | None:
    """How a ``resources`` pattern matches a read of ``uri`` from ``server``, or ``None``.

    ``server__<uri glob>`` names the server (a URI scheme cannot hold ``_``, so a ``__`` before
    the first ``:`` is always the separator); a pattern without one matches the URI on any
    server. Exact beats glob, and of exact patterns the server-qualified one wins.
    """
    shape = _shape(pattern, before_colon=True)
    if not shape.splits:
        if pattern == uri:
            return (1, len(pattern))
        return (0, shape.literal) if shape.glob and shape.whole.matches(uri) else None
    for left, right in shape.splits:
        if left.matches(server) and right.matches(uri):
            return (0, shape.literal) if shape.glob else (2, len(pattern))
    return None


def server_rank(pattern: str, server: str) -> Rank | None:
    """How a pattern of server names (``completion`` rules) matches ``server``, or ``None``."""
    if pattern == server:
        return (1, len(pattern))
    shape = _shape(pattern)
    return (0, shape.literal) if shape.glob and shape.whole.matches(server) else None
