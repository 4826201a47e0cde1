"""Errors the core raises for a person to read: each says what is wrong and where."""

from __future__ import annotations


class ApproverError(Exception):
    """Base class for errors that carry a message meant for the user, never a traceback."""


class ConfigError(ApproverError):
    """A configuration file is unreadable or invalid.

    ``str(error)`` reads like ``policy.json: /tools/x/action: expected one of allow, deny,
    require_approval, got "maybe"``: the file, the JSON pointer and what was expected.
    """

    def __init__(self, file: str, pointer: str, message: str) -> None:
        self.file = file
        self.pointer = pointer
        self.message = message
        where = f"{file}: {pointer}" if pointer else file
        super().__init__(f"{where}: {message}")
