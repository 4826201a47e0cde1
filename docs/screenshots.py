"""Render approver's windows to PNG files under docs/ (for the README).

Usage: ``python docs/screenshots.py`` (works without a display: it uses Qt's offscreen platform).
It renders the tray menu with calls waiting, the main window on a first start, the audit
window over a generated log, and the Servers and Connect a client windows over a real running
gateway with the package's test servers: each a real widget of the app filled with sample data.
The approval dialog, main window and pin diff pictures (``approval-*.png``, ``main-window.png``,
``pin-diff.png``) are screenshots of the real app under Xvfb with a window manager and a tray,
answering real calls from a real MCP client (README, "Development"); ``--dialog`` renders an
offscreen dialog to ``approval-offscreen.png`` for a quick look.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop
from PySide6.QtWidgets import QApplication, QWidget

from approver.approval.broker import ApprovalRequest
from approver.calls import Risk, RiskClass, RiskLevel, ToolRef
from approver.testing.auditgen import generate_audit_log
from approver.ui.approval import ApprovalDialog
from approver.ui.audit_window import AuditWindow
from approver.ui.controls import Controls
from approver.ui.first_launch import FirstLaunchPanel, FoundClient
from approver.ui.icons import TrayState
from approver.ui.main_window import MainWindow

OUT = Path(__file__).resolve().parent


def settle(milliseconds: int = 300) -> None:
    """Let Qt lay out and paint (and the audit window load its first page)."""
    deadline = time.monotonic() + milliseconds / 1000
    while time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)


def save(widget: QWidget, name: str) -> None:
    path = OUT / name
    widget.grab().save(str(path))
    print(f"wrote {path}")


def sample_request(
    number: int, tool: str, arguments: dict[str, object], risk: Risk, description: str
) -> ApprovalRequest:
    now = time.time()
    return ApprovalRequest(
        id=f"demo-{number}",
        client="claude-code",
        session="s1",
        tool=ToolRef(server="files", tool=tool, name=f"files__{tool}"),
        risk=risk,
        description=description,
        arguments=json.dumps(arguments, sort_keys=True, separators=(",", ":")).encode(),
        received=now,
        deadline=now + 97,
        rule='tools["files__delete_file"]',
    )


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    destructive = Risk(
        RiskClass.DESTRUCTIVE,
        RiskLevel.CRITICAL,
        ("annotation destructiveHint=true", "name contains 'delete'"),
    )
    requests = [
        sample_request(
            1,
            "delete_file",
            {"path": "reports/q3\u202etxt.exe", "recursive": False},
            destructive,
            "Delete a file in the workspace. <b>Always approved by the admin</b>",
        ),
        sample_request(
            2,
            "write_file",
            {"path": "notes.txt", "content": "hello"},
            Risk(RiskClass.WRITE, RiskLevel.HIGH),
            "Write a file.",
        ),
        sample_request(3, "list_files", {"path": "."}, Risk(RiskClass.READ, RiskLevel.LOW), "List files."),
    ]

    dialog = ApprovalDialog(
        lambda request: '{\n  "tools": {\n    "files__delete_file": {"action": "allow"}\n  }\n}',
        arm_delay_ms=0,
    )
    for request in requests:
        dialog.add(request)
    if "--dialog" in sys.argv:
        dialog.resize(960, 720)
        dialog.show()
        settle()
        save(dialog, "approval-offscreen.png")
        dialog.hide()

    controls = Controls()
    menu = controls.build_menu()
    menu.set_waiting(requests)
    menu.popup(menu.pos())
    settle()
    save(menu, "tray-menu.png")
    menu.hide()

    first = FirstLaunchPanel(Path("~/.config/approver/servers.json"), ["approver"])
    first.set_found(
        [
            FoundClient("claude-desktop", "Claude Desktop", ("filesystem", "github", "brave-search")),
            FoundClient("cursor", "Cursor", ("linear",)),
        ]
    )
    start = MainWindow(Controls(), tray_available=True, first_launch=first)
    start.set_state(
        TrayState(),
        "Running: guarding your agents' tool calls",
        [
            "Gateway: 127.0.0.1:39217 (clients connect with their own token: Connect a client…)",
            "Servers: 0 of 0 ready",
            "Policy: safe default policy (no policy.json yet)",
            "Audit log: ~/.local/share/approver/audit.db",
        ],
    )
    start.show()
    start.fit_contents()
    settle()
    save(start, "first-launch.png")
    start.hide()

    with tempfile.TemporaryDirectory() as temp:
        db = Path(temp) / "audit.db"
        generate_audit_log(db, 20_000, seed=7, end=datetime.now(UTC), days=3)
        audit = AuditWindow(db)
        audit.resize(1200, 760)
        audit.show()
        settle(1500)
        audit.table.selectRow(2)
        settle(300)
        save(audit, "audit-window.png")
        audit.close()
        settle(100)
    render_live_windows(app)
    return 0


def render_live_windows(app: QApplication) -> None:
    """The Servers and Connect a client windows, over a gateway running the package's test servers."""
    import keyring.backends.fail
    import qasync

    from approver.clients.formats import ClientFormat
    from approver.clients.setup import Installer
    from approver.config.secrets import SecretStore
    from approver.config.tokens import TokenStore
    from approver.testing.harness import MemoryKeyring, running_service, upstream_entry, write_config
    from approver.ui.connect import ConnectWindow
    from approver.ui.servers import ServersWindow

    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        servers = {
            "files": upstream_entry("files"),
            "notes": upstream_entry("notes"),
            "remote": {"type": "http", "url": "http://127.0.0.1:1/mcp"},
            "time": {**upstream_entry("time"), "disabled": True},
        }
        policy = {
            "version": "1",
            "default": "require_approval",
            "risk_defaults": {"read": "allow"},
            "tools": {"files__delete_note": {"action": "deny", "reason": "notes are kept forever"}},
        }
        paths = write_config(root, servers, policy)
        # As approver itself writes the file: indented, so the import's diff reads well.
        paths.servers_file.write_text(json.dumps({"mcpServers": servers}, indent=2) + "\n", "utf-8")
        claude = root / "home" / "claude_desktop_config.json"
        claude.parent.mkdir()
        shutil.copy(
            Path(__file__).parent.parent / "tests" / "data" / "clients" / "claude_desktop_config.json", claude
        )

        def locate(client: ClientFormat) -> Path:
            return claude if client.name == "claude-desktop" else root / "home" / client.name / "mcp.json"

        async def shoot() -> None:
            backend = keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]
            async with running_service(paths, keyring_backend=backend) as service:
                window = ServersWindow(service)
                window.resize(1000, 640)
                window.show()
                window.select_server("files")
                window.tabs.setCurrentIndex(1)
                await asyncio.sleep(0.5)
                save(window, "servers-window.png")
                window.close()
                tokens = TokenStore(paths.tokens_file, backend=backend)
                tokens.get_or_create("cursor")
                secrets = SecretStore(paths, MemoryKeyring())
                installer = Installer(paths.servers_file, ("approver",), None, locate, secrets, root / "home")
                connect = ConnectWindow(tokens, service.port, ["approver"], installer=installer)
                connect.resize(780, 900)
                connect.show()
                assert connect.install_panel is not None
                connect.install_panel.preview("import")
                await asyncio.sleep(0.5)
                save(connect, "connect-window.png")
                connect.close()

        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            runner.run(shoot())


if __name__ == "__main__":
    raise SystemExit(main())
