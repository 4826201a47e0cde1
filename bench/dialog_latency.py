"""Time from a call leaving an HTTP client to the approval dialog being on screen (offscreen Qt).

Usage: ``python bench/dialog_latency.py [--calls N]``

The desktop app's own parts run as in ``approver``: a real :class:`~approver.service.Service` on
the qasync loop, the real :class:`~approver.ui.app.DesktopApp` and its approval dialog. A client
in another thread (its own event loop and HTTP connection) calls a tool the policy holds for
approval; the clock starts just before ``call_tool`` and stops at the dialog's first paint after
it is shown. The benchmark then denies the call through the broker and repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import qasync
from common import BENCH_POLICY, Figure, p50, print_figures
from PySide6.QtCore import QEvent, QObject, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from approver.config.autostart import Autostart
from approver.testing.harness import legacy_client, running_service, upstream_entry, write_config
from approver.ui.app import DesktopApp

NAME = "approval dialog"
HELD_CALL = ("test__write_note", {"path": "/home/someone/notes.txt", "text": "hello"})
"""A call BENCH_POLICY holds for a person (writes outside /tmp/bench)."""


class FirstPaint(QObject):
    """Notes the time of a widget's first paint after each show."""

    def __init__(self) -> None:
        super().__init__()
        self.shown = False
        self.painted: queue.SimpleQueue[float] = queue.SimpleQueue()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Show:
            self.shown = True
        elif event.type() == QEvent.Type.Paint and self.shown:
            self.shown = False
            self.painted.put(time.perf_counter())
        return False


def _client(
    url: str, token: str, calls: int, go: threading.Semaphore, sent: queue.SimpleQueue[float]
) -> None:
    """Make ``calls`` held calls, one each time ``go`` is released, noting when each leaves."""

    async def work() -> None:
        async with legacy_client(url, token) as session:
            await session.list_tools()
            for _ in range(calls):
                await asyncio.to_thread(go.acquire)
                sent.put(time.perf_counter())
                await session.call_tool(*HELD_CALL)

    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        runner.run(work())


async def _measure(calls: int, root: Path) -> list[float]:
    paths = write_config(root, {"test": upstream_entry("test")}, BENCH_POLICY)
    async with running_service(paths) as service:
        desktop = DesktopApp(
            service, tray_available=False, autostart=Autostart(environ={"XDG_CONFIG_HOME": str(root)})
        )
        watcher = FirstPaint()
        desktop.approvals.dialog.installEventFilter(watcher)
        token = service.tokens.get_or_create("bench")
        go, sent = threading.Semaphore(0), queue.SimpleQueue[float]()
        thread = threading.Thread(target=_client, args=(service.url, token, calls, go, sent), daemon=True)
        thread.start()
        samples = []
        for _ in range(calls):
            go.release()
            painted = await _next(watcher.painted)
            samples.append(painted - sent.get(timeout=5))
            for request in service.broker.pending():
                service.broker.deny(request.id, "benchmark")
        await asyncio.to_thread(thread.join, 30)
        desktop.close()
    return samples


async def _next(times: queue.SimpleQueue[float], timeout: float = 30.0) -> float:
    """The next time put on ``times``, waiting on the Qt loop (so the dialog can paint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return times.get_nowait()
        except queue.Empty:
            await asyncio.sleep(0.001)  # let the loop run: the dialog paints on it
    raise TimeoutError("the approval dialog did not appear")


def run(calls: int = 30) -> list[Figure]:
    """Entry point for ``run_all.py``: in a fresh QApplication on a qasync loop."""
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    qInstallMessageHandler(lambda *_: None)  # offscreen Qt warns that it cannot raise() windows
    with tempfile.TemporaryDirectory(prefix="approver-bench-") as root:
        os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            samples = runner.run(_measure(calls, Path(root)))
    worst = max(samples) * 1000
    return [
        Figure(
            NAME, "call sent -> dialog painted, p50", p50(samples), "ms", "<= 100 ms", p50(samples) <= 100
        ),
        Figure(
            NAME,
            "call sent -> dialog painted, worst",
            worst,
            "ms",
            "<= 100 ms",
            worst <= 100,
            f"{calls} calls",
        ),
    ]


def main() -> None:
    """Command line: run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print JSON lines (for run_all.py)")
    args = parser.parse_args()
    print_figures(run(args.calls), args.json)


if __name__ == "__main__":
    main()
