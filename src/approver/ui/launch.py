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
from pathlib import Path

import qasync
from PySide6.QtWidgets import QApplication

from approver.config.paths import Paths
from approver.config.settings import load_preferences, save_preferences
from approver.config.tokens import TokenStore
from approver.errors import ApproverError, ConfigError
from approver.gateway.front import DEFAULT_PORT
from approver.service import PortInUseError, Service, describe_holder, free_port, read_runtime
from approver.ui import startup
from approver.ui.app import DesktopApp, application, install_quit_on_signals
from approver.ui.collector import GuiCollector
from approver.ui.single_instance import InstanceServer, ask_running_to_show

Companion = Callable[[DesktopApp], Coroutine[None, None, None]]
"""A task started once the app runs (the demo's scripted agent)."""


PortChooser = Callable[[int, str, int], bool]
"""(port in use, who holds it, a free port) -> whether to use the free port instead."""


@dataclass
class DesktopOptions:
    """How to run the desktop app."""

    port: int | None = None
    """The gateway's port; None: the one remembered in settings.json, else the default."""
    token_store: TokenStore | None = None
    companion: Companion | None = None
    show_window: bool = False
    """Open the main window at start even when there is a tray (the demo does)."""
    approval_timeout: float = 120.0
    """Seconds a call waits for a person before it is denied."""
    choose_port: PortChooser | None = None
    """Asks whether to move off a port in use; default: a dialog on a real display, no elsewhere."""


def say(text: str) -> None:
    """A line for the terminal the app was started from."""
    print(f"approver: {text}", file=sys.stderr, flush=True)


def _on_screen() -> bool:
    return os.environ.get("QT_QPA_PLATFORM") != "offscreen"


def _show_error(text: str, file: Path | None = None) -> None:
    """Tell the user why approver did not start: on stderr, and in a dialog on a real display."""
    say(text)
    if _on_screen():
        # The event loop has ended, so a modal box cannot disturb any running task.
        startup.show_error(text, file)


def _choose_port(port: int, holder: str, other: int) -> bool:
    return _on_screen() and startup.ask_port(port, holder, other)


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


@dataclass
class _Problem:
    text: str
    file: Path | None = None
    port_in_use: bool = False


def run_desktop(paths: Paths, options: DesktopOptions) -> int:
    """Run the desktop app until Quit; returns the process exit status."""
    app = application()
    if ask_running_to_show(paths.data_dir):
        say(f"approver is already running for {paths.data_dir}; its window was brought to the front.")
        return 0
    running = read_runtime(paths)
    if running is not None and running.pid != os.getpid():
        who = "approver's desktop app" if running.app == "desktop" else "`approver serve`"
        stop = (
            "Quit it from its tray menu or window" if running.app == "desktop" else "Ctrl+C in its terminal"
        )
        _show_error(
            f"{who} is already running for {paths.data_dir} (pid {running.pid}, port {running.port}). "
            f"Stop it first ({stop}), then start the desktop app."
        )
        return 2
    try:
        port = options.port if options.port is not None else load_preferences(paths.settings_file).port
    except ConfigError as exc:
        _show_error(str(exc), Path(exc.file))
        return 2
    port = DEFAULT_PORT if port is None else port
    instance = InstanceServer(paths.data_dir)
    if not instance.listen():
        say("could not claim the single-instance socket; a second launch may not find this one")
    collector = GuiCollector(app)
    collector.start()  # before any worker thread (audit writer, stderr readers) starts
    try:
        while True:
            problem = _run_once(app, paths, options, port, instance)
            if problem is None or not problem.port_in_use:
                break
            holder = describe_holder(paths, port)
            other = free_port(after=port)
            say(f"port {port} is used by {holder}")
            if not (options.choose_port or _choose_port)(port, holder, other):
                break
            port = other
            try:
                save_preferences(paths.settings_file, port=port)
            except (ConfigError, OSError) as exc:
                say(f"the new port is used now but could not be remembered: {exc}")
            say(f"using port {port} from now on (remembered in {paths.settings_file})")
    finally:
        collector.stop()
        instance.close()
    if problem is not None:
        _show_error(problem.text, problem.file)
        return 2
    return 0


def _run_once(
    app: QApplication, paths: Paths, options: DesktopOptions, port: int, instance: InstanceServer
) -> _Problem | None:
    """Start the service on ``port`` and run the app until Quit; the problem that stopped it, if any."""
    problem: list[_Problem] = []

    async def main() -> None:
        quit_ = asyncio.Event()
        install_quit_on_signals(asyncio.get_running_loop(), quit_)
        service: Service | None = None
        try:
            service = Service(
                paths,
                port=port,
                token_store=options.token_store,
                approval_timeout=options.approval_timeout,
                app="desktop",
            )
            await service.start()
        except PortInUseError as exc:
            problem.append(_Problem(str(exc), port_in_use=True))
        except ConfigError as exc:
            problem.append(_Problem(str(exc), Path(exc.file) if exc.file else None))
        except ApproverError as exc:
            problem.append(_Problem(str(exc)))
        if problem:
            if service is not None:
                await service.stop()
            return
        assert service is not None
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
            instance.show_requested.disconnect(desktop.show_window)
            desktop.service.broker.close("shutdown", "approver is quitting")
            await service.stop()
            desktop.close()
            await _end_leftover_tasks()

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(main())
    return problem[0] if problem else None
