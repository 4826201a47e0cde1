"""Start the desktop app: one instance, the gateway on the qasync loop, clean quit.

``approver`` (no arguments) and ``approver demo`` end up in :func:`run_desktop`. It refuses to
start a second copy (the first is asked to show itself instead), reports startup problems as
messages rather than tracebacks, and on quit denies and records waiting calls before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass

import qasync
from PySide6.QtWidgets import QMessageBox

from approver.config.paths import Paths
from approver.config.tokens import TokenStore
from approver.errors import ApproverError
from approver.service import Service, read_runtime
from approver.ui.app import DesktopApp, application, install_quit_on_signals
from approver.ui.collector import GuiCollector
from approver.ui.single_instance import InstanceServer, ask_running_to_show

Companion = Callable[[DesktopApp], Coroutine[None, None, None]]
"""A task started once the app runs (the demo's scripted agent)."""


@dataclass
class DesktopOptions:
    """How to run the desktop app."""

    port: int
    token_store: TokenStore | None = None
    companion: Companion | None = None
    show_window: bool = False
    """Open the main window at start even when there is a tray (the demo does)."""
    approval_timeout: float = 120.0
    """Seconds a call waits for a person before it is denied."""


def say(text: str) -> None:
    """A line for the terminal the app was started from."""
    print(f"approver: {text}", file=sys.stderr, flush=True)


def _show_error(text: str) -> None:
    """Tell the user why approver did not start: on stderr, and in a dialog on a real display."""
    say(text)
    if os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        # The event loop has ended, so a modal box cannot disturb any running task.
        QMessageBox.critical(None, "approver could not start", text)


async def _end_leftover_tasks() -> None:
    """Cancel what libraries left running (sse-starlette's shutdown watcher) while the loop runs.

    Left to the runner's cleanup, such a task wakes while Qt processes events outside the loop,
    and anyio prints a traceback on the way out.
    """
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def run_desktop(paths: Paths, options: DesktopOptions) -> int:
    """Run the desktop app until Quit; returns the process exit status."""
    app = application()
    if ask_running_to_show(paths.data_dir):
        say(f"approver is already running for {paths.data_dir}; its window was brought to the front.")
        return 0
    running = read_runtime(paths)
    if running is not None and running.pid != os.getpid():
        _show_error(
            f"`approver serve` is already running for {paths.data_dir} (pid {running.pid}, port "
            f"{running.port}). Stop it first (Ctrl+C in its terminal), then start the desktop app."
        )
        return 2
    instance = InstanceServer(paths.data_dir)
    if not instance.listen():
        say("could not claim the single-instance socket; a second launch may not find this one")
    problem: list[str] = []

    async def main() -> None:
        quit_ = asyncio.Event()
        install_quit_on_signals(asyncio.get_running_loop(), quit_)
        try:
            service = Service(
                paths,
                port=options.port,
                token_store=options.token_store,
                approval_timeout=options.approval_timeout,
            )
            await service.start()
        except ApproverError as exc:
            problem.append(str(exc))
            return
        desktop = DesktopApp(service)
        for line in service.describe_startup():
            say(line)
        say(f"gateway listening on {service.url}")
        instance.show_requested.connect(desktop.show_window)
        desktop.quit_requested.connect(quit_.set)
        if options.show_window:
            desktop.show_window()
        companion = asyncio.create_task(options.companion(desktop)) if options.companion else None
        try:
            await quit_.wait()
        finally:
            if companion is not None:
                companion.cancel()
                with contextlib.suppress(BaseException):
                    await companion
            desktop.service.broker.close("shutdown", "approver is quitting")
            await service.stop()
            desktop.close()
            await _end_leftover_tasks()

    collector = GuiCollector(app)
    collector.start()  # before any worker thread (audit writer, stderr readers) starts
    try:
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            runner.run(main())
    finally:
        collector.stop()
    instance.close()
    if problem:
        _show_error(problem[0])
        return 2
    return 0
