"""Resource reads, prompts and completion are policed and audited, on every door.

The attack: a filesystem server offers ``file:///{+path}``, the policy denies everything, and a
client reads approver's own ``tokens.json`` (tokens are kept in that file when there is no
keyring). Real ``Service``, real upstream subprocess logging every read it receives, real
HTTP for both protocol eras, and the real ``approver connect`` bridge.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import keyring.backends.fail
import mcp.types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from approver.approval.broker import ApprovalRequest, Resolution, Scope
from approver.calls import RequestKind
from approver.config.paths import Paths
from approver.gateway.policed import REQUEST_DENIED
from approver.service import Service, client_url
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 40
DENY_ALL: dict[str, Any] = {"version": "1", "default": "deny"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    root = tmp_path_factory.mktemp("policed")
    fs = upstream_entry("fs", "--files", "--call-log", str(root / "reads.jsonl"))
    paths = write_config(root, {"fs": fs}, DENY_ALL)
    # No keyring: tokens live in tokens.json itself, the file the attack goes after.
    async with running_service(paths, keyring_backend=keyring.backends.fail.Keyring()) as running:
        yield running


def reads(service: Service) -> list[str]:
    log = service.paths.config_dir.parent / "reads.jsonl"
    if not log.exists():
        return []
    return [json.loads(line)["arguments"]["uri"] for line in log.read_text("utf-8").splitlines()]


def rows(service: Service, method: str, target: str) -> list[dict[str, Any]]:
    """The decision rows of requests for ``target``, each followed by its outcome row if any."""
    every = service.audit.tail(0, 100000)
    decided = {
        row["call_id"]
        for row in every
        if row["kind"] == "decision" and row["tool"] == method and row["upstream_tool"] == target
    }
    return [row for row in every if row["call_id"] in decided]


def use_policy(service: Service, policy: dict[str, Any]) -> None:
    service.paths.policy_file.write_text(json.dumps(policy), "utf-8")
    assert service.reload_policy() is None


@pytest.fixture
def deny_all(service: Service) -> Iterator[None]:
    use_policy(service, DENY_ALL)
    yield
    use_policy(service, DENY_ALL)


def bridge_params(paths: Paths, client: str) -> StdioServerParameters:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    dirs = ["--data-dir", str(paths.data_dir), "--config-dir", str(paths.config_dir)]
    return StdioServerParameters(
        command=sys.executable, args=["-m", "approver", *dirs, "connect", "--client", client], env=env
    )


@asynccontextmanager
async def bridged(service: Service, client: str, errlog: Path) -> AsyncIterator[ClientSession]:
    service.tokens.get_or_create(client)
    with errlog.open("w") as log:
        async with (
            stdio_client(bridge_params(service.paths, client), errlog=log) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


async def test_a_deny_all_policy_keeps_tokens_json_from_being_read_through_a_file_template(
    service: Service, deny_all: None, tmp_path: Path
) -> None:
    token = service.tokens.get_or_create("reader")
    tokens = service.paths.tokens_file
    assert token in tokens.read_text("utf-8")
    uri = tokens.as_uri()
    failures: list[MCPError] = []
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            templates = [t.uri_template for t in (await session.list_resource_templates()).resource_templates]
            with pytest.raises(MCPError) as legacy:
                await session.read_resource(uri)
            failures.append(legacy.value)
        async with Client(client_url(service.port, token)) as client:
            with pytest.raises(MCPError) as modern:
                await client.read_resource(uri)
            failures.append(modern.value)
        async with bridged(service, "bridged-reader", tmp_path / "bridge.log") as session:
            with pytest.raises(MCPError) as bridge:
                await session.read_resource(uri)
            failures.append(bridge.value)
    assert "file:///{+path}" in templates
    for failure in failures:
        assert failure.error.code == REQUEST_DENIED
        assert "approver denied this request" in failure.error.message and token not in failure.error.message
    assert uri not in reads(service)  # the upstream was never asked
    decisions = rows(service, "resources/read", uri)
    assert [(r["kind"], r["decision"], r["rule"], r["server"]) for r in decisions] == [
        ("decision", "deny", "default", "fs")
    ] * 3
    assert [r["client"] for r in decisions] == ["reader", "reader", "bridged-reader"]


async def test_an_allowed_read_is_recorded_with_its_outcome(
    service: Service, deny_all: None, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("a note", "utf-8")
    use_policy(service, {**DENY_ALL, "resources": {"fs__file:///*": {"action": "allow"}}})
    with anyio.fail_after(TIMEOUT):
        async with Client(client_url(service.port, service.tokens.get_or_create("reader"))) as client:
            result = await client.read_resource(note.as_uri())
        await service.recorder.flush()
    assert isinstance(result.contents[0], types.TextResourceContents) and result.contents[0].text == "a note"
    decision, outcome = rows(service, "resources/read", note.as_uri())
    assert (decision["decision"], decision["rule"]) == ("allow", 'resources["fs__file:///*"]')
    assert (outcome["kind"], outcome["outcome"], outcome["call_id"]) == ("outcome", "ok", decision["call_id"])
    assert json.loads(decision["arguments"]) == {"uri": note.as_uri()}


async def test_a_read_that_needs_approval_is_shown_as_a_read_and_can_be_granted_for_the_session(
    service: Service, deny_all: None, tmp_path: Path
) -> None:
    note = tmp_path / "secret.txt"
    note.write_text("s3cret", "utf-8")
    use_policy(service, {**DENY_ALL, "resources": {"file:///*": {"action": "require_approval"}}})
    asked: list[ApprovalRequest] = []

    def approve(request: ApprovalRequest, resolution: Resolution | None) -> None:
        if resolution is None:
            asked.append(request)
            asyncio.get_running_loop().call_soon(service.broker.approve, request.id, Scope.SESSION)

    detach = service.broker.attach_approver()
    unsubscribe = service.broker.subscribe(approve)
    try:
        with anyio.fail_after(TIMEOUT):
            async with legacy_client(service.url, service.tokens.get_or_create("asker")) as session:
                first = await session.read_resource(note.as_uri())
                again = await session.read_resource(note.as_uri())
            async with legacy_client(service.url, service.tokens.get_or_create("other")) as session:
                other = await session.read_resource(note.as_uri())
    finally:
        unsubscribe()
        detach()
    assert [request.client for request in asked] == ["asker", "other"]
    request = asked[0]
    assert request.summary == f"read {note.as_uri()} from fs"
    assert request.request is not None and request.request.kind is RequestKind.RESOURCE
    assert json.loads(request.arguments) == {"uri": note.as_uri()}
    for result in (first, again, other):
        assert (
            isinstance(result.contents[0], types.TextResourceContents) and result.contents[0].text == "s3cret"
        )
    reasons = [r["reason"] for r in rows(service, "resources/read", note.as_uri()) if r["kind"] == "decision"]
    assert reasons == ["approved by the user", "allowed for this session by the user", "approved by the user"]


async def test_prompts_and_completions_are_policed_and_audited_like_reads(
    service: Service, deny_all: None
) -> None:
    token = service.tokens.get_or_create("prompter")
    with anyio.fail_after(TIMEOUT):
        async with legacy_client(service.url, token) as session:
            with pytest.raises(MCPError, match="no prompts rule applies"):
                await session.get_prompt("fs__greet", {"name": "Ada"})
            with pytest.raises(MCPError, match="no completion rule applies"):
                await session.complete(
                    types.PromptReference(name="fs__greet"), argument={"name": "name", "value": "a"}
                )
            use_policy(
                service,
                {
                    **DENY_ALL,
                    "prompts": {"fs__*": {"action": "allow"}},
                    "completion": {"fs": {"action": "allow"}},
                },
            )
            prompt = await session.get_prompt("fs__greet", {"name": "Ada"})
            completed = await session.complete(
                types.ResourceTemplateReference(uri="test://items/{id}"),
                argument={"name": "id", "value": "1"},
            )
        await service.recorder.flush()
    assert prompt.messages[0].content.text == "Please greet Ada."  # type: ignore[union-attr]
    assert completed.completion.values == ["1", "10"]
    prompts = rows(service, "prompts/get", "greet")
    assert [(r["kind"], r["decision"]) for r in prompts] == [
        ("decision", "deny"),
        ("decision", "allow"),
        ("outcome", None),
    ]
    assert json.loads(prompts[1]["arguments"]) == {"name": "fs__greet", "arguments": {"name": "Ada"}}
    assert [r["decision"] for r in rows(service, "completion/complete", "greet")] == ["deny"]
    assert [r["decision"] for r in rows(service, "completion/complete", "test://items/{id}")] == [
        "allow",
        None,
    ]
