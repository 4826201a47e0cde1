"""Which sign-in URLs approver accepts, and opening one with $BROWSER (never through a shell)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.client.auth import OAuthFlowError

from approver.upstream.oauth.browser import check_sign_in_url, is_loopback, open_in_browser

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/login/oauth/authorize?x=1",
        "http://127.0.0.1:8080/token",
        "http://localhost/a",
        "http://[::1]:1/",
    ],
)
def test_https_and_plain_http_to_this_machine_are_accepted(url: str) -> None:
    check_sign_in_url(url, "address")


@pytest.mark.parametrize(
    "url",
    ["http://example.com/token", "file:///etc/passwd", "javascript:alert(1)", "https:///nohost", "ftp://x/y"],
)
def test_every_other_url_is_refused(url: str) -> None:
    with pytest.raises(OAuthFlowError, match="only over https"):
        check_sign_in_url(url, "address")


def test_loopback_names_this_machine_only() -> None:
    assert is_loopback("127.0.0.2") and is_loopback("LOCALHOST") and is_loopback("[::1]")
    assert not is_loopback("localhost.example.com") and not is_loopback("10.0.0.1") and not is_loopback(None)


async def test_the_browser_command_gets_the_url_as_one_argument_without_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen"
    script = tmp_path / "browser"
    script.write_text(f'#!/bin/sh\nprintf "%s|" "$@" > "{seen}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(script))
    url = "https://auth.example.com/authorize?a=1&b=$(touch%20pwned);c"
    assert await open_in_browser(url) is True
    assert seen.read_text() == url + "|"
    assert not (tmp_path / "pwned").exists()


async def test_a_url_that_is_not_https_is_never_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen"
    script = tmp_path / "browser"
    script.write_text(f'#!/bin/sh\necho "$1" > "{seen}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(script))
    with pytest.raises(OAuthFlowError):
        await open_in_browser("file:///etc/passwd")
    assert not seen.exists()


async def test_without_a_browser_or_display_nothing_is_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    assert await open_in_browser("https://auth.example.com/authorize") is False
