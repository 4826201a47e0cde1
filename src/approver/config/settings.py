"""Load ``settings.json``: optional settings beside ``servers.json``: the OTLP export, and what the
desktop app remembers (:class:`DesktopPreferences`: a chosen port, the last export folder).

A missing file means every default, and the default is that nothing leaves the machine. The
OpenTelemetry export is on only when the file has an ``otlp`` block (without
``"enabled": false``) or when the environment opts in with ``APPROVER_OTLP=1``; the standard
``OTEL_EXPORTER_OTLP_*`` variables alone never turn it on, since other programs set them too.
Header values may use ``${keyring:NAME}`` and ``${env:NAME}`` like ``servers.json``; the
resolved values are hidden from ``repr`` and never appear in an error.
"""

from __future__ import annotations

import copy
import json
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from approver.config.paths import write_private_text
from approver.config.schema import load_json_file, schema_uri, validate
from approver.config.servers import SecretResolver
from approver.errors import ConfigError

SCHEMA_NAME: Final = "settings"
"""The schema ``settings.json`` is validated against."""

OTLP_ENV: Final = "APPROVER_OTLP"
"""Set to ``1`` to turn the OTLP export on without a settings file (the endpoint then comes
from ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""

LOGS_PATH: Final = "/v1/logs"
"""The OTLP/HTTP path for logs, added to a base endpoint."""

DEFAULT_TIMEOUT: Final = 5.0
"""Seconds one export request may take, unless the settings say otherwise."""

_TRUE: Final = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, repr=False)
class OtlpSettings:
    """Where and how to send audit events as OTLP log records."""

    endpoint: str
    """The full OTLP/HTTP logs URL, ending in ``/v1/logs`` unless the user gave another path."""
    headers: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))
    resource: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))
    """Extra resource attributes (``service.name`` is ``approver`` unless set here)."""
    include_arguments: bool = False
    """Send the stored (redacted) arguments too."""
    timeout: float = DEFAULT_TIMEOUT
    secrets: frozenset[str] = frozenset()
    """Keyring values resolved into :attr:`headers`."""

    def describe(self) -> str:
        """The endpoint without credentials or query, for startup messages."""
        parts = urlsplit(self.endpoint)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    def __repr__(self) -> str:
        headers = dict.fromkeys(self.headers, "***")
        return f"OtlpSettings(endpoint={self.describe()!r}, headers={headers!r})"


@dataclass(frozen=True)
class Settings:
    """Everything in ``settings.json``."""

    otlp: OtlpSettings | None = None
    """None: the OTLP export is off."""


@dataclass(frozen=True)
class DesktopPreferences:
    """The ``desktop`` block: what the desktop app remembers between runs."""

    port: int | None = None
    """The gateway's port when approver starts without ``--port``."""
    export_folder: str | None = None
    """Where the audit window's export dialog opens."""


def load_preferences(path: Path) -> DesktopPreferences:
    """The ``desktop`` block of ``settings.json`` (defaults when the file or the block is missing).

    Raises ConfigError for an invalid file, like :func:`load_settings`.
    """
    data = _read(path) or {}
    block = data.get("desktop", {})
    return DesktopPreferences(port=block.get("port"), export_folder=block.get("export_folder"))


def save_preferences(path: Path, **changes: object) -> None:
    """Set keys of the ``desktop`` block (``port``, ``export_folder``); the rest of the file is kept.

    Raises ConfigError, leaving the file alone, when it is invalid now or the change would make it
    so; OSError when it cannot be written.
    """

    def edit(data: dict[str, Any]) -> None:
        data["desktop"] = {**data.get("desktop", {}), **changes}

    update_settings(path, edit)


def update_settings(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change ``settings.json`` in place with ``edit``, keeping the rest of the file; atomic and private.

    Raises ConfigError, leaving the file alone, when it is invalid now or the change would make it
    so; OSError when it cannot be written.
    """
    data = copy.deepcopy(_read(path) or {})
    edit(data)
    validate(data, SCHEMA_NAME, str(path))
    if "$schema" not in data:
        data = {"$schema": schema_uri(SCHEMA_NAME), **data}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def logs_endpoint(base: str) -> str:
    """``base`` with ``/v1/logs`` added, unless its path already ends with it."""
    parts = urlsplit(base.strip())
    path = parts.path.rstrip("/")
    return urlunsplit(parts._replace(path=path if path.endswith(LOGS_PATH) else path + LOGS_PATH))


def load_settings(
    path: Path, resolver: SecretResolver | None = None, environ: Mapping[str, str] = os.environ
) -> Settings:
    """Read and validate ``settings.json``; a missing file means the defaults.

    Every problem is a ConfigError naming the file (or the environment variable) and what to do.
    """
    data = _read(path)
    block = data.get("otlp") if data is not None else None
    if block is None:
        if environ.get(OTLP_ENV, "").strip().lower() not in _TRUE:
            return Settings()
        return Settings(otlp=_otlp({}, OTLP_ENV, "", resolver or SecretResolver(), environ))
    if block.get("enabled", True) is False:
        return Settings()
    return Settings(otlp=_otlp(block, str(path), "/otlp", resolver or SecretResolver(), environ))


def _read(path: Path) -> dict[str, Any] | None:
    data: dict[str, Any] | None = load_json_file(path, SCHEMA_NAME, missing_ok=True)
    return data


def _otlp(
    block: Mapping[str, Any], file: str, base: str, resolver: SecretResolver, environ: Mapping[str, str]
) -> OtlpSettings:
    endpoint = block.get("endpoint")
    if endpoint is None:
        endpoint = _endpoint_from_environment(environ)
        if endpoint is None:
            raise ConfigError(
                file,
                base,
                'the OpenTelemetry export is on but no collector is named: set "endpoint" in '
                "settings.json or OTEL_EXPORTER_OTLP_ENDPOINT (for example http://127.0.0.1:4318)",
            )
    else:
        endpoint = logs_endpoint(endpoint)
    secrets: set[str] = set()
    headers: dict[str, str] = {}
    for name, value in block.get("headers", {}).items():
        resolved, found = resolver.expand(value, file, f"{base}/headers/{_escape(name)}")
        headers[name] = resolved
        secrets |= found
    return OtlpSettings(
        endpoint=endpoint,
        headers=types.MappingProxyType(headers),
        resource=types.MappingProxyType(dict(block.get("resource", {}))),
        include_arguments=bool(block.get("include_arguments", False)),
        timeout=float(block.get("timeout", DEFAULT_TIMEOUT)),
        secrets=frozenset(secrets),
    )


def _endpoint_from_environment(environ: Mapping[str, str]) -> str | None:
    logs = environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "").strip()
    if logs:
        return logs
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return logs_endpoint(base) if base else None


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
