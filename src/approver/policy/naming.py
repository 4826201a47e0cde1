"""Collision-free names for the tools, prompts and resources of all upstream servers.

A tool ``search`` of a server with prefix ``github`` is exposed as ``github__search``. Exposed
names use only ``[A-Za-z0-9_-]`` and are at most 64 characters, the strictest limit among the
model APIs. A name that had to be changed to fit gets a hash suffix, so two different upstream
names never end up with the same exposed name. Collisions *between* servers (two servers with
prefix ``""`` that both have ``search``) are configuration errors naming both servers.

Resources keep their original URIs: :class:`UriTable` routes an exact URI to the one server
that listed it, and a URI no server listed to the servers whose URI templates match it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Final

from approver.errors import ConfigError

MAX_NAME_LENGTH: Final = 64
"""Longest exposed name; several model APIs reject longer tool names."""

SEPARATOR: Final = "__"
"""Between the prefix and the upstream name."""

_HASH_LENGTH: Final = 8
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")


def _sanitize(text: str) -> str:
    return _NOT_ALLOWED.sub("_", text)


def exposed_name(prefix: str, tool: str) -> str:
    """The name clients see for upstream ``tool`` of a server with ``prefix``.

    ``prefix__tool``, or ``tool`` when the prefix is ``""``. Characters outside
    ``[A-Za-z0-9_-]`` become ``_``. When the name had to change or is longer than 64
    characters, ``-`` and 8 hex digits of the SHA-256 of the original name are appended
    (cutting the name so the total is exactly 64 when it was too long): ``a.b`` becomes
    ``a_b-<hash>`` and cannot collide with a real ``a_b``.
    """
    full = f"{prefix}{SEPARATOR}{tool}" if prefix else tool
    clean = _sanitize(full)
    if clean == full and 0 < len(full) <= MAX_NAME_LENGTH:
        return full
    suffix = "-" + hashlib.sha256(full.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    return clean[: MAX_NAME_LENGTH - len(suffix)] + suffix


RESERVED_NAMES: Final = frozenset({"claude-code"})
"""Names no server may have or use as its prefix: agents whose own tools approver decides through
their hooks (``claude-code__Bash``), so a policy key like ``claude-code__*`` names only those."""


def reserved_by(name: str, prefix: object) -> str:
    """The reserved name a server would take, as its name or its prefix ("" when none)."""
    if name in RESERVED_NAMES:
        return name
    return prefix if isinstance(prefix, str) and prefix in RESERVED_NAMES else ""


def reserved_problem(taken: str) -> str:
    """Why a server cannot be named (or prefixed) ``taken``, and what to do."""
    return (
        f'"{taken}" is reserved for that agent\'s own tools ({taken}__Bash, ...), which approver decides '
        "through the agent's hook: give this server another name or prefix"
    )


def default_prefix(server_name: str) -> str:
    """The prefix used when a server sets none: its name with other characters as ``_``."""
    return _sanitize(server_name)


class NameTable:
    """Maps exposed names to ``(server, upstream name)`` and back, for tools or for prompts.

    Built server by server, so the catalog of one server can be replaced when it changes
    without touching the others. ``kind`` (``"tool"`` or ``"prompt"``) is used in error messages.
    """

    def __init__(self, kind: str = "tool", file: str = "servers.json") -> None:
        self.kind = kind
        self.file = file
        self._routes: dict[str, tuple[str, str]] = {}
        self._by_server: dict[str, dict[str, str]] = {}

    @classmethod
    def build(
        cls,
        entries: Iterable[tuple[str, str, Iterable[str]]],
        kind: str = "tool",
        file: str = "servers.json",
    ) -> NameTable:
        """A table from ``(server, prefix, upstream names)`` triples; raises ConfigError on collision."""
        table = cls(kind, file)
        for server, prefix, names in entries:
            table.add_server(server, prefix, names)
        return table

    def add_server(self, server: str, prefix: str, names: Iterable[str]) -> None:
        """Add ``server``'s names, replacing what it had before.

        Raises ConfigError naming both servers when an exposed name is taken by another server;
        the table is then unchanged.
        """
        mine: dict[str, str] = {}
        taken: dict[str, str] = {}
        for upstream in names:
            exposed = exposed_name(prefix, upstream)
            clash = self._routes.get(exposed)
            if clash is not None and clash[0] != server:
                raise self._collision(exposed, (server, upstream), clash)
            previous = taken.setdefault(exposed, upstream)
            if previous != upstream:
                raise self._collision(exposed, (server, upstream), (server, previous))
            mine[upstream] = exposed
        self.remove_server(server)
        self._by_server[server] = mine
        for upstream, exposed in mine.items():
            self._routes[exposed] = (server, upstream)

    def _collision(self, exposed: str, new: tuple[str, str], old: tuple[str, str]) -> ConfigError:
        if new[0] == old[0]:
            what = f"{self.kind}s {old[1]!r} and {new[1]!r} of server {new[0]!r}"
        else:
            what = (
                f"{self.kind} {new[1]!r} of server {new[0]!r} and {self.kind} {old[1]!r} of server {old[0]!r}"
            )
        return ConfigError(
            self.file,
            f"/mcpServers/{new[0]}/prefix",
            f"{what} would both be exposed as {exposed!r}; give one of the servers a different prefix",
        )

    def remove_server(self, server: str) -> None:
        """Forget every name of ``server`` (no error if it had none)."""
        for exposed in self._by_server.pop(server, {}).values():
            del self._routes[exposed]

    def resolve(self, exposed: str) -> tuple[str, str] | None:
        """``(server, upstream name)`` for an exposed name, or None if no server has it."""
        return self._routes.get(exposed)

    def exposed(self, server: str, upstream: str) -> str | None:
        """The exposed name of ``server``'s upstream name, or None if the table lacks it."""
        return self._by_server.get(server, {}).get(upstream)

    def names(self, server: str | None = None) -> list[str]:
        """Exposed names of one server, or of all servers, in the order they were added."""
        if server is not None:
            return list(self._by_server.get(server, {}).values())
        return list(self._routes)

    def items(self, server: str) -> list[tuple[str, str]]:
        """``(upstream name, exposed name)`` of one server's names, in the order they were added."""
        return list(self._by_server.get(server, {}).items())

    def servers(self) -> list[str]:
        """Servers that have names in the table."""
        return list(self._by_server)

    def __contains__(self, exposed: object) -> bool:
        return exposed in self._routes

    def __len__(self) -> int:
        return len(self._routes)


class UriTable:
    """Routes resource URIs to servers; resources keep the URIs their server gave them.

    An exact URI listed by one server goes to that server; the same URI listed by two servers is
    a ConfigError naming both. A URI no server listed goes to the servers whose URI templates
    (RFC 6570) match it, in the order the servers were added, for the caller to try one by one.
    """

    def __init__(self, file: str = "servers.json") -> None:
        self.file = file
        self._exact: dict[str, str] = {}
        self._uris: dict[str, list[str]] = {}
        self._templates: dict[str, list[tuple[str, re.Pattern[str]]]] = {}

    def add_server(self, server: str, uris: Iterable[str], templates: Iterable[str] = ()) -> None:
        """Add ``server``'s resource URIs and templates, replacing what it had before."""
        mine = list(dict.fromkeys(uris))
        for uri in mine:
            owner = self._exact.get(uri)
            if owner is not None and owner != server:
                raise ConfigError(
                    self.file,
                    f"/mcpServers/{server}",
                    f"servers {owner!r} and {server!r} both list the resource {uri!r}; "
                    "disable one of them or remove the resource from one server",
                )
        compiled = [(t, template_pattern(t)) for t in dict.fromkeys(templates)]
        self.remove_server(server)
        self._uris[server] = mine
        self._exact.update(dict.fromkeys(mine, server))
        self._templates[server] = compiled

    def remove_server(self, server: str) -> None:
        """Forget every URI and template of ``server``."""
        for uri in self._uris.pop(server, []):
            del self._exact[uri]
        self._templates.pop(server, None)

    def server_for(self, uri: str) -> str | None:
        """The server that listed exactly ``uri``, or None."""
        return self._exact.get(uri)

    def candidates(self, uri: str) -> list[str]:
        """Servers to ask for ``uri``: the exact owner alone, else servers with a matching template."""
        owner = self._exact.get(uri)
        if owner is not None:
            return [owner]
        return [
            server
            for server, templates in self._templates.items()
            if any(pattern.fullmatch(uri) for _, pattern in templates)
        ]

    def uris(self, server: str) -> list[str]:
        """The exact URIs of ``server``."""
        return list(self._uris.get(server, []))

    def templates(self, server: str) -> list[str]:
        """The URI templates of ``server``."""
        return [t for t, _ in self._templates.get(server, [])]


# What each RFC 6570 expression operator can expand to, loosely: enough to tell which server's
# template could have produced a URI, not to extract the variables.
_EXPANSIONS: Final = {
    "+": r".*",
    "#": r"(?:#.*)?",
    "/": r"(?:/[^?#]*)?",
    ".": r"(?:\.[^/?#]*)?",
    ";": r"(?:;[^/?#]*)?",
    "?": r"(?:\?[^#]*)?",
    "&": r"(?:&[^#]*)?",
}
_EXPRESSION = re.compile(r"\{([^{}]*)\}")


def template_pattern(template: str) -> re.Pattern[str]:
    """A regex matching the URIs an RFC 6570 URI template can expand to (loosely)."""
    parts: list[str] = []
    position = 0
    for match in _EXPRESSION.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        body = match.group(1)
        parts.append(_EXPANSIONS.get(body[:1], r"[^/?#]*"))
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts))
