"""``approver secret``: keyring secrets for ${keyring:NAME}, run as the real command line."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from approver.cli.main import main
from approver.config.paths import Paths
from approver.config.secrets import SecretsError, SecretStore, keyring_references
from approver.config.servers import KEYRING_SERVICE
from approver.config.tokens import TokenStore, keyring_username
from approver.testing.file_keyring import FILE_ENV, FileKeyring
from approver.testing.harness import LockedKeyring, MemoryKeyring

TIMEOUT = 60
FILE_KEYRING = "approver.testing.file_keyring.FileKeyring"
LOCKED = "approver.testing.harness.LockedKeyring"
NO_KEYRING = "keyring.backends.fail.Keyring"


def approver(
    tmp_path: Path, *args: str, backend: str = FILE_KEYRING, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``approver`` in a new process (for the keyring backends chosen by name)."""
    env = dict(os.environ, PYTHON_KEYRING_BACKEND=backend, **{FILE_ENV: str(tmp_path / "keyring.json")})
    dirs = ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [sys.executable, "-m", "approver", *dirs, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


@dataclass
class Cli:
    """``cli.main`` in this process, on a file keyring that subprocesses can share."""

    tmp_path: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        dirs = ["--config-dir", str(self.tmp_path / "config"), "--data-dir", str(self.tmp_path / "data")]
        status = main([*dirs, *args])
        out, err = self.capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out, err)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.setenv(FILE_ENV, str(tmp_path / "keyring.json"))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        yield Cli(tmp_path, capsys, monkeypatch)
    finally:
        keyring.set_keyring(previous)


def stored(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "keyring.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_servers(tmp_path: Path, servers: dict[str, object]) -> None:
    config = tmp_path / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "servers.json").write_text(json.dumps({"mcpServers": servers}))


def test_a_secret_set_from_stdin_is_read_back_by_get_and_kept_out_of_the_index(
    tmp_path: Path, cli: Cli
) -> None:
    result = cli("secret", "set", "github", "--stdin", stdin="ghp_abc123\n")
    assert result.returncode == 0, result.stderr
    assert "stored secret 'github'" in result.stdout
    assert stored(tmp_path) == {f"{KEYRING_SERVICE}\x00github": "ghp_abc123"}
    got = cli("secret", "get", "github")
    assert (got.returncode, got.stdout) == (0, "ghp_abc123\n")
    index = tmp_path / "config" / "secret-names.json"
    assert json.loads(index.read_text())["names"] == ["github"]
    assert "ghp_abc123" not in index.read_text()
    assert stat.S_IMODE(index.stat().st_mode) == 0o600


def test_setting_a_secret_again_replaces_it_and_says_so(tmp_path: Path, cli: Cli) -> None:
    cli("secret", "set", "api", "--stdin", stdin="one")
    again = cli("secret", "set", "api", "--stdin", stdin="two\r\n")
    assert again.returncode == 0 and "replaced secret 'api'" in again.stdout
    assert stored(tmp_path)[f"{KEYRING_SERVICE}\x00api"] == "two"


def test_list_shows_stored_and_missing_secrets_and_the_servers_using_them(tmp_path: Path, cli: Cli) -> None:
    write_servers(
        tmp_path,
        {
            "gh": {"type": "http", "url": "https://x/mcp", "headers": {"A": "Bearer ${keyring:github}"}},
            "db": {
                "command": "db",
                "args": ["--pw", "${keyring:db-pass}", "$${keyring:literal}"],
                "disabled": True,
            },
        },
    )
    cli("secret", "set", "github", "--stdin", stdin="v1")
    cli("secret", "set", "spare", "--stdin", stdin="v2")
    listing = cli("secret", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout) == [
        {"name": "db-pass", "stored": False, "servers": ["db"]},
        {"name": "github", "stored": True, "servers": ["gh"]},
        {"name": "spare", "stored": True, "servers": []},
    ]
    text = cli("secret", "list").stdout.splitlines()
    assert text[0].split() == ["db-pass", "MISSING", "used", "by", "db"]
    assert text[2].split() == ["spare", "stored", "not", "referenced"]


def test_a_referenced_secret_is_deleted_only_with_force(tmp_path: Path, cli: Cli) -> None:
    write_servers(tmp_path, {"gh": {"command": "x", "env": {"T": "${keyring:github}"}}})
    cli("secret", "set", "github", "--stdin", stdin="v1")
    refused = cli("secret", "delete", "github")
    assert refused.returncode == 1
    assert "used by gh" in refused.stderr and "--force" in refused.stderr
    assert stored(tmp_path) == {f"{KEYRING_SERVICE}\x00github": "v1"}
    forced = cli("secret", "delete", "github", "--force")
    assert forced.returncode == 0 and "deleted secret 'github'" in forced.stdout
    assert stored(tmp_path) == {}
    gone = cli("secret", "get", "github")
    assert gone.returncode == 1 and "approver secret set github" in gone.stderr


def test_an_unreferenced_secret_is_deleted_and_leaves_the_index(tmp_path: Path, cli: Cli) -> None:
    cli("secret", "set", "old", "--stdin", stdin="v")
    assert cli("secret", "delete", "old").returncode == 0
    assert json.loads((tmp_path / "config" / "secret-names.json").read_text())["names"] == []
    again = cli("secret", "delete", "old")
    assert again.returncode == 1 and "no secret 'old' was stored" in again.stderr


def test_get_on_a_terminal_needs_show_so_a_secret_is_not_printed_by_accident(tmp_path: Path) -> None:
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(json.dumps({f"{KEYRING_SERVICE}\x00github": "ghp_abc123"}))
    output, status = run_on_terminal(tmp_path, ["secret", "get", "github"], answers=[])
    assert status == 1
    assert "--show" in output and "ghp_abc123" not in output
    output, status = run_on_terminal(tmp_path, ["secret", "get", "github", "--show"], answers=[])
    assert status == 0 and "ghp_abc123" in output


def test_set_on_a_terminal_asks_twice_without_echo(tmp_path: Path) -> None:
    output, status = run_on_terminal(
        tmp_path, ["secret", "set", "github"], answers=[("Value", "s3cret-value"), ("Again", "s3cret-value")]
    )
    assert status == 0, output
    assert "s3cret-value" not in output  # the prompt did not echo what was typed
    assert stored(tmp_path) == {f"{KEYRING_SERVICE}\x00github": "s3cret-value"}


def test_set_on_a_terminal_stores_nothing_when_the_two_values_differ(tmp_path: Path) -> None:
    output, status = run_on_terminal(
        tmp_path, ["secret", "set", "github"], answers=[("Value", "first"), ("Again", "second")]
    )
    assert status == 1 and "differ" in output
    assert stored(tmp_path) == {}


def test_set_without_a_terminal_or_stdin_flag_refuses_instead_of_reading_a_pipe(
    tmp_path: Path, cli: Cli
) -> None:
    result = cli("secret", "set", "github", stdin="piped")
    assert result.returncode == 1 and "--stdin" in result.stderr
    assert stored(tmp_path) == {}


def test_a_value_is_never_accepted_on_the_command_line(tmp_path: Path) -> None:
    result = approver(tmp_path, "secret", "set", "github", "ghp_abc123")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr
    assert stored(tmp_path) == {}


def test_without_a_keyring_set_says_how_to_get_one_and_writes_nothing(tmp_path: Path) -> None:
    result = approver(tmp_path, "secret", "set", "github", "--stdin", stdin="ghp_abc123", backend=NO_KEYRING)
    assert result.returncode == 2
    assert "gnome-keyring" in result.stderr and "${env:NAME}" in result.stderr
    assert "Traceback" not in result.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all("ghp_abc123" not in p.read_text(errors="replace") for p in files)


def test_a_locked_keyring_is_reported_with_what_to_do(tmp_path: Path) -> None:
    result = approver(tmp_path, "secret", "set", "github", "--stdin", stdin="v", backend=LOCKED)
    assert result.returncode == 2
    assert "locked" in result.stderr and "unlock" in result.stderr and "Traceback" not in result.stderr
    write_servers(tmp_path, {"gh": {"command": "x", "env": {"T": "${keyring:github}"}}})
    listing = approver(tmp_path, "secret", "list", backend=LOCKED)
    assert listing.returncode == 0
    assert listing.stdout.split() == ["github", "unknown", "used", "by", "gh"]
    assert "locked" in listing.stderr


def test_invalid_and_reserved_names_are_refused(tmp_path: Path, cli: Cli) -> None:
    bad = cli("secret", "set", "has space", "--stdin", stdin="v")
    assert bad.returncode == 2 and "1-64 letters" in bad.stderr
    token = cli("secret", "get", keyring_username("cursor"))
    assert token.returncode == 2 and "not valid" in token.stderr


def test_client_tokens_in_the_same_keyring_service_cannot_be_clobbered(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    paths = Paths(tmp_path / "config", tmp_path / "data")
    paths.ensure()
    token = TokenStore(paths.tokens_file, backend=backend).get_or_create("cursor")
    store = SecretStore(paths, backend)
    for name in (keyring_username("cursor"), "client-token:", "client-token:cursor"):
        with pytest.raises(SecretsError):
            store.save(name, "overwritten")
    store.save("client-token", "a plain name is fine")
    assert backend.get_password(KEYRING_SERVICE, keyring_username("cursor")) == token
    assert [s.name for s in store.listing().secrets] == ["client-token"]


def test_the_store_reports_a_keyring_that_drops_values() -> None:
    class Forgetful(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            pass

    with pytest.raises(SecretsError, match="did not keep"):
        SecretStore(Paths(Path("/nonexistent/c"), Path("/nonexistent/d")), Forgetful()).save("x", "v")


def test_no_backend_and_locked_backend_are_told_apart(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "c", tmp_path / "d")
    with pytest.raises(SecretsError, match="no system keyring"):
        SecretStore(paths, keyring.backends.fail.Keyring()).get("x")  # type: ignore[no-untyped-call]
    with pytest.raises(SecretsError, match="locked"):
        SecretStore(paths, LockedKeyring()).get("x")


def test_references_are_found_in_every_field_that_may_hold_them_and_literals_are_skipped() -> None:
    data = {
        "mcpServers": {
            "a": {"command": "${keyring:c}", "args": ["${keyring:a1}x${keyring:a2}"], "cwd": "${keyring:w}"},
            "b": {"type": "http", "url": "https://h/${keyring:u}", "headers": {"H": "${keyring:a1}"}},
            "c": {"command": "x", "env": {"E": "$${keyring:not-a-ref}"}, "description": "${keyring:no}"},
        }
    }
    assert keyring_references(data) == {
        "a1": ("a", "b"),
        "a2": ("a",),
        "c": ("a",),
        "u": ("b",),
        "w": ("a",),
    }


# -- a real terminal --------------------------------------------------------------------------------


def run_on_terminal(tmp_path: Path, args: list[str], answers: list[tuple[str, str]]) -> tuple[str, int]:
    """Run approver with a pseudo-terminal as its controlling terminal; answer prompts as they appear."""
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHON_KEYRING_BACKEND=FILE_KEYRING, **{FILE_ENV: str(tmp_path / "keyring.json")})
    dirs = ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data")]
    process = subprocess.Popen(
        [sys.executable, "-m", "approver", *dirs, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,  # a new session whose controlling terminal becomes the pty
        preexec_fn=_take_terminal,  # makes the pty the controlling terminal
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + TIMEOUT
    pending = list(answers)
    try:
        while True:
            if pending and pending[0][0].encode() in output:
                os.write(master, pending.pop(0)[1].encode() + b"\n")
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no exit within {TIMEOUT} s: {output!r}"
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(master)
    return output.decode(errors="replace"), process.wait(timeout=TIMEOUT)


def _take_terminal() -> None:
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
