"""Worker-thread jobs of the audit window: results on the GUI thread, and objects freed there too."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable

from pytestqt.qtbot import QtBot

from approver.ui.jobs import Job

WAIT_MS = 5000


class LingeringJob(Job):
    """A job whose worker thread lives on after delivering its result, until ``gate`` opens."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def _run(self, work: Callable[[Job], object]) -> None:
        super()._run(work)
        self.gate.wait(WAIT_MS / 1000)


def test_a_job_delivers_its_result_on_the_gui_thread(qtbot: QtBot) -> None:
    job = Job()
    seen: list[tuple[object, object, str]] = []
    job.finished.connect(lambda result, error: seen.append((result, error, threading.current_thread().name)))
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        job.start(lambda _job: 42, [])
    assert seen == [(42, None, threading.main_thread().name)]
    assert not job.running


def test_a_finished_job_is_freed_on_the_gui_thread_never_on_its_worker(qtbot: QtBot) -> None:
    gate = threading.Event()
    job = LingeringJob(gate)
    freed_on: list[str] = []
    weakref.finalize(job, lambda: freed_on.append(threading.current_thread().name))
    before = set(threading.enumerate())
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        job.start(lambda _job: "done", [])
    (worker,) = set(threading.enumerate()) - before  # lingering at the gate
    del job  # the window lets go of the job while its worker is still running
    gc.collect()
    gate.set()
    worker.join(WAIT_MS / 1000)
    assert not worker.is_alive()
    gc.collect()
    # The worker has ended and dropped its reference; the job must not have been freed there.
    assert freed_on == []

    other = Job()
    with qtbot.waitSignal(other.finished, timeout=WAIT_MS):
        other.start(lambda _job: None, [])
    gc.collect()
    assert freed_on == [threading.main_thread().name]
