"""Load JSON configuration files and validate them against the schemas shipped in the package.

Every failure becomes a :class:`~approver.errors.ConfigError` naming the file, the JSON pointer
of the offending value and what was expected, so a user can fix the file without guessing.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from approver.errors import ConfigError


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema ``name`` (e.g. ``"policy"``) shipped in ``approver/schemas``."""
    text = resources.files("approver.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_path(name: str) -> Path:
    """Filesystem path of a shipped schema, for ``$schema`` references in files approver writes."""
    return Path(str(resources.files("approver.schemas").joinpath(f"{name}.schema.json")))


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
        return f"unknown key: {error.message}"
    if validator == "pattern":
        return f"expected a string matching {expected}, got {got}"
    return f"{error.message}"


def _article(kind: str) -> str:
    return {"object": "an object", "array": "an array", "integer": "an integer"}.get(kind, f"a {kind}")


def validate(data: Any, schema_name: str, file: str) -> None:
    """Validate ``data`` against a shipped schema; raise ConfigError for the most relevant error."""
    validator = Draft202012Validator(load_schema(schema_name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
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


def load_json_file(path: Path, schema_name: str) -> Any:
    """Read, parse and validate a JSON config file; every failure is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None
    data = parse_json(text, str(path))
    validate(data, schema_name, str(path))
    return data
