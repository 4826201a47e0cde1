"""``approver doctor``: check what approver needs here and say what to fix.

The checks cover Python and PySide6, Qt's libraries, the display and the tray, the keyring, the
port, ``servers.json`` and ``policy.json``, each upstream server, and which MCP clients are
routed through approver.

Each check returns one :class:`Check` (``ok``, ``warn`` or ``fail``) with a fix when there is
something to do. Nothing here imports Qt: Qt is probed in a child process
(:mod:`approver.cli.qt_probe`). Upstream servers are checked by starting each enabled one briefly,
as ``approver tools`` does, with its stderr in a throwaway directory, so a running gateway's
logs stay untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import http.client
import importlib.metadata
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import keyring
from keyring.backend import KeyringBackend

from approver.cli.port_owner import PortOwner, port_owner
from approver.cli.qt_probe import probe_qt
from approver.config.paths import Paths
from approver.config.schema import is_missing_file_uri, schema_uri
from approver.config.secrets import backend_name, describe_keyring_error
from approver.config.servers import KEYRING_SERVICE, SecretResolver, ServersConfig, load_servers
from approver.errors import ConfigError

KEYRING_TIMEOUT: Final = 10.0
"""Seconds to wait for the keyring to answer (a locked Secret Service may show an unlock prompt)."""

HTTP_TIMEOUT: Final = 3.0
"""Seconds to wait for whatever listens on the gateway's port to answer."""

_PROBE_USER: Final = "approver-doctor-probe"
"""A keyring entry that is never written: reading it shows whether the keyring answers."""


class Status(enum.StrEnum):
    """How a check came out."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    """The result of one check: what was found and, unless it is fine, what to do."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    """A check that passed."""
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str = "") -> Check:
    """A check that found something that works, but not fully."""
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str = "") -> Check:
    """A check that found something approver cannot work with."""
    return Check(name, Status.FAIL, detail, fix)


# -- Python and Qt --------------------------------------------------------------------------------


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    """Python 3.11 or newer."""
    text = ".".join(map(str, version))
    if version[:2] < (3, 11):
        return fail("python", f"Python {text}", "approver needs Python 3.11 or newer")
    return ok("python", f"Python {text} ({sys.executable})")


def check_pyside(version: str | None, python: tuple[int, int] = sys.version_info[:2]) -> Check:
    """PySide6 is installed, and not 6.12 on Python 3.11 (it crashes under qasync there)."""
    if version is None:
        return fail("pyside6", "PySide6 is not installed", "pip install 'pyside6-essentials>=6.10,<6.12'")
    major_minor = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if python < (3, 12) and major_minor >= (6, 12):
        return fail(
            "pyside6",
            f"PySide6 {version} on Python {python[0]}.{python[1]} crashes the desktop app after a while",
            "pip install 'pyside6-essentials>=6.10,<6.12' (or use Python 3.12)",
        )
    return ok("pyside6", f"PySide6 {version}")


def installed_pyside_version() -> str | None:
    """The installed PySide6 version, read from package metadata without importing Qt."""
    for distribution in ("PySide6_Essentials", "PySide6"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(distribution)
    return None


def display_reason(environ: dict[str, str]) -> str | None:
    """Why no window can be shown here, or None when one can (same rule as ``approver``)."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    if any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return None
    return "no display: neither DISPLAY nor WAYLAND_DISPLAY is set"


def check_qt(environ: dict[str, str], timeout: float) -> list[Check]:
    """Qt's libraries, the display and the tray, probed in a child process.

    Without a display the libraries are still checked, on Qt's offscreen platform.
    """
    no_display = display_reason(environ)
    probe = probe_qt(dict(environ, QT_QPA_PLATFORM="offscreen") if no_display else environ, timeout)
    if probe.problem is not None:
        fix = (
            f"install what Qt needs: sudo apt-get install {' '.join(probe.packages)}"
            if probe.packages
            else ""
        )
        if "connect to display" in probe.problem:
            fix = "check DISPLAY (or WAYLAND_DISPLAY), or run `approver serve` without a window"
        if "QT_QPA_PLATFORM" in probe.problem:
            fix = "unset QT_QPA_PLATFORM, or set it to a plugin that exists"
        return [fail("qt", probe.problem, fix)]
    checks = [ok("qt", f"Qt {probe.qt_version} loads")]
    if no_display:
        checks.append(
            warn(
                "display",
                no_display,
                "`approver` runs the gateway headless here and calls that need approval are denied; "
                "run it in a desktop session to get the approval dialog",
            )
        )
        checks.append(warn("tray", "not checked without a display"))
        return checks
    if probe.platform == "offscreen":
        checks.append(
            warn("display", "QT_QPA_PLATFORM=offscreen: windows are not visible", "unset QT_QPA_PLATFORM")
        )
    else:
        checks.append(ok("display", f"Qt platform {probe.platform}"))
    if probe.tray:
        checks.append(ok("tray", "a system tray is available"))
    else:
        checks.append(
            warn(
                "tray",
                "no system tray: approver shows its main window instead",
                "on GNOME, the AppIndicator and KStatusNotifierItem extension adds a tray",
            )
        )
    return checks


# -- keyring --------------------------------------------------------------------------------------


def check_keyring(backend: KeyringBackend | None = None, timeout: float = KEYRING_TIMEOUT) -> Check:
    """Which keyring backend is in use, and whether it answers (a locked one does not)."""
    backend = backend if backend is not None else keyring.get_keyring()
    name = backend_name(backend)
    module = type(backend).__module__
    if module.startswith("keyring.backends.fail"):
        return warn(
            "keyring",
            "no keyring backend: client tokens are kept in tokens.json (0600), "
            "and ${keyring:NAME} references cannot be resolved",
            "install and start a Secret Service (e.g. gnome-keyring), or use ${env:NAME} for secrets",
        )
    outcome: list[BaseException | None] = []

    def probe() -> None:
        try:
            backend.get_password(KEYRING_SERVICE, _PROBE_USER)
        except Exception as exc:  # any backend failure is what this check reports
            outcome.append(exc)
        else:
            outcome.append(None)

    # A daemon thread: a keyring stuck on an unlock prompt must not keep doctor from exiting.
    thread = threading.Thread(target=probe, name="doctor-keyring", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return warn(
            "keyring", f"{name} did not answer within {timeout:g} s", "unlock the keyring, then retry"
        )
    if outcome[0] is not None:
        return fail("keyring", f"{name}: {describe_keyring_error(outcome[0])}")
    if module.startswith("keyrings.alt"):
        return warn(
            "keyring",
            f"{name} stores secrets in a file, obfuscated but not encrypted",
            "prefer a Secret Service (gnome-keyring, KeePassXC) if this machine has one",
        )
    return ok("keyring", f"{name} answers")


# -- the port -------------------------------------------------------------------------------------


def check_port(
    port: int,
    running_pid: int | None = None,
    find_owner: Callable[[int], PortOwner | None] = port_owner,
) -> Check:
    """Whether ``port`` on 127.0.0.1 is free, served by approver, or taken by something else.

    approver is recognised by its front door: a request without a token gets 401 with
    ``WWW-Authenticate: Bearer realm="approver"``. Anything can answer that, so the socket's
    owner is looked up too (``find_owner``, :func:`~approver.cli.port_owner.port_owner`): a
    port held by another user fails, since a client would hand that user its token.
    ``running_pid`` is the pid in this data directory's ``gateway.json`` when that gateway is
    alive.
    """
    holder = find_owner(port)
    check = _check_port(port, running_pid, holder)
    if holder is not None and not holder.is_mine:
        detail = f"port {port} is held by {holder.describe()}, not by you"
        fix = (
            "a program of another user can collect the token of every client you point at this port: "
            f"stop using it, start approver with --port N (not {port}), and prefer `approver connect`"
        )
        return fail("port", detail, fix)
    if holder is not None and check.status is not Status.OK and holder.pid != running_pid:
        return Check(
            check.name, check.status, f"{check.detail}; it is held by {holder.describe()}", check.fix
        )
    return check


def _check_port(port: int, running_pid: int | None, holder: PortOwner | None) -> Check:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        connection.request("GET", "/mcp")
        response = connection.getresponse()
        realm = response.getheader("www-authenticate", "")
        status = response.status
    except ConnectionRefusedError:
        if running_pid is not None:
            return warn("port", f"gateway.json names pid {running_pid} on port {port}, but nothing answers")
        return ok("port", f"port {port} is free")
    except (OSError, http.client.HTTPException) as exc:
        return fail(
            "port", f"port {port} is taken by a program that does not answer HTTP ({exc})", _other_port(port)
        )
    finally:
        connection.close()
    if status == 401 and 'realm="approver"' in realm:
        if running_pid is not None and (holder is None or holder.pid in (None, running_pid)):
            return ok("port", f"approver is running on port {port} (pid {running_pid})")
        return warn(
            "port",
            f"an approver with another data directory is running on port {port}",
            "use the same --data-dir, or start this one with --port N",
        )
    return fail("port", f"port {port} is used by another program (HTTP {status})", _other_port(port))


def _other_port(port: int) -> str:
    return f"stop that program, or start approver with --port N (not {port})"


# -- config files ---------------------------------------------------------------------------------


def check_servers(paths: Paths, resolver: SecretResolver) -> tuple[Check, ServersConfig | None]:
    """``servers.json`` is valid and every ``${...}`` reference resolves; also returns the servers."""
    file = paths.servers_file
    try:
        servers = load_servers(file, resolver)
    except ConfigError as exc:
        fix = "fix the file (see the README, section servers.json)"
        if "approver secret set" in exc.message:
            fix = "store the secret with the command above"
        return fail("servers.json", str(exc), fix), None
    if servers.missing:
        return ok("servers.json", f"no {file}: approver starts with no upstream servers"), servers
    stale = _stale_schema(file, "servers")
    if stale is not None:
        return stale, servers
    return ok("servers.json", f"{file}: {len(servers.enabled)} enabled of {len(servers.servers)}"), servers


def check_policy(paths: Paths) -> Check:
    """``policy.json`` is valid (no file is fine: the safe default applies)."""
    from approver.policy.engine import Policy

    file = paths.policy_file
    if not file.exists():
        return ok("policy.json", f"no {file}: the safe default policy applies")
    try:
        policy = Policy.from_file(file)
    except ConfigError as exc:
        return fail("policy.json", str(exc), "fix the file; `approver policy check` checks it")
    stale = _stale_schema(file, "policy")
    if stale is not None:
        return stale
    return ok("policy.json", f"{file}: {len(policy.tool_patterns)} tool rules")


def _stale_schema(file: Path, schema: str) -> Check | None:
    """A warning when ``$schema`` is a ``file:`` URI that no longer exists (approver moved)."""
    try:
        reference = json.loads(file.read_text("utf-8")).get("$schema")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(reference, str) or not is_missing_file_uri(reference):
        return None
    return warn(
        file.name,
        f"{file}: $schema points to a file that does not exist: {reference}",
        f'set "$schema" to "{schema_uri(schema)}"',
    )


# -- upstreams ------------------------------------------------------------------------------------


def check_upstreams(servers: ServersConfig, timeout: float) -> list[Check]:
    """Start every enabled server once, list its tools, stop it; one check per server."""
    from approver.upstream.connection import Upstream
    from approver.upstream.status import UpstreamState

    checks = [ok(f"server {s.name}", "disabled: not started") for s in servers.servers if s.disabled]
    if not servers.enabled:
        return checks

    async def probe(logs: Path) -> list[Check]:
        upstreams = [Upstream(config, logs) for config in servers.enabled]
        tasks = [asyncio.create_task(u.run()) for u in upstreams]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(u.wait_settled() for u in upstreams)), timeout)
        results = []
        for upstream in upstreams:
            name = f"server {upstream.name}"
            if upstream.state is UpstreamState.READY:
                results.append(ok(name, f"ready, {len(upstream.catalog.tools)} tools"))
            elif upstream.state is UpstreamState.NEEDS_SIGN_IN:
                results.append(
                    warn(name, f"Sign in needed ({upstream.error})", f"run `approver login {upstream.name}`")
                )
            elif upstream.error:
                results.append(
                    fail(name, f"{upstream.state.value}: {upstream.error}", "check its entry in servers.json")
                )
            else:
                results.append(fail(name, f"no answer within {timeout:g} s", "check that the server starts"))
            upstream.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        return results

    with tempfile.TemporaryDirectory(prefix="approver-doctor-") as logs:
        return checks + asyncio.run(probe(Path(logs)))


# -- clients --------------------------------------------------------------------------------------


def check_clients(home: Path | None = None) -> list[Check]:
    """For each MCP client with a config file here: does it reach its servers only through approver?

    Clients without a config file (not installed) or without servers are left out.
    """
    from approver.clients.formats import CLIENTS
    from approver.clients.status import routing_status

    checks = []
    for fmt in CLIENTS.values():
        status = routing_status(fmt, home=home)
        name = f"client {fmt.name}"
        if status.state == "routed":
            checks.append(ok(name, status.detail))
        elif status.state in ("partial", "direct"):
            checks.append(warn(name, status.detail, f"approver install {fmt.name}"))
        elif status.state == "unreadable":
            checks.append(warn(name, status.detail, f"fix or remove {status.path}"))
    if not checks:
        checks.append(ok("clients", "no MCP client configuration found (Claude, Cursor, VS Code, Windsurf)"))
    return checks


# -- all together ---------------------------------------------------------------------------------


def run_checks(
    paths: Paths,
    port: int,
    *,
    upstreams: bool = True,
    timeout: float = 20.0,
    environ: dict[str, str] | None = None,
) -> list[Check]:
    """Every check, in the order a person would fix things."""
    from approver.service import read_runtime

    env = dict(os.environ if environ is None else environ)
    checks = [check_python(), check_pyside(installed_pyside_version())]
    checks += check_qt(env, timeout)
    checks.append(check_keyring())
    running = read_runtime(paths)
    checks.append(check_port(running.port if running else port, running.pid if running else None))
    servers_check, servers = check_servers(paths, SecretResolver())
    checks += [servers_check, check_policy(paths)]
    if upstreams and servers is not None:
        checks += check_upstreams(servers, timeout)
    checks += check_clients()
    return checks


def as_json(checks: list[Check]) -> list[dict[str, Any]]:
    """The checks as JSON-ready dicts."""
    return [{"name": c.name, "status": c.status.value, "detail": c.detail, "fix": c.fix} for c in checks]
