"""Real third-party MCP servers from PyPI (test dependencies) behind the gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import mcp.types as types
import pytest

from approver.testing.harness import legacy_client, running_service, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 40


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)  # noqa: S607 - git from PATH
    (path / "notes.md").write_text("hello\n")
    return path


async def test_mcp_server_git_reads_are_allowed_and_its_reset_is_held(tmp_path: Path, repo: Path) -> None:
    args = ["-m", "mcp_server_git", "--repository", str(repo)]
    servers = {"git": {"command": sys.executable, "args": args}}
    policy = {
        "version": "1",
        "default": "deny",
        "risk_defaults": {"read": "allow", "destructive": "require_approval"},
    }
    paths = write_config(tmp_path, servers, policy)
    with anyio.fail_after(TIMEOUT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create("git-user")
            async with legacy_client(service.url, token) as session:
                names = [tool.name for tool in (await session.list_tools()).tools]
                status = await session.call_tool("git__git_status", {"repo_path": str(repo)})
                reset = await session.call_tool("git__git_reset", {"repo_path": str(repo)})
            risks = {entry.ref.name: entry.risk.risk_class.value for entry in service.catalog.tools()}
    assert "git__git_status" in names
    assert not status.is_error
    assert "notes.md" in " ".join(b.text for b in status.content if isinstance(b, types.TextContent))
    assert risks["git__git_status"] == "read"
    assert risks["git__git_reset"] == "destructive"
    assert reset.is_error
