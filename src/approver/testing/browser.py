"""A stand-in for a person's browser in sign-in tests: fetch the authorization URL, follow its redirects.

``python -m approver.testing.browser URL`` requests ``URL`` and follows each redirect by hand
until a request is answered without one; the last hop is approver's redirect listener on
127.0.0.1. With ``APPROVER_TEST_BROWSER_LOG`` set, each URL it opens is appended to that file.
``$BROWSER`` must name a single program, so :func:`write_browser_script` writes one that runs
this module.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urljoin

import httpx2

LOG_ENV: Final = "APPROVER_TEST_BROWSER_LOG"
_MAX_HOPS: Final = 10


def visit(url: str) -> int:
    """Open ``url`` and follow redirects; returns the final HTTP status."""
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(url + "\n")
    with httpx2.Client(follow_redirects=False, timeout=30.0) as client:
        for _ in range(_MAX_HOPS):
            response = client.get(url)
            location = response.headers.get("location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                return response.status_code
            url = urljoin(url, location)
    return 508


def write_browser_script(directory: Path) -> Path:
    """An executable that runs this module with this Python, for ``$BROWSER``."""
    script = directory / "test-browser"
    script.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m approver.testing.browser "$@"\n', encoding="utf-8"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def main(argv: Sequence[str] | None = None) -> None:
    """Visit each URL given; exit 1 when one did not end in a 2xx answer."""
    urls = list(sys.argv[1:] if argv is None else argv)
    statuses = [visit(url) for url in urls]
    sys.exit(0 if urls and all(200 <= status < 300 for status in statuses) else 1)


if __name__ == "__main__":
    main()
