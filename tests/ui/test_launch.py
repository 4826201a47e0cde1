"""Starting the desktop app: a port in use is offered a free one (remembered), and start-up errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import keyring.backends.fail
from PySide6.QtWidgets import QMessageBox

from approver.config.settings import load_preferences
from approver.config.tokens import TokenStore
from approver.testing.harness import write_config
from approver.ui import startup
from approver.ui.app import DesktopApp
from approver.ui.launch import DesktopOptions, run_desktop


def test_a_port_in_use_is_offered_a_free_one_which_is_used_and_remembered(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {})
    asked: list[tuple[int, str, int]] = []
    served: list[int] = []

    def choose(port: int, holder: str, other: int) -> bool:
        asked.append((port, holder, other))
        return True

    async def quit_at_once(desktop: DesktopApp) -> None:
        served.append(desktop.service.port)
        desktop.request_quit()

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        tokens = TokenStore(paths.tokens_file, backend=keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
        options = DesktopOptions(port=taken, token_store=tokens, companion=quit_at_once, choose_port=choose)
        code = run_desktop(paths, options)
    assert code == 0
    [(port, holder, other)] = asked
    assert port == taken and holder == "another program" and other != taken
    assert served == [other]
    assert load_preferences(paths.settings_file).port == other
    assert json.loads(paths.settings_file.read_text())["desktop"] == {"port": other}


def test_declining_another_port_stops_with_the_reason_and_remembers_nothing(tmp_path: Path) -> None:
    paths = write_config(tmp_path, {})
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        tokens = TokenStore(paths.tokens_file, backend=keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
        options = DesktopOptions(
            port=squatter.getsockname()[1], token_store=tokens, choose_port=lambda *_: False
        )
        assert run_desktop(paths, options) == 2
    assert not paths.settings_file.exists()


def test_the_port_box_says_who_holds_the_port_and_offers_the_free_one(qtbot: object) -> None:
    box = startup.port_box(39217, "another approver, one with another data directory", 39218)
    assert "is used by another approver, one with another data directory" in box.text()
    assert box.defaultButton().text() == "Use port 39218"
    assert box.buttonRole(box.defaultButton()) is QMessageBox.ButtonRole.AcceptRole
    assert "--port" not in box.text()


def test_a_config_error_box_offers_to_open_the_file(qtbot: object, tmp_path: Path) -> None:
    file = tmp_path / "servers.json"
    box = startup.error_box(f"{file}: /mcpServers/a: unknown key `comand` — did you mean `command`?", file)
    texts = [button.text() for button in box.buttons()]
    assert startup.OPEN_FILE in texts
    assert "did you mean `command`?" in box.text()
    plain = startup.error_box("no display")
    assert startup.OPEN_FILE not in [button.text() for button in plain.buttons()]
