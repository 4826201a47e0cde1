"""A small real MCP server for tests: every MCP feature the gateway passes through, on both protocol eras.

Run it as ``python -m approver.testing.server [--transport stdio|http] [--port N] [--name NAME]
[--tools-file PATH]``. Over HTTP it listens on 127.0.0.1 (``--port 0`` picks a free port) and
prints ``LISTENING <port>`` on stderr once the socket accepts connections.

Server-to-client requests (``sample``, ``elicit``, ``roots``) follow the caller's era: a
2025-11-25 session gets a real request sent mid-call on the call's own stream; a 2026-07-28
call gets an ``InputRequiredResult`` and is answered when the client retries the call with
``inputResponses``. List and resource changes go to legacy sessions as notifications and to
2026-07-28 listeners through the ``subscriptions/listen`` bus.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import ListenHandler

from approver import __version__
from approver.testing.server_state import INSTRUCTIONS, ServerState
from approver.testing.server_tools import ToolRunner, load_tools_file


class _AnnouncingServer(Server[Any]):
    """A low-level server that advertises ``listChanged`` even when the HTTP manager builds the options."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(tools_changed=True, resources_changed=True)
        return super().create_initialization_options(options, experimental_capabilities, extensions)


def build_server(
    name: str = "test",
    extra_tools: Sequence[types.Tool] = (),
    call_log: Path | None = None,
    *,
    files: bool = False,
) -> Server[Any]:
    """Build the test server; ``extra_tools`` are listed after the built-in tools.

    With ``call_log``, every received ``tools/call`` and ``resources/read`` is appended (fsynced)
    to that file first. With ``files``, the template ``file:///{+path}`` reads files from disk.

    A called extra tool answers with its name and arguments as JSON text. Raises ``ValueError``
    when an extra tool reuses a built-in tool's name.
    """
    state = ServerState(name, files=files, call_log=call_log)
    tools = ToolRunner(state, extra_tools, call_log)
    server = _AnnouncingServer(
        name,
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=tools.list_tools,
        on_call_tool=tools.call_tool,
        on_list_resources=state.list_resources,
        on_list_resource_templates=state.list_templates,
        on_read_resource=state.read_resource,
        on_subscribe_resource=state.subscribe,
        on_unsubscribe_resource=state.unsubscribe,
        on_subscriptions_listen=ListenHandler(state.bus),
        on_list_prompts=state.list_prompts,
        on_get_prompt=state.get_prompt,
        on_completion=state.complete,
    )
    # Registered here rather than as `on_set_logging_level=`, which warns that logging is deprecated.
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, state.set_level)
    server.middleware.append(state.remember_peer)
    # Seal requestState as real 2026-07-28 servers do, so a proxy must pass it through untouched.
    server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience=name))
    return server


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client on this process's stdin and stdout."""
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(server: Server[Any], port: int) -> None:
    """Serve Streamable HTTP at ``http://127.0.0.1:<port>/mcp`` and print ``LISTENING <port>`` on stderr."""
    app = server.streamable_http_app(host="127.0.0.1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    # Connections made from now on wait in the backlog until uvicorn has started, so this is true already.
    print(f"LISTENING {sock.getsockname()[1]}", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: parse ``argv`` and serve until the client goes away."""
    parser = argparse.ArgumentParser(
        prog="python -m approver.testing.server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--name", default="test", help="server name announced to clients")
    parser.add_argument("--tools-file", type=Path, help="JSON array of extra MCP tools to list")
    parser.add_argument(
        "--call-log",
        type=Path,
        help="append every received tools/call and resources/read to this file (JSON lines, fsynced)",
    )
    parser.add_argument(
        "--files", action="store_true", help="offer the template file:///{+path}, which reads files from disk"
    )
    options = parser.parse_args(argv)
    try:
        extra = load_tools_file(options.tools_file) if options.tools_file else []
        server = build_server(options.name, extra, options.call_log, files=options.files)
    except (OSError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        parser.error(f"--tools-file: {error}")
    if options.transport == "http":
        anyio.run(serve_http, server, options.port)
    else:
        anyio.run(serve_stdio, server)


if __name__ == "__main__":
    main()
