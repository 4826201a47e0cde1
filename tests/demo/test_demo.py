"""The first-run demo: the sandboxed file server, the prepared config and the scripted agent."""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from approver.approval.broker import ApprovalRequest, Resolution
from approver.calls import Action, CallContext, Risk, RiskClass, RiskLevel, ToolRef
from approver.config.servers import SecretResolver, load_servers
from approver.config.tokens import TokenStore
from approver.demo.agent import CLIENT_NAME, SUMMARY_TEXT, AgentError, run_agent
from approver.demo.sandbox import PROTECTED_REASON, SAMPLE_FILES, SERVER_NAME, DemoSetup, prepare_demo
from approver.errors import ApproverError
from approver.policy.engine import Policy
from approver.policy.limits import RateLimiter
from approver.service import Service
from approver.testing.harness import MemoryKeyring, running_service

pytestmark = pytest.mark.anyio

TIMEOUT = 40


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with its text."""
    return {
        path.relative_to(folder).as_posix(): path.read_text("utf-8")
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@asynccontextmanager
async def demo_server(root: Path, errlog: Path) -> AsyncIterator[ClientSession]:
    """The demo server as a real subprocess over stdio."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "approver.demo.server", "--root", str(root)]
    )
    with errlog.open("w") as log:
        async with stdio_client(params, errlog=log) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening, so connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# -- the demo server ------------------------------------------------------------------------------


async def test_the_demo_server_lists_reads_writes_and_deletes_files_in_its_sandbox(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    (root / "keep").mkdir(parents=True)
    (root / "notes.txt").write_text("hello\n", "utf-8")
    (root / "keep" / "contract.txt").write_text("signed\n", "utf-8")
    with anyio.fail_after(TIMEOUT):
        async with demo_server(root, tmp_path / "server.log") as session:
            names = [tool.name for tool in (await session.list_tools()).tools]
            listed = await session.call_tool("list_files", {})
            in_keep = await session.call_tool("list_files", {"folder": "keep"})
            read = await session.call_tool("read_file", {"path": "notes.txt"})
            written = await session.call_tool("write_file", {"path": "new/summary.txt", "content": "sum"})
            replaced = await session.call_tool("write_file", {"path": "notes.txt", "content": "changed"})
            deleted = await session.call_tool("delete_file", {"path": "keep/contract.txt"})
            gone = await session.call_tool("read_file", {"path": "keep/contract.txt"})
    assert names == ["list_files", "read_file", "write_file", "delete_file"]
    assert text_of(listed) == "keep/contract.txt (7 bytes)\nnotes.txt (6 bytes)"
    assert text_of(in_keep) == "keep/contract.txt (7 bytes)"
    assert text_of(read) == "hello\n"
    assert not written.is_error and text_of(written) == "created new/summary.txt (3 bytes)"
    assert text_of(replaced) == "replaced notes.txt (7 bytes)"
    assert text_of(deleted) == "deleted keep/contract.txt"
    assert gone.is_error and "does not exist" in text_of(gone)
    assert tree(root) == {"new/summary.txt": "sum", "notes.txt": "changed"}


async def test_the_demo_server_refuses_every_path_outside_or_around_its_sandbox(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    (root / "keep").mkdir(parents=True)
    (root / "keep" / "contract.txt").write_text("signed\n", "utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n", "utf-8")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "alias").symlink_to(root / "keep", target_is_directory=True)
    (root / "secret.txt").symlink_to(outside / "secret.txt")
    refusals = {
        "../outside/secret.txt": "'..' is not allowed",
        str(outside / "secret.txt"): "absolute paths are not allowed",
        "C:/secret.txt": "absolute paths are not allowed",
        "escape/secret.txt": "escape is a symbolic link",
        "alias/contract.txt": "alias is a symbolic link",
        "secret.txt": "secret.txt is a symbolic link",
        "./keep/contract.txt": "without '.' or empty parts",
        "keep//contract.txt": "without '.' or empty parts",
        "keep\\contract.txt": "use '/' between folders",
        "": "the path is empty",
    }
    answers: dict[tuple[str, str], types.CallToolResult] = {}
    with anyio.fail_after(TIMEOUT):
        async with demo_server(root, tmp_path / "server.log") as session:
            for path in refusals:
                for tool in ("read_file", "delete_file"):
                    answers[(tool, path)] = await session.call_tool(tool, {"path": path})
            listed = await session.call_tool("list_files", {})
            listed_outside = await session.call_tool("list_files", {"folder": "escape"})
    for (tool, path), result in answers.items():
        assert result.is_error, (tool, path)
        assert refusals[path] in text_of(result), (tool, path, text_of(result))
        assert "secret\n" not in text_of(result)
    assert (outside / "secret.txt").read_text("utf-8") == "secret\n"
    assert (root / "keep" / "contract.txt").exists()
    assert "escape (symbolic link, not followed)" in text_of(listed)
    assert "escape/secret.txt" not in text_of(listed)
    assert listed_outside.is_error and "symbolic link" in text_of(listed_outside)


def test_the_demo_server_will_not_start_without_an_existing_root(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "approver.demo.server", "--root", str(tmp_path / "missing")]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 2
    assert "is not a folder" in result.stderr and "Traceback" not in result.stderr


# -- the prepared config --------------------------------------------------------------------------


def test_prepare_demo_writes_the_sample_files_a_valid_policy_and_the_demo_server(tmp_path: Path) -> None:
    setup = prepare_demo(tmp_path / "demo")
    policy = Policy.from_file(setup.paths.policy_file)
    servers = load_servers(setup.paths.servers_file, SecretResolver(environ={}))
    server = servers.get(SERVER_NAME)
    assert tree(setup.sandbox) == dict(SAMPLE_FILES)
    assert setup.sandbox == tmp_path / "demo" / "sandbox"
    assert policy.data["$schema"].startswith("file://") and policy.data["$schema"].endswith(
        "policy.schema.json"
    )
    assert server is not None and server.command == sys.executable
    assert server.args == ("-m", "approver.demo.server", "--root", str(setup.sandbox))
    assert str(setup.sandbox) in setup.description and "keep/" in setup.description


def test_prepare_demo_refuses_a_folder_that_already_has_files(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("do not touch", "utf-8")
    with pytest.raises(ApproverError, match="not empty"):
        prepare_demo(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["mine.txt"]


@pytest.mark.parametrize(
    ("tool", "risk_class", "arguments", "action"),
    [
        ("read_file", RiskClass.READ, {"path": "keep/contract.txt"}, Action.ALLOW),
        (
            "write_file",
            RiskClass.WRITE,
            {"path": "keep/contract.txt", "content": ""},
            Action.REQUIRE_APPROVAL,
        ),
        ("delete_file", RiskClass.DESTRUCTIVE, {"path": "draft.txt"}, Action.REQUIRE_APPROVAL),
        ("delete_file", RiskClass.DESTRUCTIVE, {"path": "keeper.txt"}, Action.REQUIRE_APPROVAL),
        ("delete_file", RiskClass.DESTRUCTIVE, {"path": "keep/contract.txt"}, Action.DENY),
        ("delete_file", RiskClass.DESTRUCTIVE, {"path": "KEEP/Contract.txt"}, Action.DENY),
    ],
)
def test_the_demo_policy_allows_reads_asks_for_changes_and_denies_deleting_in_keep(
    tmp_path: Path, tool: str, risk_class: RiskClass, arguments: dict[str, str], action: Action
) -> None:
    policy = Policy.from_file(prepare_demo(tmp_path / "demo").paths.policy_file)
    ref = ToolRef(SERVER_NAME, tool, f"{SERVER_NAME}__{tool}")
    context = CallContext("agent", ref, Risk(risk_class, RiskLevel.HIGH, ()), arguments)
    decision = policy.decide(context, RateLimiter(), 0.0)
    assert decision.action is action
    assert (PROTECTED_REASON in decision.reason) == (action is Action.DENY)


async def test_a_running_gateway_classifies_the_demo_tools_as_read_write_and_destructive(
    tmp_path: Path,
) -> None:
    setup = prepare_demo(tmp_path / "demo")
    with anyio.fail_after(TIMEOUT):
        async with running_service(setup.paths) as service:
            risks = {entry.ref.tool: entry.risk.risk_class for entry in service.catalog.tools()}
            conflicts = [entry.ref.tool for entry in service.catalog.tools() if entry.risk.conflict]
    assert risks == {
        "list_files": RiskClass.READ,
        "read_file": RiskClass.READ,
        "write_file": RiskClass.WRITE,
        "delete_file": RiskClass.DESTRUCTIVE,
    }
    assert conflicts == []


# -- the scripted agent ---------------------------------------------------------------------------


async def test_the_agent_shows_allow_approval_and_deny_and_only_approved_changes_happen(
    tmp_path: Path,
) -> None:
    setup = prepare_demo(tmp_path / "demo")
    asked: list[tuple[str, object]] = []
    said: list[str] = []
    with anyio.fail_after(TIMEOUT):
        async with running_service(setup.paths) as service:
            loop = asyncio.get_running_loop()

            def decide(request: ApprovalRequest, resolution: Resolution | None) -> None:
                if resolution is not None:
                    return
                asked.append((request.tool.tool, json.loads(request.arguments)))
                if request.tool.tool == "write_file":
                    loop.call_soon(service.broker.approve, request.id)
                else:
                    loop.call_soon(service.broker.deny, request.id)

            service.broker.attach_approver()
            service.broker.subscribe(decide)
            token = service.tokens.get_or_create(CLIENT_NAME)
            steps = await run_agent(service.url, token, pause=0, say=said.append)
            rows = list(reversed(service.audit.query()))
    assert [(s.tool, s.allowed, s.error) for s in steps] == [
        ("files__list_files", True, False),
        ("files__read_file", True, False),
        ("files__write_file", True, False),
        ("files__delete_file", False, True),
        ("files__delete_file", False, True),
    ]
    assert steps[1].text == SAMPLE_FILES["notes.txt"]
    assert [(r["upstream_tool"], r["decision"], r["decided_by"], r["outcome"]) for r in rows] == [
        ("list_files", "allow", "policy", "ok"),
        ("read_file", "allow", "policy", "ok"),
        ("write_file", "allow", "user", "ok"),
        ("delete_file", "deny", "user", None),
        ("delete_file", "deny", "policy", None),
    ]
    assert PROTECTED_REASON in rows[-1]["reason"]
    assert asked == [
        ("write_file", {"path": "summary.txt", "content": SUMMARY_TEXT}),
        ("delete_file", {"path": "draft.txt"}),
    ]
    assert tree(setup.sandbox) == {**SAMPLE_FILES, "summary.txt": SUMMARY_TEXT}
    assert "agent: I want to delete keep/contract.txt." in "\n".join(said)
    assert f"approver: denied by policy: {PROTECTED_REASON}" in said
    assert "approver: denied by the user" in said


def hold_demo_server(setup: DemoSetup, marker: Path) -> None:
    """Make the demo server start only once ``marker`` exists: a server that is slow to start."""
    config = json.loads(setup.paths.servers_file.read_text("utf-8"))
    entry = config["mcpServers"][SERVER_NAME]
    command = shlex.join([entry["command"], *entry["args"]])
    script = f"while [ ! -e {shlex.quote(str(marker))} ]; do sleep 0.05; done; exec {command}"
    config["mcpServers"][SERVER_NAME] = {"command": "/bin/sh", "args": ["-c", script]}
    setup.paths.servers_file.write_text(json.dumps(config), "utf-8")


async def test_the_agent_waits_for_a_demo_server_that_starts_after_it_connects(tmp_path: Path) -> None:
    setup = prepare_demo(tmp_path / "demo")
    marker = tmp_path / "start-now"
    hold_demo_server(setup, marker)
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        if "still starting the demo server" in line:
            marker.touch()  # the agent has seen approver without the demo tools: start the server

    service = Service(
        setup.paths, port=0, token_store=TokenStore(setup.paths.tokens_file, backend=MemoryKeyring())
    )
    with anyio.fail_after(TIMEOUT):
        await service.start()  # not waiting for the upstream, as the desktop app does not
        try:
            service.broker.attach_approver()
            loop = asyncio.get_running_loop()

            def deny(request: ApprovalRequest, resolution: Resolution | None) -> None:
                if resolution is None:
                    loop.call_soon(service.broker.deny, request.id)

            service.broker.subscribe(deny)
            steps = await run_agent(service.url, service.tokens.get_or_create(CLIENT_NAME), pause=0, say=say)
        finally:
            await service.stop()
    assert marker.exists()
    assert [step.tool for step in steps][:2] == ["files__list_files", "files__read_file"]
    assert steps[1].text == SAMPLE_FILES["notes.txt"]


async def test_the_agent_gives_up_after_its_bound_when_the_demo_server_never_starts(tmp_path: Path) -> None:
    setup = prepare_demo(tmp_path / "demo")
    hold_demo_server(setup, tmp_path / "never")
    service = Service(
        setup.paths, port=0, token_store=TokenStore(setup.paths.tokens_file, backend=MemoryKeyring())
    )
    with anyio.fail_after(TIMEOUT):
        await service.start()
        try:
            token = service.tokens.get_or_create(CLIENT_NAME)
            with pytest.raises(AgentError, match="did not start") as caught:
                await run_agent(service.url, token, pause=0, say=lambda text: None, tools_wait=0.5)
        finally:
            await service.stop()
    assert "list_files" in str(caught.value) and "Servers window" in str(caught.value)
    assert caught.value.steps == []


async def test_the_agent_explains_a_rejected_token_instead_of_failing_obscurely(tmp_path: Path) -> None:
    setup = prepare_demo(tmp_path / "demo")
    with anyio.fail_after(TIMEOUT):
        async with running_service(setup.paths) as service:
            with pytest.raises(AgentError, match="approver refused the connection: unauthorized") as caught:
                await run_agent(service.url, "not-a-token", pause=0, say=lambda text: None)
    assert caught.value.steps == []


async def test_the_agent_explains_when_approver_is_not_running(refused_port: int) -> None:
    url = f"http://127.0.0.1:{refused_port}/mcp"
    with anyio.fail_after(TIMEOUT), pytest.raises(AgentError, match="is approver running") as caught:
        await run_agent(url, "token", pause=0, say=lambda text: None)
    assert url in str(caught.value)


def test_the_agent_command_reports_an_unreachable_approver_without_a_traceback(refused_port: int) -> None:
    url = f"http://127.0.0.1:{refused_port}/mcp"
    command = [sys.executable, "-m", "approver.demo.agent", "--url", url, "--token", "t", "--pause", "0"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 1
    assert f"could not reach approver at {url}" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_agent_calls_again_when_approver_holds_its_call_past_the_patience(tmp_path: Path) -> None:
    setup = prepare_demo(tmp_path / "demo")
    setup.paths.settings_file.write_text(json.dumps({"clients": {CLIENT_NAME: {"patience": 0.2}}}), "utf-8")
    said: list[str] = []
    with anyio.fail_after(TIMEOUT):
        async with running_service(setup.paths) as service:
            held = service.gateway.tools.held

            def told(request: ApprovalRequest) -> None:
                # The person answers once the agent was told to call again: its retry gets it.
                if request.agent.told_to_retry_at is not None and request.tool.tool == "write_file":
                    asyncio.get_running_loop().call_soon(service.broker.approve, request.id)
                elif request.agent.told_to_retry_at is not None:
                    asyncio.get_running_loop().call_soon(service.broker.deny, request.id)

            held.on_agent_change(told)
            service.broker.attach_approver()
            token = service.tokens.get_or_create(CLIENT_NAME)
            steps = await run_agent(service.url, token, pause=0, say=said.append)
    assert [(s.tool, s.allowed) for s in steps][2:4] == [
        ("files__write_file", True),
        ("files__delete_file", False),
    ]
    assert tree(setup.sandbox)["summary.txt"] == SUMMARY_TEXT
    assert "agent: approver is still waiting for you to decide; I will call again in a moment." in said
