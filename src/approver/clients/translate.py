"""Turn one server entry of a client's config into an approver ``servers.json`` entry.

The transport is read the way each client reads it (``type``, else ``command`` means stdio and a
URL means HTTP; Windsurf's URL key is ``serverUrl``). SSE servers are refused: approver speaks
only Streamable HTTP. Every string goes through :mod:`approver.clients.variables`. Literal secrets
in ``env`` and ``headers`` (a secret-sounding key such as ``GITHUB_TOKEN`` or ``Authorization``,
or a value shaped like a token) are not copied: they are returned as :class:`LiteralSecret`
for the importer to move into the keyring, and the entry gets a ``${keyring:NAME}`` placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from approver.audit.redact import Redactor, secret_key_kind
from approver.clients.formats import ClientFormat
from approver.clients.variables import Context, Translation, literal, translate

SECRET_SLOT: Final = "\x00secret\x00"  # noqa: S105 -- a marker, not a password
"""Where a literal secret's keyring reference goes, until the importer has picked its name."""

_CARRIED: Final = frozenset(
    {"type", "command", "args", "env", "cwd", "url", "serverUrl", "headers", "disabled", "oauth"}
)
_IGNORED_QUIETLY: Final = frozenset({"description"})
_SCHEME: Final = re.compile(r"(Bearer|Basic|Token|token|bearer)(\s+)(\S.*)", re.DOTALL)
_APPROVER_COMMAND: Final = re.compile(r"(^|[/\\])approver(\.exe)?$")
_REDACTOR: Final = Redactor()


class Skip(Exception):
    """The entry cannot be imported; ``str()`` says why."""


@dataclass(frozen=True)
class LiteralSecret:
    """A secret written literally in a client config, to move into the keyring."""

    table: str
    """``env`` or ``headers``."""
    key: str
    value: str = field(repr=False)


@dataclass
class Translated:
    """One translated entry: ``entry`` holds :data:`SECRET_SLOT` where each secret's reference goes."""

    entry: dict[str, Any]
    secrets: list[LiteralSecret] = field(default_factory=list)
    inputs: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def is_approver_entry(entry: Mapping[str, Any]) -> bool:
    """True when ``entry`` is approver itself: its stdio bridge (``approver connect --client ...``)."""
    command = entry.get("command")
    args = entry.get("args")
    if not isinstance(command, str) or not isinstance(args, list):
        return False
    words = [command, *(a for a in args if isinstance(a, str))]
    if "connect" not in words or "--client" not in words:
        return False
    return bool(_APPROVER_COMMAND.search(command)) or any(
        words[i : i + 2] == ["-m", "approver"] for i in range(len(words) - 1)
    )


def transport_of(client: ClientFormat, entry: Mapping[str, Any]) -> tuple[str, str | None]:
    """``("stdio", None)`` or ``("http", url)``; raises Skip for SSE and entries of neither kind."""
    kind = entry.get("type")
    url = entry.get(client.url_key, entry.get("url", entry.get("serverUrl")))
    if isinstance(kind, str) and kind.lower() == "sse":
        raise Skip(
            "it uses the SSE transport, which approver does not support; if the server also has a "
            "Streamable HTTP endpoint, add that to servers.json by hand"
        )
    if kind in (None, "stdio") and isinstance(entry.get("command"), str) and entry["command"]:
        return "stdio", None
    if kind in (None, "http", "streamable-http", "streamableHttp") and isinstance(url, str) and url:
        return "http", url
    raise Skip(f"it has neither a command nor a URL approver understands (type {kind!r})")


def translate_entry(
    client: ClientFormat, name: str, entry: Mapping[str, Any], context: Context
) -> Translated:
    """``entry`` as an approver entry; raises Skip when it cannot be imported."""
    transport, url = transport_of(client, entry)
    found = Translation()
    result = Translated({})

    def text(value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise Skip(f"{where} is not a string")
        return translate(value, client.syntax, context, f"{name}: {where}", found)

    out = result.entry
    if transport == "stdio":
        out["command"] = text(entry["command"], "command")
        args = entry.get("args", [])
        if not isinstance(args, list):
            raise Skip("args is not a list")
        if args:
            out["args"] = [text(a, f"args[{i}]") for i, a in enumerate(args)]
        if entry.get("cwd"):
            out["cwd"] = text(entry["cwd"], "cwd")
        _secret_map(result, "env", entry.get("env"), text, found)
    else:
        out["type"] = "http"
        out["url"] = text(url, client.url_key)
        _secret_map(result, "headers", entry.get("headers"), text, found)
        _oauth(result, name, entry.get("oauth"))
    if entry.get("disabled") is True:
        out["disabled"] = True
    for value in (out.get("url"), *out.get("args", [])):
        if isinstance(value, str) and _REDACTOR.redact_text(value) != value:
            result.notes.append(
                f"{name}: a value in its {'url' if value == out.get('url') else 'args'} looks like a secret; "
                "approver copied it as written: consider moving it into env as ${keyring:NAME}"
            )
    ignored = sorted(set(entry) - _CARRIED - _IGNORED_QUIETLY - {client.url_key})
    if ignored:
        result.notes.append(f"{name}: approver has no equivalent of {', '.join(ignored)}; left out")
    result.notes.extend(found.notes)
    result.inputs = found.inputs
    return result


def _oauth(result: Translated, name: str, oauth: Any) -> None:
    """Carry a client's ``oauth`` entry (Claude Code: ``clientId``, ``callbackPort``) over."""
    if oauth is None:
        return
    if not isinstance(oauth, dict):
        result.notes.append(f"{name}: its oauth entry is not an object; left out")
        return
    carried: dict[str, Any] = {}
    if isinstance(oauth.get("clientId"), str) and oauth["clientId"]:
        carried["clientId"] = oauth["clientId"]
    port = oauth.get("callbackPort")
    if isinstance(port, int) and not isinstance(port, bool) and 1024 <= port <= 65535:
        carried["callbackPort"] = port
    if carried:
        result.entry["oauth"] = carried
    left = sorted(set(oauth) - set(carried))
    if left:
        result.notes.append(f"{name}: approver has no equivalent of oauth.{', oauth.'.join(left)}; left out")
    if "clientId" in carried:
        result.notes.append(
            f"{name}: if its OAuth client has a secret, store it with `approver secret set NAME` and add "
            '"clientSecret": "${keyring:NAME}" to its oauth entry'
        )


def _secret_map(
    result: Translated, key: str, values: Any, text: Callable[[Any, str], str], found: Translation
) -> None:
    if values is None:
        return
    if not isinstance(values, dict):
        raise Skip(f"{key} is not an object")
    translated: dict[str, str] = {}
    for item, raw in values.items():
        references_before, found.references = found.references, False
        value = text(raw, f"{key}.{item}")
        has_reference, found.references = found.references, found.references or references_before
        if not raw or has_reference or not _looks_secret(item, raw):
            translated[item] = value
            continue
        scheme = _SCHEME.fullmatch(raw) if key == "headers" else None
        secret = scheme.group(3) if scheme else raw
        result.secrets.append(LiteralSecret(key, item, secret))
        prefix = literal(scheme.group(1) + scheme.group(2)) if scheme else ""
        translated[item] = prefix + SECRET_SLOT
    result.entry[key] = translated


def _looks_secret(key: str, value: str) -> bool:
    """A secret by its name (``API_KEY``, ``Authorization``) or by its shape (``ghp_...``)."""
    return secret_key_kind(key) is not None or _REDACTOR.redact_text(value) != value
