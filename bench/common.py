"""What every benchmark shares: figures, percentiles, timed call loops and the processes under test.

A benchmark returns a list of :class:`Figure`; ``run_all.py`` prints them as one table. The
processes here are real: ``approver serve`` and ``approver connect`` as subprocesses of this
interpreter's environment, the package's test server as the upstream, and mcp-proxy 0.13.0 from
PyPI in its own virtual environment under :data:`CACHE_DIR` (never a dependency of approver).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client

from approver.testing import free_port, server_command
from approver.testing.harness import legacy_client, upstream_entry, write_config

CACHE_DIR: Final = Path(os.environ.get("APPROVER_BENCH_CACHE", Path.home() / ".cache" / "approver-bench"))
"""Where the benchmark keeps mcp-proxy's virtual environment and generated audit logs."""

MCP_PROXY_VERSION: Final = "0.13.0"
"""The mcp-proxy release approver is compared with."""

APPROVER: Final = [sys.executable, "-m", "approver"]
"""How to run the approver CLI from this checkout's environment."""

BENCH_ENV: Final = {
    **os.environ,
    # No desktop keyring here: client tokens live in tokens.json, so `connect` finds them.
    "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    "QT_QPA_PLATFORM": "offscreen",
}
"""The environment of every approver subprocess."""

BENCH_POLICY: Final = {
    "version": "1",
    "default": "require_approval",
    "risk_defaults": {"read": "allow", "destructive": "deny"},
    "tools": {
        "test__echo": {"action": "allow", "limits": [{"max": 1_000_000, "window": "minute"}]},
        "test__add": {"action": "allow"},
        "test__write_*": {
            "action": "require_approval",
            "conditions": [{"when": {"path": {"path_under": "/tmp/bench"}}, "action": "allow"}],
        },
        "*__delete_*": {"action": "deny", "reason": "never delete"},
    },
}
"""A small real policy: the benchmarked call matches an exact entry with a rate limit."""


@dataclass(frozen=True)
class Figure:
    """One row of the results table."""

    benchmark: str
    measure: str
    value: float
    unit: str
    target: str = ""
    """The issue's target for this figure, in words (empty when it is context only)."""
    met: bool | None = None
    """Whether the target is met; None when there is no target."""
    note: str = ""
    """A ratio or comparison that puts the value in context."""

    def value_text(self) -> str:
        """The value with its unit, at a sensible precision."""
        if self.unit in ("ms", "s") and self.value < 10:
            return f"{self.value:.3f} {self.unit}" if self.unit == "s" else f"{self.value:.2f} {self.unit}"
        return f"{self.value:,.0f} {self.unit}" if self.value >= 100 else f"{self.value:.1f} {self.unit}"


def p50(samples: list[float]) -> float:
    """The median, in milliseconds, of samples in seconds."""
    return statistics.median(samples) * 1000


def p99(samples: list[float]) -> float:
    """The 99th percentile (nearest rank), in milliseconds, of samples in seconds."""
    ordered = sorted(samples)
    return ordered[max(0, round(len(ordered) * 0.99) - 1)] * 1000


# -- timed calls -----------------------------------------------------------------------------------

SessionFactory = Callable[[], AbstractAsyncContextManager[ClientSession]]
"""Opens one initialized client session to the thing under test."""


async def until_listed(session: ClientSession, tool: str, timeout: float = 60.0) -> None:
    """Return once ``tool`` is listed (a gateway answers before its upstreams have connected)."""
    async with asyncio.timeout(timeout):
        while True:
            if tool in {t.name for t in (await session.list_tools()).tools}:
                return
            await asyncio.sleep(0.05)  # polling: the SDK client has no "tools changed" wait here


async def sequential(session: ClientSession, tool: str, calls: int, warmup: int = 30) -> list[float]:
    """Latencies (seconds) of ``calls`` back-to-back calls of ``tool`` after a warm-up."""
    if warmup:
        await until_listed(session, tool)
    for _ in range(warmup):
        await session.call_tool(tool, {"text": "x"})
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        result = await session.call_tool(tool, {"text": "x"})
        samples.append(time.perf_counter() - start)
        if result.is_error:
            raise RuntimeError(f"{tool} failed under benchmark: {result.content}")
    return samples


async def throughput(open_session: SessionFactory, tool: str, clients: int, calls_each: int) -> float:
    """Calls per second with ``clients`` sessions each making ``calls_each`` back-to-back calls."""
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(open_session()) for _ in range(clients)]
        await asyncio.gather(*(sequential(s, tool, 0, warmup=10) for s in sessions))
        start = time.perf_counter()
        await asyncio.gather(*(sequential(s, tool, calls_each, warmup=0) for s in sessions))
        return clients * calls_each / (time.perf_counter() - start)


@asynccontextmanager
async def stdio_session(argv: list[str], env: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """An initialized client session over stdio to the process ``argv`` starts."""
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    with open(os.devnull, "w") as errlog:  # noqa: ASYNC230 - once per session, before timing
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def upstream_argv() -> list[str]:
    """The upstream every path uses: the package's test server over stdio."""
    return server_command("test")


# -- processes under test --------------------------------------------------------------------------


async def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> float:
    """Seconds until ``url`` answers any HTTP status; raises if the process exits or time runs out."""
    start = time.perf_counter()
    async with httpx2.AsyncClient(timeout=2.0) as http:
        while time.perf_counter() - start < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode} before answering")
            try:
                await http.post(url, content=b"{}", headers={"content-type": "application/json"})
                return time.perf_counter() - start
            except httpx2.TransportError:
                await asyncio.sleep(0.005)  # polling a port that is not open yet
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process this benchmark started, and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class ApproverDirs:
    """A throwaway approver configuration: config and data directories and one client token."""

    config_dir: Path
    data_dir: Path

    def cli(self, *args: str) -> list[str]:
        """The approver command line for these directories."""
        return [*APPROVER, "--config-dir", str(self.config_dir), "--data-dir", str(self.data_dir), *args]

    def token(self, client: str = "bench") -> str:
        """The bearer token of ``client`` (created on first use)."""
        out = subprocess.run(self.cli("token", "--client", client), env=BENCH_ENV, capture_output=True)
        if out.returncode != 0:
            raise RuntimeError(f"approver token failed: {out.stderr.decode()}")
        return out.stdout.decode().strip()


@contextlib.contextmanager
def approver_dirs(servers: dict[str, Any] | None = None) -> Iterator[ApproverDirs]:
    """Config with the test server upstream (or ``servers``) and :data:`BENCH_POLICY`, in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="approver-bench-") as root:
        paths = write_config(Path(root), servers or {"test": upstream_entry("test")}, BENCH_POLICY)
        yield ApproverDirs(paths.config_dir, paths.data_dir)


@dataclass(frozen=True)
class Served:
    """A running gateway process."""

    url: str
    pid: int


def source_tree(revision: str) -> Path:
    """approver's ``src`` as of a git revision, exported once under :data:`CACHE_DIR` (read-only git)."""
    root = Path(__file__).resolve().parent.parent
    sha = subprocess.run(
        ["git", "rev-parse", revision], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = CACHE_DIR / f"src-{sha[:12]}"
    if not (tree / "src" / "approver").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "src"], cwd=root, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree / "src"


@asynccontextmanager
async def approver_serve(dirs: ApproverDirs, source: Path | None = None) -> AsyncIterator[Served]:
    """``approver serve`` on a free port, once its MCP URL answers; ``source`` runs another ``src``."""
    port = free_port()
    env = BENCH_ENV | ({"PYTHONPATH": str(source)} if source else {})
    process = subprocess.Popen(dirs.cli("serve", "--port", str(port)), env=env, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        await wait_http(url, process)
        yield Served(url, process.pid)
    finally:
        stop(process)


def mcp_proxy_command() -> list[str]:
    """``mcp-proxy`` 0.13.0 from its own venv under :data:`CACHE_DIR`, installed on first use."""
    venv = CACHE_DIR / f"mcp-proxy-{MCP_PROXY_VERSION}"
    exe = venv / "bin" / "mcp-proxy"
    if not exe.exists():
        print(f"installing mcp-proxy {MCP_PROXY_VERSION} into {venv} ...", file=sys.stderr, flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, f"mcp-proxy=={MCP_PROXY_VERSION}"], check=True)
    return [str(exe)]


@asynccontextmanager
async def mcp_proxy() -> AsyncIterator[Served]:
    """mcp-proxy serving the test server (stdio) over Streamable HTTP; yields its MCP URL."""
    port = free_port()
    argv = [*mcp_proxy_command(), "--port", str(port), "--log-level", "WARNING", "--", *upstream_argv()]
    process = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        await wait_http(url, process)
        yield Served(url, process.pid)
    finally:
        stop(process)


def http_sessions(url: str, token: str | None) -> SessionFactory:
    """A factory of 2025-11-25 sessions over Streamable HTTP: the same client for every target."""
    return lambda: legacy_client(url, token)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process ``pid`` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """The resident set size of process ``pid`` in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def print_figures(figures: list[Figure], as_json: bool = False) -> None:
    """Figures as a plain list, or as JSON lines for ``run_all.py``."""
    for figure in figures:
        if as_json:
            print(json.dumps(dataclasses.asdict(figure)), flush=True)
        else:
            print(f"{figure.benchmark:24} {figure.measure:48} {figure.value_text():>14}  {figure.note}")
