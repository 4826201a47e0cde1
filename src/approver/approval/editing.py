"""A person's edit of a waiting call's arguments: turning fields back into JSON, and checking it.

The approval dialog lets a person change a call before approving it: a short value in its form
field, a long string in its text block, or the whole call as raw JSON. This module is the Qt-free
half of that: it shows each value as editable text (:func:`field_text`), reads it back as the
JSON value it stands for (:func:`field_value`), encodes the result the way the gateway encodes
every call (:func:`encode_arguments`, canonical JSON), and checks it against the tool's input
schema (:func:`schema_problem`) before anything is approved. The gateway checks it again before
it forwards a byte: an edit that fails there denies the call (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.validators import validator_for

_ARGUMENTS_JSON: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""Canonical JSON, refusing NaN and Infinity: they are not JSON, and an upstream would get ``null``
instead of the value that was decided on."""


class EditError(ValueError):
    """An edited value or call that cannot be approved; the message says why, for the person."""


def encode_arguments(arguments: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of ``arguments``: what is decided on, shown, recorded and forwarded.

    Raises ValueError (NaN, Infinity) or TypeError (not JSON) when they cannot be encoded.
    """
    return _ARGUMENTS_JSON.encode(arguments).encode()


def field_text(value: Any) -> str:
    """How a value is edited as text: a string as itself, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def field_value(name: str, text: str, original: Any) -> Any:
    """The JSON value the text of field ``name`` stands for, given the value it had.

    A string stays a string, whatever is typed; any other value is read as JSON (``42``,
    ``true``, ``null``, ``[1, 2]``). Raises :class:`EditError` naming the field.
    """
    if isinstance(original, str):
        return text
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise EditError(f"{name}: {_what(original)} is expected as JSON ({exc})") from None


def parse_raw(text: str) -> dict[str, Any]:
    """The arguments from the raw JSON editor: one JSON object. Raises :class:`EditError`."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise EditError(f"the raw JSON is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise EditError("the raw JSON must be one object of arguments ({...})")
    return value


def schema_problem(arguments: Mapping[str, Any], schema: Mapping[str, Any] | None) -> str:
    """Why ``arguments`` do not fit the tool's input ``schema``, in words; "" when they fit.

    A schema that is not valid JSON Schema cannot vouch for anything, so it is a problem too. No
    reference is fetched from the network.
    """
    if not schema:
        return ""
    try:
        plain = dict(schema)
        validator_class = validator_for(plain, default=Draft202012Validator)
        validator_class.check_schema(plain)
        error = best_match(validator_class(plain).iter_errors(dict(arguments)))
    except SchemaError as exc:
        return (
            f"the tool's input schema is not valid JSON Schema, so an edit cannot be checked ({exc.message})"
        )
    except Exception as exc:  # a schema the validator chokes on (an unresolvable $ref, ...)
        return f"the tool's input schema cannot be checked ({type(exc).__name__}: {exc})"
    if error is None:
        return ""
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where or 'the arguments'}: {error.message}"


def checked_edit(arguments: Mapping[str, Any], schema: Mapping[str, Any] | None) -> bytes:
    """The canonical bytes of edited ``arguments`` once they fit ``schema``; raises :class:`EditError`."""
    problem = schema_problem(arguments, schema)
    if problem:
        raise EditError(f"the edited arguments do not fit the tool's input schema: {problem}")
    try:
        return encode_arguments(arguments)
    except (TypeError, ValueError) as exc:
        raise EditError(f"the edited arguments cannot be encoded as JSON ({exc})") from None


def check_approved(approved: bytes, schema: Mapping[str, Any] | None) -> str:
    """Why approved edited bytes must not be forwarded ("" when they may): the gateway's own check.

    They must be one canonical JSON object (the dialog encodes them so) that fits ``schema``.
    """
    try:
        value = json.loads(approved, parse_constant=_no_constant)
    except ValueError:
        return "the edited arguments are not JSON"
    if not isinstance(value, dict):
        return "the edited arguments are not a JSON object"
    if encode_arguments(value) != approved:
        return "the edited arguments are not in canonical form"
    problem = schema_problem(value, schema)
    return f"the edited arguments do not fit the tool's input schema: {problem}" if problem else ""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a JSON value"
