"""Secret redaction: keep keyring values, token shapes and secret-named fields out of logs.

A :class:`Redactor` replaces what it recognises with ``[REDACTED:kind]``:

- values it was told about (``add_secrets``: the keyring's passwords and tokens), wherever they occur;
- common token shapes (``Bearer ...``, GitHub, OpenAI/Anthropic, Slack, AWS, Stripe, Google, JWT,
  PEM private keys);
- in JSON, the whole value of a key whose name says it holds a secret (``password``, ``githubToken``,
  ``api-key``, ...), but not ``max_tokens`` or ``token_count``.

:func:`redact_logs` puts the same redaction on approver's log output (stderr).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

MIN_SECRET_LENGTH: Final = 4
"""Known secret values shorter than this are ignored: they would match ordinary text."""

_B64URL: Final = r"[A-Za-z0-9_\-]"

# Every pattern starts with a literal so the regex engine can skip ahead with a fast substring
# search; a leading \b or lookbehind would disable that and cost ~15 ms per pattern on 1 MB.
# The word-boundary check happens in _replace_token instead, which only runs on matches.
_TOKEN_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (
            "private_key",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        ),
        ("github", r"gh[pousr]_[A-Za-z0-9]{20,}"),
        ("github", r"github_pat_[A-Za-z0-9_]{20,}"),
        ("anthropic", rf"sk-ant-{_B64URL}{{20,}}"),
        ("openai", rf"sk-{_B64URL}{{20,}}"),
        ("slack", r"xox[abprs]-[A-Za-z0-9\-]{10,}"),
        ("aws_access_key_id", r"A(?:KIA|SIA)[0-9A-Z]{16}(?![0-9A-Za-z])"),
        ("stripe", r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}"),
        ("google", rf"AIza{_B64URL}{{35}}"),
        ("jwt", rf"eyJ{_B64URL}+\.eyJ{_B64URL}+\.{_B64URL}*"),
        ("bearer", r"(?:Bearer|bearer|BEARER)\s+[A-Za-z0-9\-._~+/]{8,}=*"),
    )
)

# Secret field names as word sequences; a key is secret when its words end with one of them.
_SECRET_NAMES: Final[tuple[tuple[str, ...], ...]] = (
    ("password",),
    ("passwd",),
    ("passphrase",),
    ("secret",),
    ("token",),
    ("apikey",),
    ("api", "key"),
    ("secret", "key"),
    ("private", "key"),
    ("authorization",),
    ("cookie",),
    ("credentials",),
)
# ...or when its first word is one of these (password_confirmation, password2).
_SECRET_FIRST_WORDS: Final = frozenset({"password", "passwd", "passphrase"})

_WORD: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _key_words(key: str) -> list[str]:
    """``"githubToken"`` -> ``["github", "token"]``; ``"X-Api-Key"`` -> ``["x", "api", "key"]``."""
    return [word.lower() for word in _WORD.findall(key)]


def secret_key_kind(key: str) -> str | None:
    """The secret name a JSON key matches (``"token"`` for ``githubToken``), or None."""
    words = _key_words(key)
    for name in _SECRET_NAMES:
        if len(words) >= len(name) and tuple(words[-len(name) :]) == name:
            return "_".join(name)
    if words and words[0] in _SECRET_FIRST_WORDS:
        return words[0]
    return None


def _replace_token(kind: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        start = match.start()
        if start > 0 and match.string[start - 1].isalnum():
            return match.group()  # inside a longer word, e.g. "risk-assessment-..."
        return f"[REDACTED:{kind}]"

    return replace


def secret_shapes(s: str) -> list[str]:
    """The kinds of token shapes the redactor would replace in ``s`` (``private_key``, ``github``, ...).

    Each kind once, in the redactor's order; for flagging secrets a person is about to send.
    """
    found: list[str] = []
    for kind, pattern in _TOKEN_PATTERNS:
        if kind in found:
            continue
        for match in pattern.finditer(s):
            if match.start() == 0 or not s[match.start() - 1].isalnum():
                found.append(kind)
                break
    return found


class Redactor:
    """Replaces secrets in text and JSON with ``[REDACTED:kind]``.

    Safe to share between threads: ``add_secrets`` swaps in a new tuple, it never mutates one
    that a concurrent ``redact_text`` is reading.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self._replacers = tuple((pattern, _replace_token(kind)) for kind, pattern in _TOKEN_PATTERNS)
        self.add_secrets(secrets)

    def add_secrets(self, values: Iterable[str]) -> None:
        """Also redact these exact values from now on (shorter than 4 characters are ignored)."""
        known = set(self._secrets)
        known.update(value for value in values if len(value) >= MIN_SECRET_LENGTH)
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = tuple(sorted(known, key=lambda value: (-len(value), value)))

    def redact_text(self, s: str) -> str:
        """``s`` with known secrets and token shapes replaced."""
        for secret in self._secrets:
            if secret in s:
                s = s.replace(secret, "[REDACTED:secret]")
        for pattern, replace in self._replacers:
            s = pattern.sub(replace, s)
        return s

    def redact_json(self, value: Any) -> Any:
        """A copy of a JSON value with secret-named fields and secret strings redacted."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            result: dict[str, Any] = {}
            for key, item in value.items():
                kind = secret_key_kind(key) if isinstance(key, str) else None
                if kind is not None and item is not None:
                    result[self.redact_text(key)] = f"[REDACTED:{kind}]"
                else:
                    result[self.redact_text(str(key))] = self.redact_json(item)
            return result
        if isinstance(value, list | tuple):
            return [self.redact_json(item) for item in value]
        return value

    def redact_config(self, text: str) -> str:
        """A config file's text, or a diff of one, with its secret values masked for showing.

        The value of every ``"key": "value"`` pair whose key names a secret (``API_KEY``,
        ``Authorization``, ``githubToken``) is masked, then known secrets and token shapes
        anywhere. ``${keyring:...}`` and ``${env:...}`` references are not secrets and stay.
        """
        return self.redact_text(_CONFIG_PAIR.sub(_mask_pair, text))


_CONFIG_PAIR: Final = re.compile(r'("((?:[^"\\\n]|\\.)*)"\s*:\s*)"((?:[^"\\\n]|\\.)*)"')
"""A JSON ``"key": "string"`` pair on one line (of a file or of a diff)."""


_PLACEHOLDER: Final = re.compile(r"(?:Bearer\s+)?<[a-z-]+>")
"""A value that only stands in for a secret, such as ``Bearer <token>`` in a printed diff."""


def _mask_pair(match: re.Match[str]) -> str:
    kind = secret_key_kind(match.group(2))
    value = match.group(3)
    if (
        kind is None
        or not value
        or value.startswith("${")
        or "[REDACTED:" in value
        or _PLACEHOLDER.fullmatch(value)
    ):
        return match.group(0)
    return f'{match.group(1)}"[REDACTED:{kind}]"'


LOGGERS_TO_REDACT: Final = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
"""Loggers whose handlers get a :class:`RedactingFilter`: the root and uvicorn's own."""


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record's message and traceback before it is written.

    Messages quote upstream errors and exceptions, which can carry tokens; a filter on the
    handler (not the logger) also sees records propagated from every child logger.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor.redact_text
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as it would
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def redact_logs(redactor: Redactor, loggers: Iterable[str] = LOGGERS_TO_REDACT) -> Callable[[], None]:
    """Add a :class:`RedactingFilter` to every handler of ``loggers`` now; returns the undo."""
    log_filter = RedactingFilter(redactor)
    handlers = {handler for name in loggers for handler in logging.getLogger(name).handlers}
    for handler in handlers:
        handler.addFilter(log_filter)

    def undo() -> None:
        for handler in handlers:
            handler.removeFilter(log_filter)

    return undo
