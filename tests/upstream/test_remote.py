"""A remote upstream that needs a sign-in says so, waits without retrying, and connects once signed in."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from approver.config.servers import ServerConfig
from approver.testing.browser import write_browser_script
from approver.testing.harness import MemoryKeyring
from approver.testing.oauth_server import read_events, running_oauth_server
from approver.upstream.connection import Upstream
from approver.upstream.oauth.browser import open_in_browser
from approver.upstream.oauth.signin import sign_in
from approver.upstream.oauth.store import CredentialStore
from approver.upstream.status import UpstreamState, UpstreamUnavailable

pytestmark = pytest.mark.anyio

TIMEOUT = 60


async def show(url: str) -> None:
    assert await open_in_browser(url)


async def test_a_server_that_needs_sign_in_waits_for_it_and_connects_once_signed_in_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROWSER", str(write_browser_script(tmp_path)))
    events = tmp_path / "events.jsonl"
    store = CredentialStore(MemoryKeyring())
    with running_oauth_server(events) as base:
        config = ServerConfig(name="remote", transport="http", url=f"{base}/mcp")
        upstream = Upstream(config, tmp_path, credentials=store)
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as group:
                group.start_soon(upstream.run)
                await upstream.wait_for_state(UpstreamState.NEEDS_SIGN_IN)
                assert upstream.error == "not signed in yet"
                with pytest.raises(UpstreamUnavailable, match=r"needs sign-in .*approver login remote"):
                    await upstream.call_tool("echo", b'{"text": "hi"}')
                # `approver login` in another process writes the keyring; this upstream notices by itself.
                await sign_in(config, show, CredentialStore(store.backend))
                await upstream.wait_for_state(UpstreamState.READY)
                result = await upstream.call_tool("echo", b'{"text": "hi"}')
                upstream.stop()
    assert not result.is_error and upstream.restarts == 0
    # The background connection never registered or authorized: only the one sign-in did.
    assert [e["event"] for e in read_events(events)].count("register") == 1
    assert upstream.state is UpstreamState.STOPPED
