"""Who listens on a local TCP port: the user always (on Linux), the process when it is visible.

When approver is not running, any local user can listen on its port, and a client given a
URL with a token in it would then hand the token to that program. ``approver doctor`` says who
holds the port, so a port taken by someone else is noticed. On Linux, ``/proc/net/tcp`` and
``/proc/net/tcp6`` name the user of every listening socket; the process is found by the socket's
inode among the open files in ``/proc/PID/fd``, which are readable only for your own processes
(all of them as root). Elsewhere ``lsof`` is asked, if it exists.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from approver.visible import reveal_text

_LISTEN: Final = "0A"
"""The state of a listening socket in ``/proc/net/tcp``."""
_LOOPBACK_OR_ANY: Final = frozenset(
    {
        "0100007F",  # 127.0.0.1
        "00000000",  # 0.0.0.0
        "00000000000000000000000000000000",  # ::
        "00000000000000000000000001000000",  # ::1
        "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1
        "0000000000000000FFFF000000000000",  # ::ffff:0.0.0.0
    }
)
"""Local addresses (as ``/proc/net/tcp`` spells them on a little-endian machine) that take
connections to 127.0.0.1."""
_LSOF_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class PortOwner:
    """Who holds a listening socket."""

    uid: int
    pid: int | None = None
    """None when the process is not visible (another user's, and this is not root)."""
    command: str = ""

    @property
    def user(self) -> str:
        """The user's login name, or ``uid N`` when it has none."""
        try:
            import pwd  # POSIX only
        except ImportError:
            return f"uid {self.uid}"
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return f"uid {self.uid}"

    @property
    def is_mine(self) -> bool:
        """Whether the socket belongs to the user running this process."""
        return self.uid == os.geteuid()

    def describe(self) -> str:
        """``pid 42 (python3 -m http.server), user alice (uid 1000)``, or as much of it as is known."""
        who = f"user {self.user} (uid {self.uid})" if not self.user.startswith("uid ") else self.user
        if self.pid is None:
            return f"{who}; its process is hidden from you" if not self.is_mine else who
        command = f" ({self.command})" if self.command else ""
        return f"pid {self.pid}{command}, {who}"


def port_owner(port: int, proc: Path = Path("/proc")) -> PortOwner | None:
    """Who listens on ``port`` for 127.0.0.1, or None when nobody does or it cannot be told."""
    found = _from_proc(port, proc)
    if found is None and not (proc / "net" / "tcp").exists():
        return _from_lsof(port)
    if found is None:
        return None
    uid, inode = found
    pid = _pid_of_socket(inode, proc)
    return PortOwner(uid, pid, _command(pid, proc) if pid is not None else "")


def _from_proc(port: int, proc: Path) -> tuple[int, int] | None:
    """(uid, inode) of the socket listening on ``port`` for loopback, from ``/proc/net/tcp*``."""
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / name).read_text("ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and address.upper() in _LOOPBACK_OR_ANY:
                return int(fields[7]), int(fields[9])
    return None


def _pid_of_socket(inode: int, proc: Path) -> int | None:
    target = f"socket:[{inode}]"
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # not ours, or gone since listed
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return int(entry.name)
    return None


def _command(pid: int, proc: Path) -> str:
    try:
        argv = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    # Another user's program chose this text: one line, and nothing a terminal would act on.
    text = reveal_text(" ".join(" ".join(part.decode("utf-8", "replace").split()) for part in argv if part))
    return text if len(text) <= 120 else text[:117] + "..."


_LSOF_LINE: Final = re.compile(r"^(?P<field>[pcu])(?P<value>.*)$")


def _from_lsof(port: int) -> PortOwner | None:
    lsof = shutil.which("lsof")
    if lsof is None:
        return None
    try:
        output = subprocess.run(
            [lsof, "-nP", f"-iTCP@127.0.0.1:{port}", "-sTCP:LISTEN", "-Fpcu"],
            capture_output=True,
            text=True,
            timeout=_LSOF_TIMEOUT,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    fields: dict[str, str] = {}
    for line in output.splitlines():
        if match := _LSOF_LINE.match(line):
            fields.setdefault(match["field"], match["value"])
    if "u" not in fields:
        return None
    pid = int(fields["p"]) if fields.get("p", "").isdigit() else None
    return PortOwner(int(fields["u"]), pid, reveal_text(fields.get("c", "")))
