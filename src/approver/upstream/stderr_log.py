"""An upstream's stderr, copied into its log file line by line with secrets redacted.

A stdio server gets its token in its environment or arguments, and servers do print their
environment or their command line when they fail. So the subprocess does not write to the log
file itself: its stderr is a pipe, and one thread per connection copies each line into the file
through a :class:`~approver.audit.redact.Redactor`. The file is rotated past a size and is readable only
by the user.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Final, TextIO

from approver.audit.redact import Redactor

ROTATE_BYTES: Final = 5 * 1024 * 1024
"""A log file bigger than this when a connection starts is moved to ``NAME.log.1``."""

MAX_LINE: Final = 64 * 1024
"""A line longer than this is written in pieces (each redacted on its own)."""

_READ_SIZE: Final = 65536


def open_private_log(path: Path, header: str) -> TextIO:
    """Open ``path`` for appending (mode 0600, rotated past :data:`ROTATE_BYTES`), after a header line."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if path.stat().st_size > ROTATE_BYTES:
            os.replace(path, path.with_suffix(".log.1"))
    except FileNotFoundError:
        pass
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    handle = open(descriptor, "a", encoding="utf-8", errors="replace")  # noqa: SIM115 - the caller closes it
    handle.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {header} ---\n")
    handle.flush()
    return handle


class RedactingLog:
    """A pipe whose write end is a subprocess's stderr; a thread copies it, redacted, to a log file.

    Pass :attr:`stream` as the subprocess's stderr, call :meth:`spawned` once the subprocess has
    its own copy, and :meth:`close` at the end. :meth:`drained` says when everything the
    subprocess wrote is in the file.
    """

    def __init__(self, path: Path, redactor: Redactor, header: str) -> None:
        self.path = path
        self._redactor = redactor
        self._log = open_private_log(path, header)
        read_end, write_end = os.pipe()
        self._reader = os.fdopen(read_end, "rb", buffering=0)
        self.stream: TextIO = os.fdopen(write_end, "w", encoding="utf-8")
        """The write end, for ``stdio_client(..., errlog=stream)``."""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._copy, name=f"stderr:{path.stem}", daemon=True)
        self._thread.start()

    def spawned(self) -> None:
        """Close this process's copy of the write end, so the copy ends when the subprocess does."""
        if not self.stream.closed:
            self.stream.close()

    def drained(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every writer to close the pipe and the copy to finish."""
        return self._done.wait(timeout)

    def close(self) -> None:
        """Stop accepting output; the thread finishes once every copy of the write end is closed.

        A grandchild that inherited the pipe and keeps it open keeps the (daemon) thread alive;
        it never blocks the caller.
        """
        self.spawned()

    def _copy(self) -> None:
        pending = b""
        try:
            while chunk := self._reader.read(_READ_SIZE):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if len(pending) > MAX_LINE:
                    lines.append(pending)
                    pending = b""
                if lines:
                    self._write(b"\n".join(lines) + b"\n")
            if pending:
                self._write(pending + b"\n")
        except (OSError, ValueError):
            pass  # the log or the pipe went away: nothing left to copy to or from
        finally:
            self._reader.close()
            self._log.close()
            self._done.set()

    def _write(self, data: bytes) -> None:
        # Whole lines at once, so a multi-line secret (a PEM key) within one read is caught too.
        self._log.write(self._redactor.redact_text(data.decode("utf-8", "replace")))
        self._log.flush()
