"""Sign-in records in the keyring: what is kept, a damaged entry, and no keyring at all."""

from __future__ import annotations

import keyring.backends.fail
import pytest
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from approver.testing.harness import LockedKeyring, MemoryKeyring
from approver.upstream.oauth.store import CredentialsError, CredentialStore, SignInRecord, keyring_username

URL = "https://api.example.com/mcp"


def test_a_record_survives_the_keyring_round_trip() -> None:
    store = CredentialStore(MemoryKeyring())
    record = SignInRecord(
        client=OAuthClientInformationFull(client_id="c1", redirect_uris=["http://127.0.0.1:5000/callback"]),
        redirect_port=5000,
        wanted_scope="repo",
    ).with_tokens(
        OAuthToken(access_token="at", refresh_token="rt", expires_in=3600, scope="read"), now=1000.0
    )
    store.save(URL, record)
    loaded = store.load(URL)
    assert loaded == record
    assert loaded.expires_at == 4600.0 and loaded.redirect_port == 5000
    assert store.backend.get_password("approver", "oauth:" + URL) is not None
    assert keyring_username(URL) == "oauth:" + URL


def test_tokens_that_carry_the_wanted_scope_clear_it() -> None:
    record = SignInRecord(wanted_scope="read write")
    assert record.with_tokens(OAuthToken(access_token="a", scope="read")).wanted_scope == "read write"
    assert record.with_tokens(OAuthToken(access_token="a", scope="write read admin")).wanted_scope is None


def test_a_damaged_record_reads_as_not_signed_in() -> None:
    backend = MemoryKeyring()
    backend.set_password("approver", keyring_username(URL), "{not json")
    assert CredentialStore(backend).load(URL) == SignInRecord()


def test_without_a_keyring_the_error_says_what_to_install_and_nothing_falls_back_to_a_file() -> None:
    store = CredentialStore(keyring.backends.fail.Keyring())
    with pytest.raises(CredentialsError, match="Secret Service"):
        store.save(URL, SignInRecord())
    with pytest.raises(CredentialsError, match="keeps sign-in tokens nowhere else"):
        store.load(URL)


def test_a_locked_keyring_says_to_unlock_it() -> None:
    with pytest.raises(CredentialsError, match="locked"):
        CredentialStore(LockedKeyring()).load(URL)


def test_deleting_reports_whether_there_was_a_record() -> None:
    store = CredentialStore(MemoryKeyring())
    assert store.delete(URL) is False
    store.save(URL, SignInRecord())
    assert store.delete(URL) is True
    assert store.load(URL) == SignInRecord()
