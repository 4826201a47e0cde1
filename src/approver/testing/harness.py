"""Start a real gateway on 127.0.0.1 with real upstream subprocesses, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import keyring.errors
import mcp.types as types
from keyring.backend import KeyringBackend
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from approver.approval.broker import ApprovalRequest, Resolution
from approver.config.paths import Paths
from approver.config.servers import SecretResolver
from approver.config.tokens import TokenStore
from approver.gateway.http_limits import HttpLimits
from approver.service import Service
from approver.upstream.oauth.store import CredentialStore


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps passwords in a dict (no desktop keyring in CI)."""

    priority = -1  # never chosen by keyring's own auto-detection

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


class LockedKeyring(KeyringBackend):
    """A keyring backend that behaves like a locked Secret Service collection."""

    priority = -1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("collection is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringLocked("collection is locked")


def upstream_entry(name: str = "test", *extra_args: str) -> dict[str, Any]:
    """A servers.json entry that runs the package's own test server over stdio."""
    return {"command": sys.executable, "args": ["-m", "approver.testing.server", "--name", name, *extra_args]}


def write_config(root: Path, servers: Mapping[str, Any], policy: Mapping[str, Any] | None = None) -> Paths:
    """Write servers.json (and policy.json when given) under ``root``; return the Paths."""
    paths = Paths(config_dir=root / "config", data_dir=root / "data")
    paths.ensure()
    paths.servers_file.write_text(json.dumps({"mcpServers": dict(servers)}), "utf-8")
    if policy is not None:
        paths.policy_file.write_text(json.dumps(policy), "utf-8")
    return paths


@asynccontextmanager
async def running_service(
    paths: Paths,
    *,
    keyring_backend: KeyringBackend | None = None,
    approval_timeout: float = 30.0,
    port: int = 0,
    http_limits: HttpLimits | None = None,
) -> AsyncIterator[Service]:
    """A started :class:`Service` whose upstreams have all connected or failed.

    ``port=0`` picks a free port. Pass ``keyring.backends.fail.Keyring()`` as the backend when
    another process (``approver connect``) must find client tokens in the tokens file.
    """
    backend = keyring_backend or MemoryKeyring()
    service = Service(
        paths,
        port=port,
        approval_timeout=approval_timeout,
        resolver=SecretResolver(keyring_get=backend.get_password),
        token_store=TokenStore(paths.tokens_file, backend=backend),
        credentials=CredentialStore(backend),
        http_limits=http_limits,
    )
    await service.start()
    try:
        await service.wait_upstreams()
        yield service
    finally:
        await service.stop()


@asynccontextmanager
async def legacy_client(url: str, token: str | None, **session_kwargs: Any) -> AsyncIterator[ClientSession]:
    """An initialized 2025-11-25 era ClientSession over Streamable HTTP with a bearer token."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    # The SDK's own client timeouts: httpx's 5 s default read timeout cuts off a slow answer's
    # SSE stream, which the SDK reports as "SSE stream ended without a response".
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, **session_kwargs) as session,
    ):
        await session.initialize()
        yield session


async def answer_sampling(
    context: Any, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    """A fake LLM: answers "answer to <prompt>"."""
    prompt = params.messages[0].content
    text = prompt.text if isinstance(prompt, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(text=f"answer to {text}"), model="fake-llm"
    )


async def answer_elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    """A fake user who accepts and gives the name Ada."""
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def answer_roots(context: Any) -> types.ListRootsResult:
    """Two fake workspace roots."""
    return types.ListRootsResult.model_validate(
        {"roots": [{"uri": "file:///work/a"}, {"uri": "file:///work/b"}]}
    )


ASKING_CALLBACKS: dict[str, Any] = {
    "sampling_callback": answer_sampling,
    "elicitation_callback": answer_elicitation,
    "list_roots_callback": answer_roots,
}
"""Client callbacks that answer an upstream's sampling, elicitation and roots requests."""


class Desk:
    """A person at the approval window: sees each request as it arrives, and answers through the broker.

    Attaching counts as an approver being present, so calls wait for it instead of being denied.
    """

    def __init__(self, service: Service, timeout: float = 30.0) -> None:
        self.broker = service.broker
        self.timeout = timeout
        self.arrived: asyncio.Queue[ApprovalRequest] = asyncio.Queue()
        self._detach = self.broker.attach_approver()
        self._unsubscribe = self.broker.subscribe(self._seen)

    def _seen(self, request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None:
            self.arrived.put_nowait(request)

    async def next(self) -> ApprovalRequest:
        """The next request to arrive (fails after ``timeout`` seconds)."""
        with anyio.fail_after(self.timeout):
            return await self.arrived.get()

    def leave(self) -> None:
        """Stop watching and stop counting as an approver."""
        self._unsubscribe()
        self._detach()
