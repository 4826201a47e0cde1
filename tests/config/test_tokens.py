"""Client tokens: in the keyring when there is one, else in a 0600 file, and said so plainly."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import keyring.backends.fail
import keyring.errors
import pytest
from keyring.backend import KeyringBackend

from approver.config.tokens import TokenStore
from approver.errors import ConfigError
from approver.testing.harness import LockedKeyring, MemoryKeyring


def _no_keyring() -> KeyringBackend:
    """The backend keyring picks when no real one is available."""
    return keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_tokens_go_to_the_keyring_and_the_file_lists_only_names(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    store = TokenStore(tmp_path / "tokens.json", backend)
    token = store.get_or_create("claude")
    assert backend.passwords == {("approver", "client-token:claude"): token}
    text = (tmp_path / "tokens.json").read_text()
    assert token not in text
    assert json.loads(text)["clients"] == {"claude": {"storage": "keyring"}}
    assert store.storage_note.startswith("Client tokens are stored in the system keyring (")
    assert "MemoryKeyring" in store.storage_note


def test_get_or_create_returns_the_same_token_each_time_and_new_ones_per_client(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json", MemoryKeyring())
    first = store.get_or_create("claude")
    assert store.get_or_create("claude") == first
    assert store.get_or_create("cursor") != first
    assert len(first) >= 43
    assert store.clients() == ["claude", "cursor"]


def test_a_new_store_finds_the_tokens_again(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    token = TokenStore(tmp_path / "tokens.json", backend).get_or_create("claude")
    again = TokenStore(tmp_path / "tokens.json", backend)
    assert again.get("claude") == token
    assert again.get("cursor") is None


def test_authenticate_names_the_client_of_a_known_token_only(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json", MemoryKeyring())
    claude = store.get_or_create("claude")
    cursor = store.get_or_create("cursor")
    assert store.authenticate(claude) == "claude"
    assert store.authenticate(cursor) == "cursor"
    assert store.authenticate(claude[:-1]) is None
    assert store.authenticate("") is None
    assert store.authenticate("ünïcode") is None


def test_a_client_added_by_another_process_can_authenticate_without_a_restart(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    gateway = TokenStore(tmp_path / "tokens.json", backend)
    token = TokenStore(tmp_path / "tokens.json", backend).get_or_create("cli-added")
    assert gateway.authenticate(token) == "cli-added"


def test_without_a_keyring_tokens_are_stored_in_a_file_only_the_owner_can_read(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = TokenStore(path, _no_keyring())
    token = store.get_or_create("claude")
    assert _mode(path) == 0o600
    assert json.loads(path.read_text())["clients"]["claude"] == {"storage": "file", "token": token}
    assert store.storage_note == (
        f"No system keyring is available; client tokens are stored in {path} (readable only by you)."
    )
    assert TokenStore(path, _no_keyring()).authenticate(token) == "claude"


def test_a_keyring_that_refuses_to_store_falls_back_to_the_file(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json", LockedKeyring())
    token = store.get_or_create("claude")
    assert json.loads((tmp_path / "tokens.json").read_text())["clients"]["claude"]["token"] == token
    assert store.storage_note.startswith("The system keyring is locked, so client tokens created now")
    assert "unlock the keyring" in store.storage_note


def test_a_token_file_made_readable_by_others_is_tightened_on_load(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    TokenStore(path, _no_keyring()).get_or_create("claude")
    path.chmod(0o644)
    TokenStore(path, _no_keyring())
    assert _mode(path) == 0o600


def test_tokens_in_a_keyring_that_is_gone_cannot_authenticate_and_are_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = TokenStore(path, MemoryKeyring()).get_or_create("claude")
    store = TokenStore(path, _no_keyring())
    assert store.authenticate(token) is None
    assert "no keyring backend is available" in store.problems["claude"]
    with pytest.raises(ConfigError, match="no keyring backend"):
        store.get_or_create("claude")


@pytest.mark.parametrize("name", ["", "has space", "a/b", "x" * 65])
def test_invalid_client_names_are_rejected_with_the_rule(tmp_path: Path, name: str) -> None:
    store = TokenStore(tmp_path / "tokens.json", MemoryKeyring())
    with pytest.raises(ValueError, match="use 1-64 letters, digits"):
        store.get_or_create(name)
    assert not (tmp_path / "tokens.json").exists()


def test_revoking_a_client_removes_its_token_everywhere(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    store = TokenStore(tmp_path / "tokens.json", backend)
    token = store.get_or_create("claude")
    assert store.revoke("claude")
    assert not store.revoke("claude")
    assert backend.passwords == {}
    assert store.authenticate(token) is None
    assert store.clients() == []


def test_a_corrupt_token_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text('{"clients": {"claude": {"token": 5}}}')
    with pytest.raises(ConfigError) as info:
        TokenStore(path, MemoryKeyring())
    assert info.value.file == str(path)
    assert info.value.pointer == "/clients/claude"


def test_rotate_gives_a_new_token_and_the_old_one_stops_working(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    store = TokenStore(tmp_path / "tokens.json", backend)
    old = store.get_or_create("cursor")

    new = store.rotate("cursor")

    assert new != old and len(new) >= 43
    assert store.authenticate(old) is None
    assert store.authenticate(new) == "cursor"
    assert backend.passwords[("approver", "client-token:cursor")] == new


def test_rotating_a_client_without_a_token_is_an_error(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json", MemoryKeyring())
    with pytest.raises(ConfigError, match="no client named 'ghost' has a token"):
        store.rotate("ghost")
    assert store.clients() == []


@pytest.mark.parametrize("backend", [MemoryKeyring, _no_keyring], ids=["keyring", "file"])
def test_a_token_revoked_or_rotated_by_another_process_is_refused_at_the_next_request(
    tmp_path: Path, backend: type[KeyringBackend]
) -> None:
    shared = backend()
    gateway = TokenStore(tmp_path / "tokens.json", shared)
    cursor, claude = gateway.get_or_create("cursor"), gateway.get_or_create("claude")
    assert gateway.authenticate(cursor) == "cursor"

    command_line = TokenStore(tmp_path / "tokens.json", shared)
    assert command_line.revoke("cursor")
    assert gateway.authenticate(cursor) is None

    fresh = TokenStore(tmp_path / "tokens.json", shared).rotate("claude")
    assert gateway.authenticate(claude) is None
    assert gateway.authenticate(fresh) == "claude"


def test_a_store_kept_in_its_file_on_purpose_says_why_and_never_that_no_keyring_exists(
    tmp_path: Path,
) -> None:
    store = TokenStore(
        tmp_path / "tokens.json", backend=MemoryKeyring(), file_only="the demo keeps it in its sandbox"
    )
    token = store.get_or_create("demo-agent")
    assert json.loads((tmp_path / "tokens.json").read_text())["clients"]["demo-agent"]["token"] == token
    assert store.storage_note.endswith("(readable only by you): the demo keeps it in its sandbox.")
    assert "keyring is available" not in store.storage_note
