"""Load JSON configuration files and validate them against the schemas shipped in the package.

Every failure becomes a :class:`~approver.errors.ConfigError` naming the file, the JSON pointer
of the offending value and what was expected, so a user can fix the file without guessing.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from approver.errors import ConfigError


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema ``name`` (e.g. ``"policy"``) shipped in ``approver/schemas``."""
    text = resources.files("approver.config.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_path(name: str) -> Path:
    """Filesystem path of a shipped schema, for ``$schema`` references in files approver writes."""
    return Path(str(resources.files("approver.config.schemas").joinpath(f"{name}.schema.json")))


def schema_uri(name: str) -> str:
    """The ``file://`` URI of a shipped schema: the ``$schema`` value approver writes."""
    return schema_path(name).as_uri()


def is_missing_file_uri(reference: str) -> bool:
    """True for a ``file:`` URI whose file does not exist (approver was reinstalled elsewhere)."""
    if not reference.startswith("file:"):
        return False
    return not Path(unquote(urlparse(reference).path)).exists()


def with_schema(data: Mapping[str, Any], name: str, *, add: bool) -> dict[str, Any]:
    """``data`` with its ``$schema`` pointing at the installed schema ``name`` where it must.

    A ``$schema`` the file has is kept where it is, unless it is a ``file:`` URI to a schema
    that is gone; then it points at the installed one. With ``add`` (for a file approver
    creates) a missing ``$schema`` is added as the first key; without it, a file the user wrote
    without one stays without one.
    """
    reference = data.get("$schema")
    if isinstance(reference, str):
        if not is_missing_file_uri(reference):
            return dict(data)
        return {key: schema_uri(name) if key == "$schema" else value for key, value in data.items()}
    if add and "$schema" not in data:
        return {"$schema": schema_uri(name), **data}
    return dict(data)


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "/"


def _describe(error: ValidationError) -> str:
    """Turn a jsonschema error into 'expected ..., got ...' prose."""
    got = json.dumps(error.instance, ensure_ascii=False)
    if len(got) > 80:
        got = got[:77] + "..."
    validator = error.validator
    expected: Any = error.validator_value
    if validator == "enum":
        return "expected one of " + ", ".join(str(v) for v in expected) + f", got {got}"
    if validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "expected " + " or ".join(_article(str(k)) for k in kinds) + f", got {got}"
    if validator == "required":
        return error.message.replace("is a required property", "is required")
    if validator == "additionalProperties":
        return _unknown_keys(error)
    if validator == "pattern":
        return f"expected a string matching {expected}, got {got}"
    return f"{error.message}"


def unknown_key_message(key: str, known: Iterable[str]) -> str:
    """``unknown key `acton` — did you mean `action`?``, or the keys allowed when nothing is close."""
    allowed = sorted(name for name in known if name != "$schema")
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key `{key}` — did you mean `{close[0]}`?"
    if not allowed:
        return f"unknown key `{key}`: no keys are allowed here"
    return f"unknown key `{key}`; the keys allowed here are " + ", ".join(f"`{name}`" for name in allowed)


def _unexpected(error: ValidationError) -> list[str]:
    """The keys an ``additionalProperties: false`` error is about."""
    instance, schema = error.instance, error.schema
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return []
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [
        key
        for key in instance
        if key not in known and not any(re.search(pattern, key) for pattern in patterns)
    ]


def _known(error: ValidationError) -> list[str]:
    """The keys the schema of ``error`` names."""
    schema = error.schema
    return list(schema.get("properties", {})) if isinstance(schema, dict) else []


def _unknown_keys(error: ValidationError) -> str:
    keys = _unexpected(error)
    known = _known(error)
    if not keys:
        return f"unknown key: {error.message}"
    return "; ".join(unknown_key_message(key, known) for key in keys)


def _typo(errors: Iterable[ValidationError]) -> ValidationError | None:
    """An unknown-key error with a close known key, searched depth first (through if/then/else too).

    A typo such as ``"acton"`` also makes a required key missing; the unknown key is the one to
    report, because fixing it fixes both.
    """
    for error in errors:
        if error.validator == "additionalProperties" and any(
            difflib.get_close_matches(key, _known(error), n=1, cutoff=0.6) for key in _unexpected(error)
        ):
            return error
        found = _typo(error.context or ())
        if found is not None:
            return found
    return None


def _article(kind: str) -> str:
    return {"object": "an object", "array": "an array", "integer": "an integer"}.get(kind, f"a {kind}")


def validate(data: Any, schema_name: str, file: str) -> None:
    """Validate ``data`` against a shipped schema; raise ConfigError for the most relevant error."""
    validator = Draft202012Validator(load_schema(schema_name))
    errors = list(validator.iter_errors(data))
    error = _typo(errors) or jsonschema.exceptions.best_match(errors)
    if error is not None:
        raise ConfigError(file, _pointer(error.absolute_path), _describe(error))


def parse_json(text: str, file: str) -> Any:
    """Parse JSON text; a syntax error becomes a ConfigError with line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            file, "", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


def load_json_file(
    path: Path,
    schema_name: str,
    *,
    missing_ok: bool = False,
    unreadable_hint: str = "",
    check: Callable[[Any, str], None] | None = None,
) -> Any:
    """Read, parse and validate a JSON config file; every failure is a ConfigError.

    With ``missing_ok`` a missing file reads as None. ``unreadable_hint`` says what to do when the
    file cannot be read; ``check(data, file)`` runs before the schema, for messages more precise
    than the schema's.
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ConfigError(file, "", "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            file, "", f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 JSON"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        message = (
            f"cannot be read ({reason}): {unreadable_hint}"
            if unreadable_hint
            else f"cannot be read: {reason}"
        )
        raise ConfigError(file, "", message) from None
    data = parse_json(text, file)
    if check is not None:
        check(data, file)
    validate(data, schema_name, file)
    return data
