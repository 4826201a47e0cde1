"""approver as the client under test of the MCP conformance suite's client scenarios.

The suite (npm ``@modelcontextprotocol/conformance``, see :mod:`approver.testing.conformance_suite`)
starts a test server for a scenario and runs ``python -m approver.testing.conformance_client
SERVER_URL`` with ``MCP_CONFORMANCE_SCENARIO`` (and, for pre-registration,
``MCP_CONFORMANCE_CONTEXT`` holding the client id and secret). This module then does what a
user of approver would do, through approver's own code paths:

1. writes a ``servers.json`` naming the server (pre-registered credentials go in its ``oauth``
   entry, the secret through ``${keyring:...}``; a client ID metadata document URL is always
   offered, and used where the server supports it);
2. for an ``auth/`` scenario, signs in as ``approver login`` does, with ``$BROWSER`` pointing
   at :mod:`approver.testing.browser` (the person who clicks "Allow");
3. starts the gateway (``approver serve``) with an allow-all policy, and connects an MCP
   client to it that lists the tools and calls the scenario's tool; when the upstream asks
   for more permission (a step-up), it signs in again and calls once more.

The keyring is a file in a temporary directory (:mod:`approver.testing.file_keyring`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx2
import keyring
import mcp.types as types

from approver.config.paths import Paths
from approver.testing.browser import write_browser_script
from approver.testing.file_keyring import FILE_ENV, FileKeyring
from approver.testing.harness import legacy_client, running_service, write_config
from approver.upstream.oauth.browser import open_in_browser
from approver.upstream.oauth.signin import SignInError, sign_in
from approver.upstream.status import UpstreamState

SERVER: Final = "conformance"
CLIENT_METADATA_URL: Final = "https://conformance-test.local/client-metadata.json"
"""The client ID metadata document URL the suite's CIMD scenario expects."""
SECRET_NAME: Final = "conformance-client-secret"  # noqa: S105 - a keyring entry's name, not a value

_TOOL_ARGUMENTS: Final[dict[str, dict[str, Any]]] = {"add_numbers": {"a": 5, "b": 3}}


def log(text: str) -> None:
    """One line of what the wrapper does, for the suite's stdout.txt."""
    print(text, flush=True)


async def accept_with_defaults(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    """A person who accepts an elicitation as offered: every field with a default gets it (SEP-1034)."""
    schema = getattr(params, "requested_schema", None) or {}
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    content = {name: field["default"] for name, field in properties.items() if "default" in field}
    return types.ElicitResult(action="accept", content=content)


def server_entry(url: str, scenario: str, context: dict[str, Any]) -> dict[str, Any]:
    """The ``servers.json`` entry for the scenario's server."""
    if scenario.startswith("auth/client-credentials-"):
        return {"type": "http", "url": url, "prefix": "", "oauth": machine_oauth(url, context)}
    oauth: dict[str, Any] = {"clientMetadataUrl": CLIENT_METADATA_URL}
    if "client_id" in context:
        oauth["clientId"] = context["client_id"]
        if "client_secret" in context:
            keyring.set_password("approver", SECRET_NAME, context["client_secret"])
            oauth["clientSecret"] = f"${{keyring:{SECRET_NAME}}}"
    return {"type": "http", "url": url, "prefix": "", "oauth": oauth}


def machine_oauth(url: str, context: dict[str, Any]) -> dict[str, Any]:
    """A client-credentials ``oauth`` entry from the scenario's context.

    A user knows which authorization server their client is registered with; the suite picks
    its ports at random, so the issuer is read from the server's protected resource metadata.
    """
    parts = urlsplit(url)
    metadata = httpx2.get(f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{parts.path}")
    oauth: dict[str, Any] = {
        "grant": "client_credentials",
        "clientId": context["client_id"],
        "issuer": metadata.json()["authorization_servers"][0],
    }
    for key, name in (("client_secret", "clientSecret"), ("private_key_pem", "privateKey")):
        if key in context:
            keyring.set_password("approver", f"conformance-{key}", context[key])
            oauth[name] = f"${{keyring:conformance-{key}}}"
    if "signing_algorithm" in context:
        oauth["signingAlgorithm"] = context["signing_algorithm"]
    return oauth


async def show(url: str) -> None:
    """Open the authorization URL with ``$BROWSER`` (the stand-in browser)."""
    log(f"sign-in: opening {url.split('?')[0]}")
    if not await open_in_browser(url):
        raise SignInError("the test browser did not open the URL")


async def login(paths: Paths) -> None:
    """``approver login conformance``, with the test browser."""
    from approver.config.servers import SecretResolver, load_servers

    config = load_servers(paths.servers_file, SecretResolver()).get(SERVER)
    assert config is not None

    result = await sign_in(config, show, browser_wait=20)
    log(f"sign-in: done, scope {result.scope!r}, {result.tools} tools")


async def exercise(paths: Paths, scenario: str) -> None:
    """Start the gateway, connect a client, list and call the scenario's tool."""
    signed_in_again = False
    async with running_service(paths, keyring_backend=keyring.get_keyring()) as service:
        upstream = service.upstreams[SERVER]
        log(
            f"gateway: upstream is {upstream.state.value}"
            + (f" ({upstream.error})" if upstream.error else "")
        )
        token = service.tokens.get_or_create("conformance")
        async with legacy_client(service.url, token, elicitation_callback=accept_with_defaults) as session:
            for attempt in range(3):
                tools = (await session.list_tools()).tools
                log(f"client: {len(tools)} tool(s): {', '.join(tool.name for tool in tools)}")
                if not tools:
                    return
                tool = tools[0]
                result = await session.call_tool(tool.name, _TOOL_ARGUMENTS.get(tool.name, {}))
                text = " ".join(
                    block.text for block in result.content if isinstance(block, types.TextContent)
                )
                log(f"client: {tool.name} -> {'error: ' if result.is_error else ''}{text[:300]}")
                if not result.is_error or attempt == 2 or not scenario.startswith("auth/"):
                    return
                if upstream.state is UpstreamState.NEEDS_SIGN_IN and not signed_in_again:
                    signed_in_again = True
                    await service.sign_in(SERVER, show)  # as Sign in… in the Servers window does
                    await asyncio.wait_for(upstream.wait_for_state(UpstreamState.READY), 20)
                else:
                    return


async def run(url: str, scenario: str, context: dict[str, Any], work: Path) -> int:
    """The whole client run; returns the exit status."""
    paths = write_config(
        work, {SERVER: server_entry(url, scenario, context)}, {"version": "1", "default": "allow"}
    )
    if scenario.startswith("auth/") and not scenario.startswith("auth/client-credentials-"):
        try:
            await login(paths)
        except SignInError as exc:
            log(f"sign-in: failed: {exc}")
            return 1
    await exercise(paths, scenario)
    return 0


def main() -> None:
    """Entry point: ``python -m approver.testing.conformance_client SERVER_URL``."""
    url = sys.argv[1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT", "{}"))
    with tempfile.TemporaryDirectory(prefix="approver-conformance-") as work:
        os.environ[FILE_ENV] = str(Path(work) / "keyring.json")
        os.environ["BROWSER"] = str(write_browser_script(Path(work)))
        keyring.set_keyring(FileKeyring())
        log(f"scenario {scenario or '?'} against {url}")
        sys.exit(asyncio.run(run(url, scenario, context, Path(work))))


if __name__ == "__main__":
    main()
