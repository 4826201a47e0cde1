"""Shared test setup: offscreen Qt, and a qasync loop for tests that run the gateway under Qt."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Hypothesis caches under ./.hypothesis by default: keep the repository clean.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "approver-hyp"))

import asyncio
import gc
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


@pytest.fixture(scope="session", autouse=True)
def _collect_garbage_on_the_main_thread() -> Iterator[None]:
    """Collect reference cycles on the main thread only, as the desktop app does (ui/collector.py).

    Automatic collection runs on whichever thread allocates; a worker thread (the audit writer,
    an upstream's stderr reader) collecting a cycle that holds a widget from an earlier test makes
    Qt destroy it on the wrong thread, and can crash the run.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@pytest.fixture(autouse=True)
def _collect_after_each_test() -> Iterator[None]:
    yield
    gc.collect()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    # Library housekeeping tasks (sse-starlette's shutdown watcher) outlive a test's server. Left
    # alone, their timers fire while Qt processes events outside the loop, where anyio fails.
    leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in leftovers:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))


@pytest.fixture
def qrun(qloop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """Run a coroutine on the qasync loop with a time bound, then cancel the tasks it left behind."""

    def run(coro: Coroutine[Any, Any, T], timeout: float = 40.0) -> T:
        try:
            return qloop.run_until_complete(asyncio.wait_for(coro, timeout))
        finally:
            _cancel_leftovers(qloop)

    return run


@pytest.fixture
def qloop(qapp: Any) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on pytest-qt's QApplication, as the desktop app runs.

    Drive coroutines with ``qloop.run_until_complete(...)``; Qt events are processed meanwhile.
    """
    import qasync

    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        _cancel_leftovers(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
