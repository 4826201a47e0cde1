"""The Connect a client window's Install / Uninstall panel, offscreen, on files under tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keyring.backends.fail
from pytestqt.qtbot import QtBot

from approver.clients.formats import ClientFormat
from approver.clients.routing import record_file
from approver.clients.setup import Installer
from approver.config.paths import Paths
from approver.config.secrets import SecretStore
from approver.config.tokens import TokenStore
from approver.testing.harness import MemoryKeyring
from approver.ui.connect import ConnectWindow

DATA = Path(__file__).parent.parent / "data" / "clients"
BRIDGE = ["/opt/approver/bin/approver"]


def window_for(
    qtbot: QtBot, tmp_path: Path, servers: list[str], secrets: SecretStore | None = None
) -> tuple[ConnectWindow, Path]:
    config = tmp_path / "home" / "Claude" / "claude_desktop_config.json"
    config.parent.mkdir(parents=True)
    shutil.copy(DATA / "claude_desktop_config.json", config)
    servers_file = tmp_path / "servers.json"
    entries = {name: {"command": "npx"} for name in servers}
    servers_file.write_text(json.dumps({"mcpServers": entries}), "utf-8")

    def locate(client: ClientFormat) -> Path:
        if client.name == "claude-desktop":
            return config
        return tmp_path / "home" / client.name / "mcp.json"

    tokens = TokenStore(tmp_path / "tokens.json", backend=keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    installer = Installer(servers_file, tuple(BRIDGE), tmp_path / "data", locate, secrets, tmp_path / "home")
    window = ConnectWindow(tokens, 39999, BRIDGE, installer=installer)
    qtbot.addWidget(window)
    return window, config


def test_install_shows_the_diff_and_writes_only_after_confirm_then_uninstall_restores(
    qtbot: QtBot, tmp_path: Path
) -> None:
    known = ["filesystem", "github", "brave-search", "pricing"]
    window, config = window_for(qtbot, tmp_path, known)
    panel = window.install_panel
    assert panel is not None
    original = config.read_bytes()
    assert panel.client.name == "claude-desktop"
    assert "bypassing approver" in panel.status_label.text()
    assert "approver install" not in panel.status_label.text()
    assert not panel.confirm_button.isEnabled() and not panel.uninstall_button.isEnabled()

    panel.install_button.click()
    diff = panel.diff_view.toPlainText()
    assert panel.diff_view.isReadOnly()
    assert '-    "filesystem": {' in diff and '+    "approver": {' in diff
    assert config.read_bytes() == original  # nothing written yet
    assert panel.confirm_button.isEnabled() and panel.confirm_button.text() == "Install"

    panel.confirm_button.click()
    assert list(json.loads(config.read_text())["mcpServers"]) == ["approver"]
    assert "reaches its servers only through approver" in panel.status_label.text()
    assert panel.uninstall_button.isEnabled() and "original is saved as" in panel.message.text()

    panel.uninstall_button.click()
    assert '+    "filesystem": {' in panel.diff_view.toPlainText()
    panel.confirm_button.click()
    assert config.read_bytes() == original and not record_file(config).exists()


def test_cancel_writes_nothing_and_unknown_servers_are_named_before_confirming(
    qtbot: QtBot, tmp_path: Path
) -> None:
    window, config = window_for(qtbot, tmp_path, ["filesystem"])
    panel = window.install_panel
    assert panel is not None
    original = config.read_bytes()

    panel.install_button.click()
    assert "lacks github, brave-search, pricing" in panel.message.text()
    assert not panel.confirm_button.isEnabled() and not panel.drop_unknown.isHidden()
    panel.cancel_button.click()
    assert config.read_bytes() == original and panel.diff_view.toPlainText() == ""
    assert not panel.confirm_button.isEnabled() and panel.message.text() == "Nothing was changed."


def test_a_broken_client_file_is_reported_in_the_panel_not_raised(qtbot: QtBot, tmp_path: Path) -> None:
    window, _ = window_for(qtbot, tmp_path, [])
    panel = window.install_panel
    assert panel is not None
    broken = tmp_path / "home" / "cursor" / "mcp.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{ not json")
    panel.client_box.setCurrentIndex(panel.client_box.findData("cursor"))

    assert "not valid JSON" in panel.status_label.text()
    panel.install_button.click()
    assert "not valid JSON" in panel.message.text() and not panel.confirm_button.isEnabled()


def test_import_shows_a_masked_diff_then_install_is_free_to_go(qtbot: QtBot, tmp_path: Path) -> None:
    keyring_backend = MemoryKeyring()
    store = SecretStore(Paths(tmp_path, tmp_path / "data"), keyring_backend)
    window, config = window_for(qtbot, tmp_path, ["filesystem"], store)
    panel = window.install_panel
    assert panel is not None
    servers_before = (tmp_path / "servers.json").read_bytes()
    assert panel.import_button.isEnabled()
    assert "Import… copies github, brave-search, pricing into approver" in panel.status_label.text()

    panel.import_button.click()
    diff = panel.diff_view.toPlainText()
    assert '+    "github": {' in diff and "ghp_" not in diff and "BSAexample" not in diff
    assert (tmp_path / "servers.json").read_bytes() == servers_before  # nothing written yet
    assert panel.confirm_button.text() == "Import" and panel.confirm_button.isEnabled()
    assert "moves into the keyring as github.GITHUB_PERSONAL_ACCESS_TOKEN" in panel.message.text()

    with qtbot.waitSignal(panel.imported):
        panel.confirm_button.click()
    imported = json.loads((tmp_path / "servers.json").read_text())["mcpServers"]
    assert set(imported) == {"filesystem", "github", "brave-search", "pricing"}
    assert ("approver", "github.GITHUB_PERSONAL_ACCESS_TOKEN") in keyring_backend.passwords
    assert "approver starts them now" in panel.message.text()
    assert not panel.import_button.isEnabled()

    panel.install_button.click()
    assert panel.confirm_button.isEnabled() and panel.drop_unknown.isHidden()
    assert "ghp_" not in panel.diff_view.toPlainText()  # the removed lines held the literal token
    assert '-        "GITHUB_PERSONAL_ACCESS_TOKEN": "[REDACTED:token]"' in panel.diff_view.toPlainText()
    panel.confirm_button.click()
    assert list(json.loads(config.read_text())["mcpServers"]) == ["approver"]


def test_install_drops_unknown_servers_only_when_ticked(qtbot: QtBot, tmp_path: Path) -> None:
    window, config = window_for(qtbot, tmp_path, ["filesystem"])
    panel = window.install_panel
    assert panel is not None
    panel.install_button.click()
    assert not panel.confirm_button.isEnabled()
    assert "drop github, brave-search, pricing from Claude Desktop" in panel.drop_unknown.text()
    panel.drop_unknown.setChecked(True)
    assert panel.confirm_button.isEnabled()
    panel.confirm_button.click()
    assert list(json.loads(config.read_text())["mcpServers"]) == ["approver"]


def test_claude_codes_hook_is_installed_from_the_panel_after_its_diff_and_removed_again(
    qtbot: QtBot, tmp_path: Path
) -> None:
    window, _ = window_for(qtbot, tmp_path, [])
    panel = window.install_panel
    assert panel is not None
    assert not panel.hook_box.isVisibleTo(panel)
    panel.client_box.setCurrentIndex(panel.client_box.findData("claude-code"))
    assert panel.hook_box.isVisibleTo(panel)
    settings = tmp_path / "home" / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    original = b'{"model": "opus"}\n'
    settings.write_bytes(original)
    panel.refresh()
    assert "Install hook… adds approver's hook" in panel.hook_status.text()
    assert not panel.hook_uninstall_button.isEnabled()

    panel.hook_install_button.click()
    assert (
        '"PreToolUse"' in panel.diff_view.toPlainText()
        and "hook claude-code" in panel.diff_view.toPlainText()
    )
    assert settings.read_bytes() == original
    assert panel.confirm_button.text() == "Install the hook"
    panel.confirm_button.click()
    assert json.loads(settings.read_text())["hooks"]["PreToolUse"][0]["matcher"] == "*"
    assert "approver's hook is in" in panel.hook_status.text()

    panel.hook_uninstall_button.click()
    panel.confirm_button.click()
    assert settings.read_bytes() == original
