"""Hostile input to the HTTP door and the stdio bridge: proper errors, still serving, nothing undecided."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import keyring.backends.fail
import mcp_types
import pytest
from pydantic import ValidationError

from approver.config.paths import Paths
from approver.gateway.arguments import MAX_ARGUMENT_DEPTH
from approver.gateway.bridge import unreadable_input_error
from approver.gateway.front import MAX_BODY_BYTES
from approver.service import Service
from approver.testing.fuzz import classify_http, connect_command, run_bridge_fuzz, run_http_fuzz
from approver.testing.fuzz_cases import ACCEPTED_DEPTH, LEGACY, MODERN, dumps, request, routing
from approver.testing.fuzz_report import undecided_calls
from approver.testing.harness import running_service, upstream_entry, write_config

pytestmark = pytest.mark.anyio

TIMEOUT = 60
POLICY = {
    "version": "1",
    "default": "allow",
    "tools": {
        "test__delete_note": {"action": "deny"},
        "test__echo": {"action": "allow", "conditions": [{"when": {"n": {"gt": 100}}, "action": "deny"}]},
    },
}
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
BRIDGE_ENV = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
async def service(root: Path) -> AsyncIterator[Service]:
    paths = write_config(
        root, {"test": upstream_entry("test", "--call-log", str(root / "calls.jsonl"))}, POLICY
    )
    # The fail backend keeps tokens in the tokens file, where `approver connect` finds them.
    async with running_service(paths, keyring_backend=keyring.backends.fail.Keyring()) as running:
        yield running


@pytest.fixture
def token(service: Service) -> str:
    return str(service.tokens.get_or_create("fuzzer"))


def headers(token: str, **extra: str) -> dict[str, str]:
    return ACCEPT | {"authorization": f"Bearer {token}"} | extra


async def open_session(http: httpx2.AsyncClient, url: str, token: str) -> str:
    params = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    answer = await http.post(
        url, headers=headers(token), content=dumps(request("initialize", params, 0, LEGACY))
    )
    session = answer.headers["mcp-session-id"]
    initialized = dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
    await http.post(url, headers=headers(token, **legacy(session)), content=initialized)
    return str(session)


def legacy(session: str) -> dict[str, str]:
    return {"mcp-session-id": session, "mcp-protocol-version": LEGACY}


def echo(text: str, era: str, **arguments: Any) -> bytes:
    return dumps(
        request("tools/call", {"name": "test__echo", "arguments": {"text": text, **arguments}}, 1, era)
    )


def error_of(answer: httpx2.Response) -> dict[str, Any]:
    body = answer.text
    data = [line[5:] for line in body.splitlines() if line.startswith("data:")] or [body]
    error: dict[str, Any] = json.loads(data[-1])["error"]
    return error


def decisions(service: Service) -> list[dict[str, Any]]:
    return [row for row in service.audit.tail(0, 100_000) if row["kind"] == "decision"]


def upstream_calls(root: Path) -> list[dict[str, Any]]:
    path = root / "calls.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()] if path.exists() else []


# -- the fuzz loops ------------------------------------------------------------------------------


async def test_the_http_fuzz_loop_gets_proper_errors_keeps_serving_and_forwards_nothing_undecided(
    service: Service, root: Path, token: str
) -> None:
    other = service.tokens.get_or_create("other-fuzzer")
    assert service.fast is not None
    fast_before = service.fast.handled
    with anyio.fail_after(TIMEOUT):
        report = await run_http_fuzz(
            service.url, token, seed=7, count=36, other_token=other,
            call_log=root / "calls.jsonl", audit_db=service.paths.audit_db,
        )  # fmt: skip

    assert report.ok, report.summary()
    assert report.total == 36 and len(report.tried) == 17
    assert report.proper_errors >= 24
    assert report.gateway_failures == [] and report.liveness_checks == 36
    assert report.upstream_calls is not None and report.upstream_calls >= 18
    assert report.undecided_calls == []
    assert service.fast.handled > fast_before  # hostile calls reached the front door's fast path


async def test_the_bridge_fuzz_loop_answers_every_request_keeps_relaying_and_forwards_nothing_undecided(
    service: Service, root: Path
) -> None:
    with anyio.fail_after(TIMEOUT):
        report = await run_bridge_fuzz(
            connect_command(service.paths.data_dir, service.paths.config_dir),
            seed=7, count=32, env=BRIDGE_ENV, stderr=root / "bridge.log",
            call_log=root / "calls.jsonl", audit_db=service.paths.audit_db,
        )  # fmt: skip

    assert report.ok, report.summary()
    assert report.total == 32 and len(report.tried) == 15
    assert report.proper_errors >= 16
    assert report.gateway_failures == []
    assert report.undecided_calls == []


def test_a_call_the_upstream_saw_without_an_allow_decision_is_reported(
    service: Service, tmp_path: Path
) -> None:
    log = tmp_path / "calls.jsonl"
    log.write_text(json.dumps({"tool": "echo", "arguments": {"text": "never decided on"}}) + "\n", "utf-8")

    seen, missing = undecided_calls(log, service.paths.audit_db)

    assert seen == 1
    assert len(missing) == 1 and "never decided on" in missing[0]


# -- sessions ------------------------------------------------------------------------------------


async def test_a_forged_session_id_is_refused_and_the_gateway_keeps_serving(
    service: Service, token: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            session = await open_session(http, service.url, token)
            forged = await http.post(
                service.url, headers=headers(token, **legacy("f" * 32)), content=echo("x", LEGACY)
            )
            garbage = await http.post(
                service.url, headers=headers(token, **legacy("../" * 50)), content=echo("x", LEGACY)
            )
            after = await http.post(
                service.url, headers=headers(token, **legacy(session)), content=echo("ok", LEGACY)
            )

    assert forged.status_code == 404 and error_of(forged)["message"] == "Session not found"
    assert garbage.status_code == 404
    assert classify_http(after.status_code, after.content)[0] == "result"


async def test_another_clients_session_id_is_refused_so_its_session_cannot_be_borrowed(
    service: Service, token: str
) -> None:
    other = service.tokens.get_or_create("session-owner")
    before = len(decisions(service))
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            owned = await open_session(http, service.url, other)
            borrowed = await http.post(
                service.url, headers=headers(token, **legacy(owned)), content=echo("borrowed", LEGACY)
            )
            owner = await http.post(
                service.url, headers=headers(other, **legacy(owned)), content=echo("own", LEGACY)
            )

    assert borrowed.status_code == 404
    assert classify_http(owner.status_code, owner.content)[0] == "result"
    assert [row["client"] for row in decisions(service)[before:]] == ["session-owner"]


# -- size and depth ------------------------------------------------------------------------------


@pytest.mark.parametrize("era", [LEGACY, MODERN])
async def test_ten_megabyte_arguments_are_refused_with_a_clear_error_before_any_decision(
    service: Service, token: str, era: str
) -> None:
    body = echo("huge", era, padding="x" * 10_000_000)
    before = len(decisions(service))
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            extra = (
                legacy(await open_session(http, service.url, token))
                if era == LEGACY
                else routing("tools/call", "test__echo")
            )
            answer = await http.post(service.url, headers=headers(token, **extra), content=body)
            after = await http.post(service.url, headers=headers(token, **extra), content=echo("after", era))

    assert answer.status_code == 413
    message = error_of(answer)["message"]
    assert f"up to {MAX_BODY_BYTES} bytes" in message and str(len(body)) in message
    assert "nothing was decided or forwarded" in message
    assert len(decisions(service)) == before + 1  # only the call after it
    assert classify_http(after.status_code, after.content)[0] == "result"


async def test_two_megabyte_arguments_are_decided_recorded_and_forwarded_whole(
    service: Service, root: Path, token: str
) -> None:
    padding = "p" * 2_000_000
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            answer = await http.post(
                service.url,
                headers=headers(token, **routing("tools/call", "test__echo")),
                content=echo("two megabytes", MODERN, padding=padding),
            )

    assert classify_http(answer.status_code, answer.content)[0] == "result"
    row = decisions(service)[-1]
    assert row["decision"] == "allow" and row["args_size"] > 2_000_000 and row["args_truncated"] == 1
    [forwarded] = [c for c in upstream_calls(root) if c["arguments"].get("text") == "two megabytes"]
    assert forwarded["arguments"]["padding"] == padding


@pytest.mark.parametrize("depth", [1_000, 100_000])
async def test_deeply_nested_arguments_get_a_parse_error_and_reach_nothing(
    service: Service, root: Path, token: str, depth: int
) -> None:
    nested = b"[" * depth + b"]" * depth
    body = echo(f"deep {depth}", MODERN, deep=0).replace(b'"deep":0', b'"deep":' + nested)
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            answer = await http.post(
                service.url, headers=headers(token, **routing("tools/call", "test__echo")), content=body
            )

    assert answer.status_code == 400 and error_of(answer)["code"] == mcp_types.PARSE_ERROR
    assert not [c for c in upstream_calls(root) if c["arguments"].get("text") == f"deep {depth}"]


def nested_list(depth: int) -> Any:
    nested: Any = "bottom"
    for _ in range(depth):
        nested = [nested]
    return nested


async def post_call(
    http: httpx2.AsyncClient, service: Service, token: str, path: str, body: bytes
) -> httpx2.Response:
    """POST a ``tools/call`` of test__echo the way ``path`` takes it: ``fast`` (a 2025-era session
    that listed tools, answered by the front door), ``sdk`` (a fresh 2025-era session, which the
    SDK's server answers) or ``modern`` (2026-07-28, sessionless)."""
    if path == "modern":
        return await http.post(
            service.url, headers=headers(token, **routing("tools/call", "test__echo")), content=body
        )
    session = await open_session(http, service.url, token)
    if path == "fast":
        listed = dumps(request("tools/list", None, "list", LEGACY))
        await http.post(service.url, headers=headers(token, **legacy(session)), content=listed)
    return await http.post(service.url, headers=headers(token, **legacy(session)), content=body)


@pytest.mark.parametrize("path", ["fast", "sdk", "modern"])
async def test_the_deepest_nesting_approver_accepts_is_decided_and_forwarded_on_every_path(
    service: Service, root: Path, token: str, path: str
) -> None:
    nested = nested_list(ACCEPTED_DEPTH)
    text = f"deep {ACCEPTED_DEPTH} {path}"
    era = MODERN if path == "modern" else LEGACY
    assert service.fast is not None
    fast_before = service.fast.handled
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            answer = await post_call(http, service, token, path, echo(text, era, deep=nested))

    assert classify_http(answer.status_code, answer.content)[0] == "result"
    [forwarded] = [c for c in upstream_calls(root) if c["arguments"].get("text") == text]
    assert forwarded["arguments"]["deep"] == nested
    assert (service.fast.handled > fast_before) == (path == "fast")


@pytest.mark.parametrize("path", ["fast", "sdk", "modern"])
@pytest.mark.parametrize("depth", [ACCEPTED_DEPTH + 1, 150, 300, 900])
async def test_arguments_nested_deeper_than_the_limit_are_refused_on_every_path_and_reach_nothing(
    service: Service, root: Path, token: str, path: str, depth: int
) -> None:
    text = f"too deep {depth} {path}"
    era = MODERN if path == "modern" else LEGACY
    body = echo(text, era, deep=0).replace(b'"deep":0', b'"deep":' + b"[" * depth + b"]" * depth)
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            answer = await post_call(http, service, token, path, body)

    assert classify_http(answer.status_code, answer.content)[0] == "error"
    if path == "sdk" and depth >= 200:
        # The SDK's own parser refuses the message first, as it always has.
        assert error_of(answer)["code"] == mcp_types.PARSE_ERROR
    else:
        assert f"nested more than {MAX_ARGUMENT_DEPTH} levels deep" in answer.text
    assert not [c for c in upstream_calls(root) if c["arguments"].get("text") == text]


# -- encoding and shape --------------------------------------------------------------------------


@pytest.mark.parametrize("era", [LEGACY, MODERN])
async def test_invalid_utf8_gets_a_parse_error(service: Service, token: str, era: str) -> None:
    body = echo("bad \u0001", era).replace(b"\\u0001", b"\xff\xfe")
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            extra = (
                legacy(await open_session(http, service.url, token))
                if era == LEGACY
                else routing("tools/call", "test__echo")
            )
            answer = await http.post(service.url, headers=headers(token, **extra), content=body)

    assert answer.status_code == 400
    assert error_of(answer)["code"] == mcp_types.PARSE_ERROR


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_nan_and_infinity_in_arguments_are_denied_not_forwarded_as_null(
    service: Service, root: Path, token: str, literal: bytes
) -> None:
    text = f"not a number {literal.decode()}"
    body = echo(text, MODERN, n=0).replace(b'"n":0', b'"n":' + literal)
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            answer = await http.post(
                service.url, headers=headers(token, **routing("tools/call", "test__echo")), content=body
            )

    assert classify_http(answer.status_code, answer.content)[0] == "error"
    assert "cannot be encoded" in answer.text
    assert not [c for c in upstream_calls(root) if c["arguments"].get("text") == text]


async def test_a_tools_call_without_an_id_is_a_notification_and_never_reaches_the_upstream(
    service: Service, root: Path, token: str
) -> None:
    message = json.loads(echo("no id", MODERN))
    del message["id"]
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            session = await open_session(http, service.url, token)
            answer = await http.post(
                service.url, headers=headers(token, **legacy(session)), content=dumps(message)
            )
            after = await http.post(
                service.url, headers=headers(token, **legacy(session)), content=echo("after no id", LEGACY)
            )

    assert answer.status_code == 202
    assert classify_http(after.status_code, after.content)[0] == "result"
    assert not [c for c in upstream_calls(root) if c["arguments"].get("text") == "no id"]


@pytest.mark.parametrize("era", [LEGACY, MODERN])
async def test_an_unknown_method_gets_method_not_found(service: Service, token: str, era: str) -> None:
    body = dumps(request("tools/destroy", {}, 5, era))
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            extra = (
                legacy(await open_session(http, service.url, token))
                if era == LEGACY
                else routing("tools/destroy")
            )
            answer = await http.post(service.url, headers=headers(token, **extra), content=body)

    assert error_of(answer)["code"] == mcp_types.METHOD_NOT_FOUND


# -- the bridge ----------------------------------------------------------------------------------


async def bridge_answers(
    paths: Paths, lines: list[bytes], log: Path, wait_for: tuple[Any, ...] = (), *, list_tools: bool = False
) -> list[dict[str, Any]]:
    """Initialize through a real bridge, write ``lines``, then a ping; what came out until the ping's
    answer and those to ``wait_for`` arrived (the initialize answer left out). ``list_tools``
    lists the tools first, after which the front door's fast path serves the session's calls."""
    init = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    initialized = dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
    script = [initialized, *lines, dumps(request("ping", None, "last", LEGACY))]
    out: list[dict[str, Any]] = []
    with log.open("wb") as errors:
        async with await anyio.open_process(
            connect_command(paths.data_dir, paths.config_dir),
            env=BRIDGE_ENV,
            stderr=errors,
            stdout=subprocess.PIPE,
        ) as process:
            assert process.stdin is not None and process.stdout is not None
            buffer = b""

            async def read_until(ids: set[Any]) -> None:
                nonlocal buffer
                assert process.stdout is not None
                while not ids <= {message.get("id") for message in out}:
                    buffer += await process.stdout.receive()
                    *complete, buffer = buffer.split(b"\n")
                    out.extend(json.loads(line) for line in complete)

            # Like a real client: the session exists once initialize is answered.
            await process.stdin.send(dumps(request("initialize", init, "init", LEGACY)) + b"\n")
            await read_until({"init"})
            if list_tools:
                script.insert(1, dumps(request("tools/list", None, "list", LEGACY)))
                for line in script[:2]:
                    await process.stdin.send(line + b"\n")
                await read_until({"list"})
                del script[:2]
            for line in script:
                await process.stdin.send(line + b"\n")
            await read_until({"last", *wait_for})
            await process.stdin.aclose()
            await process.wait()
    return [message for message in out if message.get("id") not in ("init", "list")]


BRIDGE_LINES = [
    b"hello there",
    b'{"jsonrpc":"1.0","id":41,"method":"ping"}',
    b'[{"jsonrpc":"2.0","id":42,"method":"ping"}]',
    b"[" * 100_000 + b"]" * 100_000,
    dumps(request("tools/call", {"name": "test__echo", "arguments": {"text": "y" * 10_000_000}}, 44, LEGACY)),
    b'{"jsonrpc":"2.0","id":43,"method":"tools/call","params":{"name":"test__echo","arguments":{"text":"relayed"}}}',
]


@pytest.fixture(scope="module")
async def bridge_transcript(service: Service, root: Path) -> list[dict[str, Any]]:
    """What one real bridge answered to :data:`BRIDGE_LINES` (one subprocess for several tests)."""
    with anyio.fail_after(TIMEOUT):
        return await bridge_answers(service.paths, BRIDGE_LINES, root / "bridge-lines.log", wait_for=(43, 44))


async def test_unreadable_lines_on_the_bridge_get_errors_and_the_bridge_keeps_relaying(
    bridge_transcript: list[dict[str, Any]],
) -> None:
    by_id = {json.dumps(answer["id"]): answer for answer in bridge_transcript}
    nulls = [answer["error"] for answer in bridge_transcript if answer["id"] is None]

    assert [error["code"] for error in nulls] == [
        mcp_types.PARSE_ERROR,
        mcp_types.INVALID_REQUEST,
        mcp_types.PARSE_ERROR,
    ]
    assert by_id["41"]["error"]["code"] == mcp_types.INVALID_REQUEST
    assert "JSON-RPC 2.0" in by_id["41"]["error"]["message"]
    assert by_id["43"]["result"]["structuredContent"] == {"text": "relayed"}
    assert by_id['"last"']["result"] == {}


async def test_a_ten_megabyte_line_on_the_bridge_gets_the_gateways_clear_error(
    bridge_transcript: list[dict[str, Any]],
) -> None:
    [error] = [answer["error"] for answer in bridge_transcript if answer["id"] == 44]

    assert "request too large" in error["message"] and "nothing was decided or forwarded" in error["message"]


ODD_VALUES = [b"NaN", b"-Infinity", b"Infinity", b"1e400", b'"\\ud800"', b'"a\\udc00b"']


@pytest.mark.parametrize("path", ["sdk", "fast"])
@pytest.mark.parametrize("literal", ODD_VALUES)
async def test_the_bridge_answers_a_value_json_cannot_carry_exactly_as_http_does(
    service: Service, root: Path, token: str, literal: bytes, path: str
) -> None:
    # "n" > 100 is denied by the policy: read as null, NaN or 1e400 would have passed that test.
    def call(text: str, request_id: int) -> bytes:
        arguments = {"text": text, "n": 0}
        message = request("tools/call", {"name": "test__echo", "arguments": arguments}, request_id, LEGACY)
        return dumps(message).replace(b'"n":0', b'"n":' + literal)

    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            over_http = await post_call(http, service, token, path, call("odd via http", 7))
        answers = await bridge_answers(
            service.paths, [call("odd via brdg", 7)], root / "odd.log", (7,), list_tools=path == "fast"
        )

    [through_bridge] = [answer for answer in answers if answer["id"] == 7]

    events = [json.loads(line[5:]) for line in over_http.text.splitlines() if line.startswith("data:")]
    http_answer = events[-1] if events else json.loads(over_http.content)
    assert {key: through_bridge.get(key) for key in ("result", "error")} == {
        key: http_answer.get(key) for key in ("result", "error")
    }
    if "result" in http_answer:  # the SDK's parser refuses a lone surrogate outright: a parse error
        assert through_bridge["result"]["isError"] is True
        assert "cannot be encoded" in through_bridge["result"]["content"][0]["text"]
    assert not [c for c in upstream_calls(root) if c["arguments"].get("text", "").startswith("odd via")]


async def test_the_bridge_relays_a_large_number_the_policy_then_denies_and_a_small_one_it_allows(
    service: Service, root: Path
) -> None:
    def call(n: bytes, request_id: int) -> bytes:
        arguments = {"text": f"number {request_id}", "n": 0}
        message = request("tools/call", {"name": "test__echo", "arguments": arguments}, request_id, LEGACY)
        return dumps(message).replace(b'"n":0', b'"n":' + n)

    with anyio.fail_after(TIMEOUT):
        answers = await bridge_answers(
            service.paths, [call(b"1e300", 1), call(b"5", 2)], root / "n.log", (1, 2)
        )

    by_id = {answer["id"]: answer for answer in answers}
    assert by_id[1]["result"]["isError"] is True and "approver denied this call" in str(by_id[1]["result"])
    assert by_id[2]["result"]["structuredContent"]["text"] == "number 2"


async def test_the_bridge_refuses_too_deep_arguments_as_http_does(service: Service, root: Path) -> None:
    nested = b"[" * 150 + b"]" * 150
    message = request(
        "tools/call", {"name": "test__echo", "arguments": {"text": "deep bridge", "d": 0}}, 9, LEGACY
    )

    with anyio.fail_after(TIMEOUT):
        answers = await bridge_answers(
            service.paths, [dumps(message).replace(b'"d":0', b'"d":' + nested)], root / "deep.log", (9,)
        )

    [answer] = [answer for answer in answers if answer["id"] == 9]
    assert f"nested more than {MAX_ARGUMENT_DEPTH} levels" in str(answer["result"])
    assert not [c for c in upstream_calls(root) if c["arguments"].get("text") == "deep bridge"]


def validation_error(line: str) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    return raised.value


def test_a_bridge_line_that_is_no_json_gets_a_parse_error_with_a_null_id() -> None:
    error = unreadable_input_error(validation_error("{not json"))

    assert error is not None and error.id is None and error.error.code == mcp_types.PARSE_ERROR


def test_a_bridge_request_of_the_wrong_shape_is_answered_with_its_own_id() -> None:
    error = unreadable_input_error(validation_error('{"jsonrpc":"2.0","id":"abc","method":"x","params":[1]}'))

    assert error is not None and error.id == "abc" and error.error.code == mcp_types.INVALID_REQUEST


def test_a_malformed_answer_from_the_client_is_not_answered() -> None:
    assert unreadable_input_error(validation_error('{"jsonrpc":"1.0","id":3,"result":{}}')) is None


def test_a_boolean_id_is_not_echoed_back_as_an_id() -> None:
    error = unreadable_input_error(validation_error('{"jsonrpc":"1.0","id":true,"method":"ping"}'))

    assert error is not None and error.id is None


@pytest.mark.parametrize(
    ("header", "value", "says"),
    [
        ("accept", "text/html", "Accept: application/json, text/event-stream"),
        ("content-type", "text/plain", ""),
    ],
)
async def test_a_wrong_accept_or_content_type_gets_an_error_that_says_what_to_send(
    service: Service, token: str, header: str, value: str, says: str
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with httpx2.AsyncClient() as http:
            answer = await http.post(
                service.url,
                headers=headers(token, **routing("tools/call", "test__echo"), **{header: value}),
                content=echo("wrong header", MODERN),
            )
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.content)
    error = error_of(answer)
    assert error["message"] and says in error["message"]
