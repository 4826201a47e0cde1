"""The one-shot redirect listener on 127.0.0.1: the code comes back, anything else does not settle it."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp.client.auth import OAuthFlowError

from approver.upstream.oauth.loopback import LoopbackListener

pytestmark = pytest.mark.anyio


async def test_the_browser_coming_back_with_a_code_and_state_settles_the_sign_in() -> None:
    async with LoopbackListener(0, "GitHub") as listener, httpx2.AsyncClient() as client:
        assert listener.redirect_uri.startswith("http://127.0.0.1:")
        page = await client.get(f"{listener.redirect_uri}?code=abc&state=xyz&iss=https%3A%2F%2Fas")
        with anyio.fail_after(10):
            result = await listener.result()
    assert (result.code, result.state, result.iss) == ("abc", "xyz", "https://as")
    assert page.status_code == 200 and "Signed in to GitHub" in page.text


async def test_an_error_from_the_authorization_server_fails_the_sign_in_with_its_reason() -> None:
    async with LoopbackListener() as listener, httpx2.AsyncClient() as client:
        page = await client.get(f"{listener.redirect_uri}?error=access_denied&error_description=no%3Cb%3E")
        with anyio.fail_after(10), pytest.raises(OAuthFlowError, match="access_denied: no<b>"):
            await listener.result()
    assert page.status_code == 400 and "no&lt;b&gt;" in page.text  # shown as text, never as markup


async def test_other_requests_are_answered_404_and_leave_the_sign_in_waiting() -> None:
    async with LoopbackListener() as listener, httpx2.AsyncClient() as client:
        base = listener.redirect_uri.rsplit("/", 1)[0]
        assert (await client.get(f"{base}/favicon.ico")).status_code == 404
        assert (await client.post(listener.redirect_uri, content=b"code=x")).status_code == 404
        assert (await client.get(listener.redirect_uri)).status_code == 400  # no code
        listener.deliver(f"{listener.redirect_uri}?code=pasted&state=s")
        with anyio.fail_after(10):
            assert (await listener.result()).code == "pasted"


async def test_a_second_answer_is_refused() -> None:
    async with LoopbackListener() as listener, httpx2.AsyncClient() as client:
        await client.get(f"{listener.redirect_uri}?code=first&state=s")
        second = await client.get(f"{listener.redirect_uri}?code=second&state=s")
        with anyio.fail_after(10):
            assert (await listener.result()).code == "first"
    assert second.status_code == 400


async def test_the_listener_stops_listening_when_the_sign_in_ends() -> None:
    async with LoopbackListener() as listener:
        uri = listener.redirect_uri
    async with httpx2.AsyncClient() as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"{uri}?code=late")
