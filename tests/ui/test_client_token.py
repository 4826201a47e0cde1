"""The Connect window's token panel: rotate and revoke act on the running gateway at once; patience."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx2
from PySide6.QtWidgets import QLineEdit

from approver.config.patience import DEFAULT_PATIENCE, Patience
from approver.config.tokens import TokenStore
from approver.service import client_url
from approver.testing.harness import (
    MemoryKeyring,
    legacy_client,
    running_service,
    upstream_entry,
    write_config,
)
from approver.ui.connect import ConnectWindow

BRIDGE = [sys.executable, "-m", "approver"]


async def status_of(url: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx2.AsyncClient() as http:
        response = await http.post(url, json=body, headers={"accept": "application/json, text/event-stream"})
        return response.status_code


def test_rotate_shows_the_new_url_and_the_running_gateway_refuses_the_old_one_at_once(
    qtbot: Any, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    paths = write_config(tmp_path, {"alpha": upstream_entry("alpha")})

    async def body() -> None:
        async with running_service(paths) as service:
            service.tokens.get_or_create("default")  # opening the window creates none
            window = ConnectWindow(service.tokens, service.port, BRIDGE, patience=service.patience)
            qtbot.addWidget(window)
            window.show()
            old = service.tokens.get("default")
            assert old is not None
            window.token_panel.rotate_button.click()
            new = service.tokens.get("default")
            assert new is not None and new != old
            window.show_token.setChecked(True)
            shown = window.findChild(QLineEdit, "url_with_token")
            assert shown is not None and shown.text() == client_url(service.port, new)
            assert await status_of(client_url(service.port, old)) == 401
            async with legacy_client(client_url(service.port, new), None) as session:
                assert "alpha__echo" in [tool.name for tool in (await session.list_tools()).tools]

            window.token_panel.revoke_button.click()
            assert service.tokens.get("default") == new, "revoking asks once more"
            assert window.token_panel.confirm_revoke.isVisible()
            window.token_panel.confirm_revoke.click()
            assert service.tokens.get("default") is None
            assert await status_of(client_url(service.port, new)) == 401
            assert window.settings is None
            assert not window.token_panel.rotate_button.isEnabled()

    qloop.run_until_complete(asyncio.wait_for(body(), 60))


def test_the_patience_is_saved_for_the_shown_client_and_default_removes_it(
    qtbot: Any, tmp_path: Path
) -> None:
    tokens = TokenStore(tmp_path / "tokens.json", backend=MemoryKeyring())
    patience = Patience(tmp_path / "settings.json")
    tokens.get_or_create("default")  # opening the window creates none
    window = ConnectWindow(tokens, 39999, BRIDGE, patience=patience)
    qtbot.addWidget(window)
    panel = window.token_panel
    assert panel.patience.value() == DEFAULT_PATIENCE

    panel.patience.setValue(0)
    panel.save_patience.click()
    assert patience.for_client("default") is None
    written = json.loads((tmp_path / "settings.json").read_text("utf-8"))
    assert written.pop("$schema").endswith("settings.schema.json")
    assert written == {"clients": {"default": {"patience": 0}}}
    assert "uses its own patience" in panel.note.text()

    panel.default_patience.click()
    assert patience.for_client("default") == DEFAULT_PATIENCE
    assert panel.patience.value() == DEFAULT_PATIENCE
