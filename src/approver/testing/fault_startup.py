"""Startup into a broken setup: approver must say what is wrong and what to do, never a traceback.

Each :class:`StartupProblem` breaks one thing (the port, ``servers.json``, ``policy.json``, the
data directory, the keyring) in a fresh config and data directory; :func:`startup_problem` runs
``approver serve`` or plain ``approver`` (which runs headless without a display) into it as a
real subprocess and checks the exit status and the message. Nothing here imports Qt.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import anyio

from approver.config.paths import Paths
from approver.testing.fault_processes import LISTENING, READY_TIMEOUT, approver_argv, headless_env, spawn
from approver.testing.fault_report import FaultReport, Notes
from approver.testing.harness import upstream_entry


@dataclass(frozen=True, slots=True)
class StartupProblem:
    """A broken environment approver must explain, and the words its message must contain."""

    name: str
    prepare: Callable[[Path, Paths], dict[str, str]]
    """Breaks the setup under the root; returns extra environment variables."""
    says: tuple[str, ...]
    """Fragments the stderr message must contain (what is wrong and what to do), lower case."""
    exit_code: int = 2
    """The expected status; 0 when approver starts anyway (a bad policy file)."""


def _config(paths: Paths, name: str, content: bytes | None) -> None:
    """Write ``content`` to config file ``name``; None puts a directory there (unreadable even by root)."""
    target = paths.config_dir / name
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)


def _secret_server(paths: Paths) -> None:
    entry = upstream_entry("test") | {"env": {"TOKEN": "${keyring:github}"}}
    _config(paths, "servers.json", json.dumps({"mcpServers": {"test": entry}}).encode())


def _setup(kind: str) -> Callable[[Path, Paths], dict[str, str]]:
    def prepare(root: Path, paths: Paths) -> dict[str, str]:
        match kind:
            case "servers-unreadable":
                _config(paths, "servers.json", None)
            case "servers-malformed":
                _config(paths, "servers.json", b'{"mcpServers": {"x": ')
            case "servers-not-utf8":
                _config(paths, "servers.json", b'{"mcpServers": {"\xff": {}}}')
            case "policy-unreadable":
                _config(paths, "policy.json", None)
            case "policy-malformed":
                _config(paths, "policy.json", b'{"version": "1", "default": "maybe"}')
            case "data-dir-unwritable":
                # A file where the data directory should be: refused even for root.
                shutil.rmtree(paths.data_dir)
                paths.data_dir.write_text("not a directory", "utf-8")
            case "audit-unopenable":
                (paths.data_dir / "audit.db").mkdir()
            case "keyring-locked":
                _secret_server(paths)
                return {"PYTHON_KEYRING_BACKEND": "approver.testing.harness.LockedKeyring"}
            case "keyring-locked-tokens":
                clients = {"version": 1, "clients": {"cursor": {"storage": "keyring"}}}
                paths.tokens_file.write_text(json.dumps(clients), "utf-8")
                return {"PYTHON_KEYRING_BACKEND": "approver.testing.harness.LockedKeyring"}
            case "no-keyring":
                _secret_server(paths)
                return {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
        return {}

    return prepare


STARTUP_PROBLEMS: Final = {
    problem.name: problem
    for problem in (
        StartupProblem("port-in-use", _setup("port-in-use"), ("in use", "--port")),
        StartupProblem(
            "servers-unreadable", _setup("servers-unreadable"), ("servers.json", "cannot be read", "readable")
        ),
        StartupProblem(
            "servers-malformed", _setup("servers-malformed"), ("servers.json", "not valid json", "line")
        ),
        StartupProblem("servers-not-utf8", _setup("servers-not-utf8"), ("servers.json", "utf-8", "save it")),
        StartupProblem(
            "policy-unreadable",
            _setup("policy-unreadable"),
            ("policy.json", "safe default", "policy check"),
            0,
        ),
        StartupProblem(
            "policy-malformed", _setup("policy-malformed"), ("policy.json", "/default", "policy check"), 0
        ),
        StartupProblem("data-dir-unwritable", _setup("data-dir-unwritable"), ("data", "--data-dir")),
        StartupProblem("audit-unopenable", _setup("audit-unopenable"), ("audit.db", "--data-dir")),
        StartupProblem("keyring-locked", _setup("keyring-locked"), ("keyring is locked", "unlock")),
        StartupProblem(
            "keyring-locked-tokens", _setup("keyring-locked-tokens"), ("'cursor'", "locked", "unlock"), 0
        ),
        StartupProblem("no-keyring", _setup("no-keyring"), ("no keyring", "${env:name}")),
    )
}
"""Every startup problem checked, by name."""


async def startup_problem(root: Path, name: str, command: Literal["serve", "app"] = "serve") -> FaultReport:
    """Start ``approver serve`` (or plain ``approver`` without a display) into problem ``name``.

    Expected: the exit status of :attr:`StartupProblem.exit_code`, a stderr message with every
    fragment of :attr:`StartupProblem.says`, and no traceback. A gateway that starts anyway is
    stopped with SIGTERM once it listens.
    """
    problem = STARTUP_PROBLEMS[name]
    notes = Notes()
    paths = Paths(root / "config", root / "data")
    paths.ensure()
    env = headless_env(**problem.prepare(root, paths))
    args = ["serve", "--port", "0"] if command == "serve" else ["app", "--port", "0"]
    with socket.socket() as taken:
        if name == "port-in-use":
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            args[-1] = str(taken.getsockname()[1])
        async with spawn(approver_argv(paths, *args), env) as proc:
            with anyio.fail_after(READY_TIMEOUT):
                listening = await proc.wait_line(proc.stderr, LISTENING)
                if listening is not None:
                    proc.process.send_signal(signal.SIGTERM)
                code = await proc.ended()
    message = proc.errors
    notes.see(f"{name} ({command}): exit {code}: " + " | ".join(line for line in proc.stderr if line))
    notes.expect(code == problem.exit_code, f"exit status {code}, expected {problem.exit_code}")
    notes.expect("Traceback" not in message, f"a traceback:\n{message}")
    missing = [fragment for fragment in problem.says if fragment not in message.lower()]
    notes.expect(not missing, f"the message lacks {missing}:\n{message}")
    return FaultReport(
        scenario=f"startup-{name}-{command}",
        faults=1,
        calls=0,
        reached_upstream=0,
        rows_checked=0,
        lost=0,
        verify_ok=True,
        findings=tuple(notes.findings),
        problems=tuple(notes.problems),
    )
