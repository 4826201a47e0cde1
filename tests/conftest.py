"""Shared test setup: offscreen Qt, and fixtures for real files."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
