"""Who listens on a port: read from the real /proc, for our own sockets and another user's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

import approver
from approver.cli.port_owner import PortOwner, port_owner
from approver.testing.squatter import NOBODY, can_squat, squatter, system_python

needs_root = pytest.mark.skipif(not can_squat(), reason="starting a program as another user needs root")


def test_a_socket_of_this_process_is_found_with_its_pid_and_command() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        owner = port_owner(listener.getsockname()[1])

    assert owner is not None
    assert (owner.uid, owner.pid, owner.is_mine) == (os.geteuid(), os.getpid(), True)
    assert "python" in owner.command and "\n" not in owner.command
    assert owner.describe().startswith(f"pid {os.getpid()} (")


def test_a_port_nobody_listens_on_has_no_owner() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    assert port_owner(port) is None


@needs_root
def test_a_socket_of_another_user_names_that_user() -> None:
    with squatter() as (port, process):
        owner = port_owner(port)

    assert owner is not None
    assert (owner.uid, owner.pid, owner.is_mine) == (NOBODY, process.pid, False)
    assert "user nobody (uid 65534)" in owner.describe()


@needs_root
def test_a_user_who_cannot_see_the_process_is_told_whose_socket_it_is() -> None:
    python = system_python()
    assert python is not None
    source = Path(approver.__file__).parent.parent
    script = (
        f"import json, sys; sys.path.insert(0, {str(source)!r})\n"
        "from approver.cli.port_owner import port_owner\n"
        "owner = port_owner(int(sys.argv[1]))\n"
        "print(json.dumps([owner.uid, owner.pid, owner.describe()]))\n"
    )

    def become_nobody() -> None:
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        seen = subprocess.run(
            [python, "-c", script, str(listener.getsockname()[1])],
            capture_output=True,
            text=True,
            cwd="/",
            timeout=30,
            check=True,
            preexec_fn=become_nobody,
        )

    assert json.loads(seen.stdout) == [0, None, "user root (uid 0); its process is hidden from you"]


def test_a_uid_without_a_name_is_shown_as_a_number() -> None:
    assert PortOwner(4_000_000_000).user == "uid 4000000000"
