"""Client-credentials upstreams: only over https (or to this machine), only to the configured issuer.

The grant itself runs end to end in the conformance suite's client-credentials scenarios
(tests/testing/test_conformance_client.py).
"""

from __future__ import annotations

import pytest
from mcp.client.auth import OAuthFlowError

from approver.config.servers import OAuthSettings, ServerConfig
from approver.upstream.oauth.machine import HttpsOnly, machine_auth


def config(url: str, issuer: str) -> ServerConfig:
    settings = OAuthSettings(client_id="svc", client_secret="s", grant="client_credentials", issuer=issuer)
    return ServerConfig(name="m", transport="http", url=url, oauth=settings)


def test_a_client_credentials_server_gets_a_guarded_client_of_its_own() -> None:
    server = config("https://api.example/mcp", "https://auth.example")
    assert server.uses_client_credentials and not server.signs_in
    assert isinstance(machine_auth(server), HttpsOnly)


@pytest.mark.parametrize(
    ("url", "issuer"),
    [("http://api.example/mcp", "https://auth.example"), ("https://api.example/mcp", "http://auth.example")],
)
def test_plain_http_to_another_machine_is_refused_before_anything_is_sent(url: str, issuer: str) -> None:
    with pytest.raises(OAuthFlowError, match="only over https"):
        machine_auth(config(url, issuer))
