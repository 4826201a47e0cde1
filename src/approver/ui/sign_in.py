"""Signing in to a remote upstream from the desktop app: the system browser, and what came of it.

A person starts a sign-in (the Servers window's Sign in button); :class:`SignInRunner` runs
:meth:`approver.service.Service.sign_in` on the event loop, opens the authorization page in the
system browser (``QDesktopServices``, else ``$BROWSER``), and reports through its signals. The
page's address is reported too, so the window can show it for a person whose browser did not
open. Nothing an agent can reach starts a sign-in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices

from approver.service import Service
from approver.upstream.oauth.browser import check_sign_in_url, open_in_browser
from approver.upstream.oauth.signin import SignInError, describe

logger = logging.getLogger(__name__)

Opener = Callable[[str], Awaitable[bool]]
"""Opens an authorization URL in a browser; False when none opened."""


async def open_with_desktop(url: str) -> bool:
    """The desktop's browser (``xdg-open`` and friends, no shell); ``$BROWSER`` when that fails."""
    check_sign_in_url(url, "authorization address")
    if QDesktopServices.openUrl(QUrl(url)):
        return True
    return await open_in_browser(url)


class SignInRunner(QObject):
    """Runs sign-ins a person started, one per server at a time."""

    waiting = Signal(str, str, bool)
    """(server, authorization URL, whether a browser opened it): the person's turn."""
    finished = Signal(str, bool, str)
    """(server, whether it worked, a sentence for the person)."""

    def __init__(
        self, service: Service, opener: Opener = open_with_desktop, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._opener = opener
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def running(self, server: str) -> bool:
        """Whether a sign-in to ``server`` is under way."""
        return server in self._tasks

    def start(self, server: str) -> None:
        """Start signing in to ``server`` (nothing new while one runs)."""
        if server not in self._tasks:
            self._tasks[server] = asyncio.ensure_future(self._run(server))

    def cancel_all(self) -> None:
        """Stop every sign-in under way (the app is quitting)."""
        for task in self._tasks.values():
            task.cancel()

    async def _run(self, server: str) -> None:
        async def show(url: str) -> None:
            opened = await self._opener(url)
            self.waiting.emit(server, url, opened)

        try:
            result = await self._service.sign_in(server, show)
        except asyncio.CancelledError:
            self.finished.emit(server, False, f"The sign-in to {server} was stopped.")
            raise
        except SignInError as exc:
            self.finished.emit(server, False, f"Sign-in failed: {exc}")
        except Exception as exc:
            logger.exception("sign-in to %s failed", server)
            self.finished.emit(server, False, f"Sign-in to {server} failed: {describe(exc)}")
        else:
            scope = f" (scope: {result.scope})" if result.scope else ""
            self.finished.emit(
                server, True, f"Signed in to {server}{scope}. The credentials are in {result.where}."
            )
        finally:
            self._tasks.pop(server, None)
