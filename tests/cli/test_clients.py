"""``approver import|install|uninstall`` on the command line, and end to end through the bridge."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import keyring
import keyring.backends.fail
import mcp.types as types
import pytest
from keyring.backend import KeyringBackend
from mcp import ClientSession, StdioServerParameters, stdio_client

from approver.cli.main import main
from approver.config.paths import Paths
from approver.config.servers import KEYRING_SERVICE
from approver.testing.harness import MemoryKeyring, running_service

DATA = Path(__file__).parent.parent / "data" / "clients"


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "config", tmp_path / "data")


def approver(paths: Paths, *args: str) -> int:
    return main(["--config-dir", str(paths.config_dir), "--data-dir", str(paths.data_dir), *args])


def test_a_dry_run_prints_the_diff_and_writes_nothing(
    paths: Paths, tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "claude_desktop_config.json"
    shutil.copy(DATA / "claude_desktop_config.json", config)

    assert approver(paths, "import", "claude-desktop", "--path", str(config), "--dry-run") == 0
    out = capsys.readouterr().out
    assert '+        "GITHUB_PERSONAL_ACCESS_TOKEN": "${keyring:github.GITHUB_PERSONAL_ACCESS_TOKEN}"' in out
    assert "would add: filesystem, github, brave-search, pricing" in out
    assert "moves into the keyring as github.GITHUB_PERSONAL_ACCESS_TOKEN" in out
    assert "ghp_" not in out
    assert not paths.servers_file.exists() and memory_keyring.passwords == {}

    assert approver(paths, "install", "claude-desktop", "--path", str(config), "--dry-run") == 0
    out = capsys.readouterr()
    assert '-    "filesystem": {' in out.out and "approver import claude-desktop" in out.err
    assert config.read_bytes() == (DATA / "claude_desktop_config.json").read_bytes()


def test_without_a_terminal_or_yes_nothing_is_written(
    paths: Paths, tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mcp.json"
    shutil.copy(DATA / "cursor_mcp.json", config)
    assert approver(paths, "import", "cursor", "--path", str(config)) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert not paths.servers_file.exists()


def test_import_install_and_uninstall_with_yes(
    paths: Paths, tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mcp_config.json"
    shutil.copy(DATA / "windsurf_mcp_config.json", config)
    original = config.read_bytes()

    assert approver(paths, "import", "windsurf", "--path", str(config), "--yes") == 0
    assert set(json.loads(paths.servers_file.read_text())["mcpServers"]) == {"github", "userjot", "figma"}
    assert memory_keyring.passwords[(KEYRING_SERVICE, "github.GITHUB_PERSONAL_ACCESS_TOKEN")].startswith(
        "github_pat_"
    )

    assert approver(paths, "install", "windsurf", "--path", str(config), "--yes") == 0
    entry = json.loads(config.read_text())["mcpServers"]["approver"]
    assert entry["args"][-4:] == [str(paths.data_dir), "connect", "--client", "windsurf"]
    assert approver(paths, "install", "windsurf", "--path", str(config), "--yes") == 0
    assert "nothing to change" in capsys.readouterr().out

    assert approver(paths, "uninstall", "windsurf", "--path", str(config), "--yes") == 0
    assert config.read_bytes() == original
    assert approver(paths, "uninstall", "windsurf", "--path", str(config), "--yes") == 0
    assert "nothing to restore" in capsys.readouterr().out


def test_install_over_http_masks_the_token_in_the_diff(
    paths: Paths, tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / ".cursor" / "mcp.json"
    assert approver(paths, "install", "cursor", "--path", str(config), "--http", "--yes") == 0
    token = memory_keyring.passwords[(KEYRING_SERVICE, "client-token:cursor")]
    out = capsys.readouterr().out
    assert token not in out and "Bearer <token>" in out
    entry = json.loads(config.read_text())["mcpServers"]["approver"]
    assert entry["headers"] == {"Authorization": f"Bearer {token}"}


def test_an_unknown_client_is_a_clear_error(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        approver(paths, "import", "zed")
    assert "invalid choice: 'zed'" in capsys.readouterr().err


def test_a_locked_keyring_during_import_says_so_and_writes_nothing(
    paths: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from approver.testing.harness import LockedKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    try:
        code = approver(
            paths, "import", "claude-desktop", "--path", str(DATA / "claude_desktop_config.json"), "--yes"
        )
    finally:
        keyring.set_keyring(previous)
    assert code == 2
    assert "locked" in capsys.readouterr().err
    assert not paths.servers_file.exists()


# -- end to end --------------------------------------------------------------------------------

CLAUDE_DESKTOP = """{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "notes": {
      "command": %s,
      "args": [
        "-m",
        "approver.testing.server",
        "--name",
        "notes"
      ],
      "env": {
        "NOTES_LOG_LEVEL": "debug"
      }
    }
  },
  "preferences": {
    "menuBarEnabled": false
  }
}
"""


def use_keyring(backend: KeyringBackend) -> KeyringBackend:
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    return previous


@pytest.mark.anyio
async def test_import_install_then_the_client_calls_a_tool_through_the_bridge_and_uninstall_restores(
    paths: Paths, tmp_path: Path
) -> None:
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    config.parent.mkdir()
    config.write_text(CLAUDE_DESKTOP % json.dumps(sys.executable), "utf-8")
    original = config.read_bytes()
    # No keyring here: the gateway and the bridge subprocess find client tokens in tokens.json.
    previous = use_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        assert approver(paths, "import", "claude-desktop", "--path", str(config), "--yes") == 0
        assert approver(paths, "install", "claude-desktop", "--path", str(config), "--yes") == 0
    finally:
        keyring.set_keyring(previous)
    entry = json.loads(config.read_text())["mcpServers"]["approver"]
    assert entry["args"][-3:] == ["connect", "--client", "claude-desktop"]
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    paths.policy_file.write_text('{"version": "1", "default": "allow"}', "utf-8")

    async with running_service(paths, keyring_backend=keyring.backends.fail.Keyring()) as service:  # type: ignore[no-untyped-call]
        with anyio.fail_after(40), (tmp_path / "bridge.log").open("w") as errlog:
            params = StdioServerParameters(command=entry["command"], args=entry["args"], env=env)
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                result = await session.call_tool("notes__echo", {"text": "through approver"})
        assert isinstance(result.content[0], types.TextContent)
        assert result.content[0].text == "through approver" and not result.is_error
        assert "claude-desktop" in service.tokens.clients()

    assert approver(paths, "uninstall", "claude-desktop", "--path", str(config), "--yes") == 0
    assert config.read_bytes() == original


def test_every_printed_diff_masks_the_literal_secrets_of_the_clients_file(
    paths: Paths, tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "claude_desktop_config.json"
    shutil.copy(DATA / "claude_desktop_config.json", config)
    assert approver(paths, "install", "claude-desktop", "--path", str(config), "--force", "--yes") == 0
    installed = capsys.readouterr().out
    assert approver(paths, "uninstall", "claude-desktop", "--path", str(config), "--dry-run") == 0
    restoring = capsys.readouterr().out
    for out in (installed, restoring):
        assert "ghp_EXAMPLE" not in out and "BSAexample" not in out
        assert '"GITHUB_PERSONAL_ACCESS_TOKEN": "[REDACTED:token]"' in out
    assert '+        "BRAVE_API_KEY": "[REDACTED:api_key]"' in restoring
