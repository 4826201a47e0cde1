"""A program of another local user listening on a port, as the one that waits for approver's port.

:func:`squatter` starts a small HTTP server as another user (``nobody`` by default) with the
system's Python, so it runs without access to this checkout's environment. It answers every
request with 401 and ``WWW-Authenticate: Bearer realm="approver"``, as approver's front door
does, and writes every request line it receives to stdout: what a program that wants client
tokens would do. Starting a process as another user needs root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

NOBODY: Final = 65534
"""The uid the squatter runs as by default."""

_SERVER: Final = r"""
import http.server, sys
class Impostor(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print(self.requestline, flush=True)
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Bearer realm="approver"')
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_POST = do_GET
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Impostor)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def can_squat() -> bool:
    """Whether this process may start a program as another user (it is root, and has a system Python)."""
    return os.geteuid() == 0 and system_python() is not None


def system_python() -> str | None:
    """A Python another user can run (``/usr/bin/python3``), or None."""
    found = shutil.which("python3", path="/usr/bin:/bin")
    return found if found and os.access(found, os.X_OK) else None


@contextmanager
def squatter(uid: int = NOBODY) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """A squatter running as ``uid``: its port, and its process (read its ``stdout`` for requests)."""
    python = system_python()
    if python is None:
        raise RuntimeError("no system python3 to run the squatter with")

    def become() -> None:
        os.setgid(uid)
        os.setuid(uid)

    process = subprocess.Popen(
        [python, "-c", _SERVER],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
        preexec_fn=become,
    )
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline()), process
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
