"""The stored preview of a call's arguments: redacted, capped, and never more work than it keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from approver.audit.preview import clip, redacted_preview, redacted_text_preview
from approver.audit.records import canonical_json
from approver.audit.redact import REDACTION_MARGIN, Redactor

CAP = 64 * 1024
SECRET = "Kx9-LONG-KEYRING-SECRET-" + "q" * 40
PEM = (
    "-----BEGIN PRIVATE KEY-----\n" + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" * 200 + "-----END PRIVATE KEY-----"
)
JWT_BODY = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0." + "s" * 6000


class Untouchable:
    """A value that fails the test if the preview ever looks at it."""

    def __str__(self) -> str:
        raise AssertionError("the preview read a value past its cap")


@pytest.mark.parametrize(
    "value",
    [
        {"path": "notes/today.txt", "n": 3, "flags": [True, False, None], "ratio": 0.25},
        {"nested": {"password": "hunter22", "list": [{"apiKey": 5}, "Bearer abcdefghijkl"]}},
        {"unicode": "grüße \u202e \U0001f600", "quote": 'a "b" \\ c\n', "big": 2**80, "tiny": -1e-300},
        {},
    ],
)
def test_a_small_value_is_stored_exactly_as_its_redacted_canonical_json(value: dict[str, Any]) -> None:
    redactor = Redactor()

    preview, cut = redacted_preview(value, redactor, CAP)

    assert (preview, cut) == (canonical_json(redactor.redact_json(value)).decode(), False)


def test_a_value_over_the_cap_is_cut_to_exactly_the_cap_with_nothing_secret() -> None:
    value = {"content": "x" * 500_000 + f" {SECRET} " + "y" * 500_000, "password": "pw12345"}
    full = canonical_json(Redactor([SECRET]).redact_json(value)).decode()

    preview, cut = redacted_preview(value, Redactor([SECRET]), CAP)

    assert cut
    assert preview == clip(full, CAP)[0]
    assert len(preview.encode()) == CAP


def test_the_preview_stops_at_the_cap_and_never_visits_the_values_after_it() -> None:
    value = {"a": ["z" * 10] * 100_000, "b": Untouchable()}

    preview, cut = redacted_preview(value, Redactor(), CAP)

    assert cut and preview.startswith('{"a":["zzzzzzzzzz","zzzzzzzzzz"')


@pytest.mark.parametrize("offset", range(-70, 10, 7))
def test_a_known_secret_across_the_cut_shows_no_part_of_itself(offset: int) -> None:
    prefix = '{"text":"'
    filler = "f" * (CAP - len(prefix) + offset)
    value = {"text": filler + SECRET + "g" * 100_000}

    preview, cut = redacted_preview(value, Redactor([SECRET]), CAP)

    assert cut
    shown = preview[len(prefix) + len(filler) :]
    assert not any(SECRET.startswith(shown[i:]) for i in range(len(shown)) if len(shown) - i >= 4), shown


@pytest.mark.parametrize(("secret", "kind"), [(PEM, "private_key"), (JWT_BODY, "jwt")])
def test_a_key_or_token_longer_than_the_margin_across_the_cut_is_redacted(secret: str, kind: str) -> None:
    assert len(secret) > REDACTION_MARGIN
    value = {"text": "f" * (CAP - 1000) + " " + secret + " and more " + "g" * 100_000}

    preview, cut = redacted_preview(value, Redactor(), CAP)

    assert cut
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in preview
    assert "eyJzdWIiOiIxMjM0NTY3ODkwIn0" not in preview
    assert preview.endswith(f"f [REDACTED:{kind}]")


def test_a_long_text_keeps_a_redacted_prefix_of_the_cap() -> None:
    text = "line with ghp_" + "A1b2C3d4E5" * 3 + "\n" + "w" * 1_000_000

    kept, cut = redacted_text_preview(text, Redactor(), 8 * 1024)

    assert cut and kept.startswith("line with [REDACTED:github]\nwww")
    assert len(kept.encode()) <= 8 * 1024


def test_a_value_that_is_not_a_json_object_still_previews() -> None:
    preview, cut = redacted_preview(["Bearer abcdefghijklmnop", 1.5, float("inf")], Redactor(), CAP)

    assert (json.loads(preview), cut) == (["[REDACTED:bearer]", 1.5, float("inf")], False)
