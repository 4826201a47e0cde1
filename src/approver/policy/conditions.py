"""Argument conditions: tests on a call's arguments that choose a rule's action.

A condition's ``when`` maps an argument (a top-level name or a JSON pointer) to operators
(``equals``, ``starts_with``, ``matches``, ``path_under``, ``url_host``, ``command_prefix``,
``gt``, ...); its ``clients`` name the clients it is for. All of a condition's tests must hold,
and the call must come from one of its clients, for its action to apply. Comparisons follow
JSON, not Python: ``true`` is not ``1``. ``path_under`` normalises paths lexically; it cannot see
symlinks on the upstream's machine. The two operators that read structure out of a string
(``url_host``, ``command_prefix``) refuse to match anything another parser could read differently.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from approver.calls import Action
from approver.errors import ConfigError

_MISSING: Final = object()
_INDEX: Final = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class Test:
    """One argument's checks: all of them must hold."""

    path: tuple[str, ...]
    checks: tuple[tuple[Callable[[Any, Any], bool], Any], ...]
    holds_when_missing: bool

    def holds(self, arguments: Mapping[str, Any]) -> bool:
        """Whether the arguments pass every check (a missing argument passes only ``exists: false``)."""
        value = _lookup(arguments, self.path)
        if value is _MISSING:
            return self.holds_when_missing
        return all(check(value, operand) for check, operand in self.checks)


@dataclass(frozen=True, slots=True)
class Condition:
    """One compiled entry of a rule's ``conditions``."""

    rule: str
    action: Action
    reason: str
    tests: tuple[Test, ...]
    clients: tuple[str, ...] | None = None
    """Client names or globs the condition is for; None: every client."""

    def holds(self, arguments: Mapping[str, Any], client: str | None = None) -> bool:
        """Whether ``client`` is one of the condition's clients and every test holds for ``arguments``.

        ``client=None`` checks the arguments only.
        """
        if client is not None and not client_matches(self.clients, client):
            return False
        return all(test.holds(arguments) for test in self.tests)

    @property
    def paths(self) -> tuple[tuple[str, ...], ...]:
        """The argument paths the condition's tests read."""
        return tuple(test.path for test in self.tests)


def client_matches(patterns: Sequence[str] | None, client: str) -> bool:
    """Whether ``client`` is named by one of ``patterns`` (names or fnmatch globs); None names everyone."""
    return patterns is None or any(fnmatch.fnmatchcase(client, pattern) for pattern in patterns)


def quote(name: str) -> str:
    """A name as it is written in a rule path or message: a JSON string."""
    return json.dumps(name, ensure_ascii=False)


def pointer_token(token: str) -> str:
    """``token`` escaped for use in a JSON pointer (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def compile_condition(raw: Mapping[str, Any], rule: str, where: str, file: str) -> Condition:
    """A :class:`Condition` from its JSON; a bad pointer, operator or regex is a ConfigError."""
    tests = tuple(
        _compile_test(arg, ops, f"{where}/when/{pointer_token(arg)}", file)
        for arg, ops in raw.get("when", {}).items()
    )
    clients = tuple(raw["clients"]) if "clients" in raw else None
    return Condition(rule, Action(raw["action"]), raw.get("reason", ""), tests, clients)


def _compile_test(arg: str, ops: Mapping[str, Any], where: str, file: str) -> Test:
    if arg.startswith("/"):
        tokens = arg[1:].split("/")
        if any(re.search(r"~(?![01])", token) for token in tokens):
            raise ConfigError(file, where, f"invalid JSON pointer {quote(arg)}: use ~0 or ~1 after ~")
        path = tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)
    else:
        path = (arg,)
    checks = tuple(_check(op, operand, f"{where}/{op}", file) for op, operand in ops.items())
    holds_when_missing = all(op == "exists" and operand is False for op, operand in ops.items())
    return Test(path, checks, holds_when_missing)


def _check(op: str, operand: Any, where: str, file: str) -> tuple[Callable[[Any, Any], bool], Any]:
    """The operator's check and its operand in the form the check takes (regexes compiled)."""
    if op not in _OPERATORS:
        raise ConfigError(file, where, f"unknown operator {quote(op)}")
    if op == "matches":
        try:
            operand = re.compile(operand)
        except re.error as exc:
            raise ConfigError(file, where, f"invalid regular expression {quote(operand)}: {exc}") from None
    elif op == "path_under":
        operand = _directories(operand, where, file)
    elif op == "url_host":
        operand = _hosts(operand, where, file)
    elif op == "command_prefix":
        operand = _words(operand, where, file)
    return _OPERATORS[op], operand


_HOST: Final = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?|[0-9a-f]*:[0-9a-f:.]*")
_SHELL_OPERATORS: Final = frozenset(";|&$`<>\n\r\\(){}")
"""Characters that make a shell do more than run one command with words (or hide what it runs)."""
_URL_UNSAFE: Final = re.compile(r"[^\x21-\x7e]|\\")


def _hosts(operand: str | list[str], where: str, file: str) -> tuple[str, ...]:
    hosts = []
    for i, host in enumerate([operand] if isinstance(operand, str) else operand):
        if not _HOST.fullmatch(host.lower()):
            pointer = where if isinstance(operand, str) else f"{where}/{i}"
            raise ConfigError(
                file, pointer, f"expected a host name like example.com or *.example.com, got {quote(host)}"
            )
        hosts.append(host.lower())
    return tuple(hosts)


def _words(operand: str, where: str, file: str) -> tuple[str, ...]:
    words = _shell_words(operand)
    if not words:
        raise ConfigError(
            file, where, f"expected words of a command without shell operators, got {quote(operand)}"
        )
    return words


def _shell_words(command: str) -> tuple[str, ...] | None:
    """The words a shell would pass for ``command``; None when it holds a shell operator or bad quoting."""
    if any(char in _SHELL_OPERATORS for char in command):
        return None
    try:
        return tuple(shlex.split(command))
    except ValueError:
        return None


def _command_prefix(value: Any, words: tuple[str, ...]) -> bool:
    """Whether a command (a shell string, or an argv array) starts with ``words``."""
    if isinstance(value, list):
        found: tuple[Any, ...] | None = tuple(value[: len(words)])
    elif isinstance(value, str):
        found = _shell_words(value)
        found = found[: len(words)] if found is not None else None
    else:
        return False
    return found == words


def url_host(value: Any) -> str | None:
    """The lower-case host of a URL, or None when it has none or could be read two ways.

    User info (``https://good.example@evil.example``), backslashes, spaces and control
    characters are refused: parsers disagree about where such a URL's host is.
    """
    if not isinstance(value, str) or _URL_UNSAFE.search(value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    if not parts.scheme or "@" in parts.netloc or not host:
        return None
    return host.lower()


def _url_host(value: Any, hosts: tuple[str, ...]) -> bool:
    host = url_host(value)
    if host is None:
        return False
    return any(host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in hosts)


def _directories(operand: str | list[str], where: str, file: str) -> tuple[str, ...]:
    result = []
    for i, directory in enumerate([operand] if isinstance(operand, str) else operand):
        normal = normalise_path(directory)
        if normal is None:
            pointer = where if isinstance(operand, str) else f"{where}/{i}"
            raise ConfigError(file, pointer, f"expected an absolute directory, got {quote(directory)}")
        result.append(normal.rstrip("/") + "/")
    return tuple(result)


def normalise_path(path: str) -> str | None:
    """``path`` with ``.``, ``..`` and repeated slashes resolved; None unless absolute and NUL-free."""
    if "\0" in path or not path.startswith("/"):
        return None
    return "/" + posixpath.normpath(path).lstrip("/")


def _path_under(value: Any, prefixes: tuple[str, ...]) -> bool:
    """Whether ``value`` normalised lies under a directory; ``prefixes`` end with ``/``."""
    normal = normalise_path(value) if isinstance(value, str) else None
    return normal is not None and any((normal + "/").startswith(prefix) for prefix in prefixes)


def _lookup(arguments: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = arguments
    for token in path:
        if isinstance(value, Mapping) and token in value:
            value = value[token]
        elif isinstance(value, list) and _INDEX.fullmatch(token) and int(token) < len(value):
            value = value[int(token)]
        else:
            return _MISSING
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _contains(value: Any, operand: Any) -> bool:
    if isinstance(value, str):
        return isinstance(operand, str) and operand in value
    if isinstance(value, list):
        return any(_json_equal(item, operand) for item in value)
    return False


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str | None) and isinstance(b, str | None):
        return a == b
    return False


_OPERATORS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "equals": _json_equal,
    "not_equals": lambda value, x: not _json_equal(value, x),
    "in": lambda value, x: any(_json_equal(value, item) for item in x),
    "not_in": lambda value, x: not any(_json_equal(value, item) for item in x),
    "starts_with": lambda value, x: isinstance(value, str) and value.startswith(x),
    "ends_with": lambda value, x: isinstance(value, str) and value.endswith(x),
    "contains": _contains,
    "matches": lambda value, x: isinstance(value, str) and x.fullmatch(value) is not None,
    "glob": lambda value, x: isinstance(value, str) and fnmatch.fnmatchcase(value, x),
    "gt": lambda value, x: _is_number(value) and value > x,
    "gte": lambda value, x: _is_number(value) and value >= x,
    "lt": lambda value, x: _is_number(value) and value < x,
    "lte": lambda value, x: _is_number(value) and value <= x,
    "exists": lambda value, x: bool(x),
    "max_length": lambda value, x: isinstance(value, str | list) and len(value) <= x,
    "path_under": _path_under,
    "url_host": _url_host,
    "command_prefix": _command_prefix,
}
"""Each operator's check, called with the argument's value and the compiled operand."""
