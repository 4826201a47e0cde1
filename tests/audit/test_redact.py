"""Redaction of keyring values, token shapes and secret-named fields."""

from __future__ import annotations

import pytest

from approver.audit.redact import Redactor, secret_key_kind

GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" * 2
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7v1sYH2x\nq8Jm0kz9yS2Z\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        (GITHUB_TOKEN, "github"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github"),
        ("gho_" + "x" * 36, "github"),
        ("sk-proj-" + "Ab3_dE-fGh1" * 4, "openai"),
        ("sk-ant-api03-" + "Zy9xW8vU7t" * 5, "anthropic"),
        ("xoxb-123456789012-abcdefABCDEF", "slack"),
        ("AKIAIOSFODNN7EXAMPLE", "aws_access_key_id"),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe"),
        ("rk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe"),
        ("sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe"),
        ("AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "google"),
        (JWT, "jwt"),
        (PEM, "private_key"),
        ("Bearer abc.def-ghi_jkl~mno+pqr/stu==", "bearer"),
    ],
)
def test_each_token_shape_is_replaced_with_its_kind(token: str, kind: str) -> None:
    redacted = Redactor().redact_text(f"before {token} after")

    assert redacted == f"before [REDACTED:{kind}] after"


def test_a_token_shape_inside_a_longer_word_is_left_alone() -> None:
    text = "see risk-assessment-for-the-quarterly-plan and whisk-0123456789abcdefghijklmn"

    assert Redactor().redact_text(text) == text


def test_known_secret_values_are_replaced_wherever_they_occur() -> None:
    redactor = Redactor(["hunter2-password"])

    redacted = redactor.redact_text("url=https://u:hunter2-password@host/?p=hunter2-password")

    assert redacted == "url=https://u:[REDACTED:secret]@host/?p=[REDACTED:secret]"


def test_known_secrets_shorter_than_four_characters_are_ignored() -> None:
    redactor = Redactor(["abc", ""])

    assert redactor.redact_text("abcabc") == "abcabc"


def test_add_secrets_redacts_values_learned_later() -> None:
    redactor = Redactor()
    redactor.add_secrets(["s3cr3t-value"])

    assert redactor.redact_text("x s3cr3t-value y") == "x [REDACTED:secret] y"


def test_a_secret_that_contains_another_is_replaced_whole() -> None:
    redactor = Redactor(["abcd", "abcdefgh"])

    assert redactor.redact_text("abcdefgh") == "[REDACTED:secret]"


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("password", "password"),
        ("passwd", "passwd"),
        ("password_confirmation", "password"),
        ("githubToken", "token"),
        ("ACCESS_TOKEN", "token"),
        ("refresh_token", "token"),
        ("api-key", "api_key"),
        ("X-Api-Key", "api_key"),
        ("apikey", "apikey"),
        ("Authorization", "authorization"),
        ("client_secret", "secret"),
        ("privateKey", "private_key"),
        ("Set-Cookie", "cookie"),
    ],
)
def test_keys_named_like_secrets_are_recognised(key: str, kind: str) -> None:
    assert secret_key_kind(key) == kind


@pytest.mark.parametrize("key", ["max_tokens", "token_count", "tokens", "tokenizer", "secretary", "path", ""])
def test_keys_that_merely_contain_a_secret_word_are_not_secret(key: str) -> None:
    assert secret_key_kind(key) is None


def test_redact_json_replaces_secret_fields_and_walks_nested_values() -> None:
    value = {
        "query": "SELECT 1",
        "max_tokens": 100,
        "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "text/plain"},
        "items": [{"githubToken": 12345}, "Bearer abcdefghijklmnop", None, 1.5, True],
        "password": None,
    }

    redacted = Redactor().redact_json(value)

    assert redacted == {
        "query": "SELECT 1",
        "max_tokens": 100,
        "headers": {"Authorization": "[REDACTED:authorization]", "Accept": "text/plain"},
        "items": [{"githubToken": "[REDACTED:token]"}, "[REDACTED:bearer]", None, 1.5, True],
        "password": None,
    }
    assert value["headers"] == {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "text/plain"}


def test_redact_json_replaces_known_secrets_in_keys_and_values() -> None:
    redactor = Redactor(["topsecretvalue"])

    redacted = redactor.redact_json({"note": "is topsecretvalue", "topsecretvalue": 1})

    assert redacted == {"note": "is [REDACTED:secret]", "[REDACTED:secret]": 1}


def test_secrets_in_the_middle_of_a_1_mb_string_are_redacted() -> None:
    half = "lorem ipsum dolor sit amet, " * 18_000
    text = f"{half} key={GITHUB_TOKEN} pw=correct-horse-battery {half}"

    redacted = Redactor(["correct-horse-battery"]).redact_text(text)

    assert len(text) > 1_000_000
    assert GITHUB_TOKEN not in redacted
    assert "correct-horse-battery" not in redacted
    assert redacted == f"{half} key=[REDACTED:github] pw=[REDACTED:secret] {half}"


def test_a_config_diff_shows_no_secret_but_keeps_references_and_ordinary_values() -> None:
    diff = "\n".join(
        [
            '-        "GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_EXAMPLEexample0123456789EXAMPLEexam"',
            '-        "BRAVE_API_KEY": "BSAexample-not-a-real-key-0123",',
            '+        "GITHUB_PERSONAL_ACCESS_TOKEN": "${keyring:github.GITHUB_PERSONAL_ACCESS_TOKEN}"',
            '   "headers": {"Authorization": "Bearer abcdefgh12345", "X-Api-Key": "k\\"q"},',
            '   "args": ["--token", "sk-ant-EXAMPLEexampleEXAMPLEexample"], "LOG_LEVEL": "info",',
            '   "max_tokens": "100", "cwd": "/home/me/known-secret-value"',
        ]
    )
    masked = Redactor(["known-secret-value"]).redact_config(diff)
    for secret in (
        "ghp_EXAMPLE",
        "BSAexample",
        "abcdefgh12345",
        'k\\"q',
        "sk-ant-EXAMPLE",
        "known-secret-value",
    ):
        assert secret not in masked
    assert '"${keyring:github.GITHUB_PERSONAL_ACCESS_TOKEN}"' in masked
    assert '"LOG_LEVEL": "info"' in masked and '"max_tokens": "100"' in masked
    assert '"BRAVE_API_KEY": "[REDACTED:api_key]",' in masked
    assert len(masked.splitlines()) == len(diff.splitlines())


# Hostile input: each of these made a pattern rescan the rest of the text from every start (a
# minute for half a megabyte). The pytest timeout catches a return of that; what is asserted is
# that the secret after the noise is still redacted, and the noise left as it was.
HOSTILE_SIZE = 4 * 1024 * 1024


def noise(unit: str) -> str:
    return unit * (HOSTILE_SIZE // len(unit))


@pytest.mark.parametrize(
    "unit",
    [
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\n",
        "-----BEGIN A B C D E F G H ",
        "-----END PRIVATE KEY-----",
        "eyJ",
        "eyJa.",
        "eyJa.eyJ",
        "eyJa.eyJa",
        "Bearer ",
        "Bearer \t",
        "sk-",
        "sk-ant-",
        "ghp_",
        "github_pat_",
        "xoxb-",
        "AKIA",
        "sk_live_",
        "AIza",
    ],
)
def test_megabytes_of_a_tokens_start_cost_one_pass_and_a_real_token_after_them_is_redacted(unit: str) -> None:
    text = noise(unit) + f" then {GITHUB_TOKEN} and {JWT} end"

    redacted = Redactor(["s3cr3t-value"]).redact_text(text)

    assert GITHUB_TOKEN not in redacted and JWT not in redacted
    assert redacted.endswith(" then [REDACTED:github] and [REDACTED:jwt] end")


def test_a_private_key_after_megabytes_of_unclosed_begin_lines_is_redacted_with_them() -> None:
    text = noise("-----BEGIN PRIVATE KEY-----\n") + PEM + " after"

    redacted = Redactor().redact_text(text)

    # The first BEGIN opens a block that the key's END closes: all of it goes.
    assert redacted == "[REDACTED:private_key] after"


def test_a_begin_line_without_an_end_is_left_alone_unless_the_text_was_cut() -> None:
    text = "start -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B"

    assert Redactor().redact_text(text) == text
    assert Redactor().redact_text(text, cut=True) == "start [REDACTED:private_key]"


def test_a_private_key_inside_a_word_is_redacted_too() -> None:
    assert Redactor().redact_text(f"x{PEM}y") == "x[REDACTED:private_key]y"


def test_a_jwt_is_redacted_after_megabytes_of_jwt_like_runs() -> None:
    text = noise("eyJa.eyJb.") + "\n" + noise("eyJ") + f" {JWT}"

    redacted = Redactor().redact_text(text)

    assert redacted.endswith(" [REDACTED:jwt]") and JWT not in redacted
