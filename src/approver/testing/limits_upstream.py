"""Limits scenarios where an upstream server attacks: a line without end, an endless cursor, a flood
of list changes. Each runs real processes and returns a :class:`LimitReport`."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import anyio
import mcp.types as types

from approver.config.paths import Paths
from approver.testing.fault_processes import (
    Proc,
    approver_argv,
    gateway_url,
    headless_env,
    spawn,
    wait_for_tool,
)
from approver.testing.fault_report import ALLOW_ALL, CLIENT, file_token_store, text_of
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.testing.limit_report import MIB, Findings, LimitReport, watching
from approver.upstream.limits import MAX_LIST_ITEMS, MAX_LIST_PAGES, MAX_MESSAGE_BYTES
from approver.upstream.listing import REFRESH_INTERVAL

WAIT: Final = 120.0
"""Seconds any one step of a scenario may take."""


def hostile(*flags: str) -> dict[str, Any]:
    """A servers.json entry running :mod:`approver.testing.hostile_server` with ``flags``."""
    return {"command": sys.executable, "args": ["-m", "approver.testing.hostile_server", *flags]}


@asynccontextmanager
async def gateway_process(paths: Paths, *, open_files: int | None = None) -> AsyncIterator[tuple[Proc, str]]:
    """``approver serve`` on a free port (``open_files``: its limit on open files); its process and URL."""
    argv = approver_argv(paths, "serve", "--port", "0")
    if open_files is not None:
        argv = ["sh", "-c", f'ulimit -n {open_files} && exec "$@"', "sh", *argv]
    async with spawn(argv, headless_env()) as proc:
        yield proc, await gateway_url(proc)


async def long_line(root: Path) -> LimitReport:
    """A stdio server answers a call with a line that never ends; another server keeps serving."""
    findings = Findings()
    paths = write_config(
        root, {"h": hostile("--wire", "--long-line", "0"), "test": upstream_entry()}, ALLOW_ALL
    )
    token = file_token_store(paths).get_or_create(CLIENT)
    with anyio.fail_after(WAIT):
        async with gateway_process(paths) as (proc, url):
            await wait_for_tool(url, token, "h__echo")
            await wait_for_tool(url, token, "test__echo")
            async with watching(proc.process.pid) as watch, legacy_client(url, token) as session:
                started = time.perf_counter()
                flooded = await session.call_tool("h__long_line", {})
                dropped = time.perf_counter() - started
                other = await session.call_tool("test__echo", {"text": "unharmed"})
            logged = await proc.wait_line(proc.stderr, re.compile("without a line break"))
    findings.figure(
        f"the gateway's memory rose by at most {watch.rss_growth_mib:.1f} MiB while the server wrote"
        f" without end; the connection was dropped after {dropped:.2f} s"
    )
    findings.figure(f"the call got: {text_of(flooded)}")
    findings.expect(
        flooded.is_error and "stopped during the call" in text_of(flooded), "the call was not ended"
    )
    findings.expect(watch.rss_growth_mib < 4 * MAX_MESSAGE_BYTES / MIB, "memory grew past the limit")
    findings.expect(not other.is_error, "the other server's call failed")
    findings.expect(logged is not None, "the log does not say why the connection was dropped")
    if logged is not None:
        findings.figure(f"the log: {logged.string.strip()}")
    return findings.report(
        "long-line",
        f"MAX_MESSAGE_BYTES = {MAX_MESSAGE_BYTES // MIB} MiB per line (stdio) or between line breaks (HTTP)",
        "a stdio server answers a tool call with one line that never ends",
    )


async def endless_cursor(root: Path) -> LimitReport:
    """A server's tools/list always has another page; the listing must end and the server serve."""
    findings = Findings()
    paths = write_config(root, {"h": hostile("--endless-cursor"), "test": upstream_entry()}, ALLOW_ALL)
    token = file_token_store(paths).get_or_create(CLIENT)
    with anyio.fail_after(WAIT):
        async with gateway_process(paths) as (proc, url):
            started = time.perf_counter()
            async with watching(proc.process.pid) as watch:
                await wait_for_tool(url, token, "h__echo")
            listed = time.perf_counter() - started
            async with legacy_client(url, token) as session:
                names: list[str] = []
                cursor = None
                while True:
                    params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                    page = await session.list_tools(params=params)
                    names += [tool.name for tool in page.tools]
                    if not (cursor := page.next_cursor):
                        break
                result = await session.call_tool("h__echo", {"text": "still serving"})
            said = await proc.wait_line(proc.stderr, re.compile(f"went on past {MAX_LIST_PAGES:,} pages"))
    own = [name for name in names if name.startswith("h__")]
    findings.figure(
        f"the listing stopped after {MAX_LIST_PAGES:,} pages, {listed:.1f} s after the gateway started"
        f" ({watch.cpu_used:.1f} s of gateway CPU); the server serves {len(own):,} tools"
    )
    findings.expect(len(own) == 4 + MAX_LIST_PAGES - 1, f"{len(own)} tools listed, not {3 + MAX_LIST_PAGES}")
    findings.expect(not result.is_error, "the server's call failed")
    findings.expect(said is not None, "the log does not say the listing was stopped")
    return findings.report(
        "endless-cursor",
        f"MAX_LIST_PAGES = {MAX_LIST_PAGES:,} pages, MAX_LIST_ITEMS = {MAX_LIST_ITEMS:,} items per listing",
        "a server's tools/list answers every page with a nextCursor",
    )


async def list_changed_flood(root: Path, count: int = 20_000) -> LimitReport:
    """A server sends ``count`` tools/list_changed notifications; relisting must not follow each."""
    findings = Findings()
    paths = write_config(root, {"h": hostile("--wire"), "test": upstream_entry()}, ALLOW_ALL)
    with anyio.fail_after(WAIT):
        async with running_service(paths) as service:
            token = service.tokens.get_or_create(CLIENT)
            async with legacy_client(service.url, token) as session:
                await session.list_tools()
                cpu, started = time.process_time(), time.perf_counter()
                await session.call_tool("h__flood", {"count": count})
                refresher = service.upstreams["h"].refresher
                assert refresher is not None
                await refresher.wait_quiet(count)
                cpu, took = time.process_time() - cpu, time.perf_counter() - started
                other = await session.call_tool("test__echo", {"text": "unharmed"})
    findings.figure(
        f"{refresher.notified:,} notifications in {took:.1f} s led to {refresher.refreshes} relistings"
        f" and took {cpu:.1f} s of CPU in the gateway (and its test client)"
    )
    findings.expect(refresher.notified == count, f"{refresher.notified} notifications arrived, not {count}")
    findings.expect(
        refresher.refreshes <= took / REFRESH_INTERVAL + 2, "more relistings than one per interval"
    )
    findings.expect(not other.is_error, "the other server's call failed")
    return findings.report(
        "list-changed-flood",
        f"REFRESH_INTERVAL = {REFRESH_INTERVAL} s: at most one relisting per interval per server",
        f"a server sends {count:,} notifications/tools/list_changed during a call",
    )
