"""Ship audit events to an OpenTelemetry collector as OTLP log records (the ``otel`` extra).

Off unless ``settings.json`` turns it on (see :mod:`approver.config.settings`). The exporter listens
for :class:`~approver.events.Recorded`; the listener only puts the row id on a bounded queue,
so a call never waits for the network and a collector's trouble never reaches a decision. One
background thread reads the committed rows back from the audit log, so what leaves the machine
is exactly what was stored (redacted, with its hash), batches them and posts them with the
official OTLP/HTTP exporter. While the collector is down the thread retries with exponential
backoff, events that find the queue full are dropped and counted, and the trouble is logged
once when it starts and once when it ends.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from approver import __version__
from approver.audit.log import AuditLog, DecisionRecord
from approver.config.settings import OtlpSettings
from approver.errors import ApproverError
from approver.events import Event, EventHub, Recorded

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk._logs.export import LogRecordExporter

logger = logging.getLogger(__name__)

MAX_QUEUE: Final = 4096
"""Audit events waiting to be sent; more than this while the collector is down are dropped."""

MAX_BATCH: Final = 256
"""Audit events per export request."""

LINGER: Final = 0.5
"""Seconds to wait for more events before sending a batch (a call's two rows go together)."""

BACKOFF: Final = (1.0, 60.0)
"""First and longest wait, in seconds, between attempts while the collector fails."""

CLOSE_TIMEOUT: Final = 5.0
"""Seconds :meth:`OtlpExport.close` waits for the last batch."""

SCOPE: Final = "approver.audit.log"
"""The instrumentation scope of every record."""

_EXPORTER_LOGGER: Final = "opentelemetry.exporter.otlp.proto.http._log_exporter"
_EXTRA_HINT: Final = (
    "the OpenTelemetry export is turned on (settings.json or APPROVER_OTLP) but its packages are "
    "not installed: install them with `pip install 'approver[otel]'` (pipx: `pipx inject approver "
    "opentelemetry-sdk opentelemetry-exporter-otlp-proto-http`), or turn the export off"
)
# (audit column, attribute name); values that are None are left out.
_COLUMNS: Final = (
    ("kind", "approver.kind"),
    ("call_id", "approver.call_id"),
    ("client", "approver.client"),
    ("server", "approver.server"),
    ("tool", "approver.tool"),
    ("upstream_tool", "approver.upstream_tool"),
    ("risk_class", "approver.policy.risk.class"),
    ("risk_level", "approver.policy.risk.level"),
    ("decision", "approver.decision"),
    ("decided_by", "approver.decided_by"),
    ("rule", "approver.rule"),
    ("reason", "approver.reason"),
    ("args_sha256", "approver.arguments.sha256"),
    ("outcome", "approver.outcome"),
    ("duration_ms", "approver.duration_ms"),
    ("result_size", "approver.result.size"),
    ("error", "approver.error"),
    ("id", "approver.audit.log.row_id"),
    ("hash", "approver.audit.log.hash"),
)


class OtlpUnavailableError(ApproverError):
    """The export is turned on but the ``otel`` extra is not installed."""


def attributes(row: Mapping[str, Any], include_arguments: bool = False) -> dict[str, str | int | float]:
    """The log record attributes for one stored audit row."""
    result: dict[str, str | int | float] = {
        name: row[column] for column, name in _COLUMNS if row.get(column) not in (None, "")
    }
    if include_arguments and row.get("arguments") is not None:
        result["approver.arguments"] = row["arguments"]
        result["approver.arguments.truncated"] = int(row.get("args_truncated") or 0)
    return result


def body(row: Mapping[str, Any]) -> str:
    """One line saying what happened, for log views that show only the body."""
    if row["kind"] == "decision":
        return f"{row['decision']} {row['tool']} for {row['client']} ({row['decided_by']})"
    if row["kind"] == "edit":
        return f"edited {row['tool']} for {row['client']} before approving ({row['decided_by']})"
    if row["kind"] == "review":
        verdict = "passed on" if row["decision"] == "allow" else "withheld"
        return f"result of {row['tool']} {verdict} to {row['client']} ({row['decided_by']})"
    return f"{row['outcome']} {row['tool']} for {row['client']} in {row['duration_ms']} ms"


def _exporter(settings: OtlpSettings) -> LogRecordExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    except ImportError:
        raise OtlpUnavailableError(_EXTRA_HINT) from None
    return OTLPLogExporter(
        endpoint=settings.endpoint, headers=dict(settings.headers), timeout=settings.timeout
    )


class _FirstMessage(logging.Filter):
    """Silences the exporter's own log lines (one per attempt) and keeps the first since
    :meth:`reset` as the reason for approver's single message."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""

    def reset(self) -> None:
        self.text = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.text:
            self.text = record.getMessage()[:300]
        return False


class OtlpExport:
    """Sends every committed audit row to a collector; see the module docstring.

    ``exporter`` replaces the OTLP/HTTP exporter (tests); the others tune the queue and timing.
    """

    def __init__(
        self,
        settings: OtlpSettings,
        log: AuditLog,
        *,
        exporter: LogRecordExporter | None = None,
        max_queue: int = MAX_QUEUE,
        linger: float = LINGER,
        backoff: tuple[float, float] = BACKOFF,
    ) -> None:
        self.settings = settings
        self._log = log
        self._exporter = exporter if exporter is not None else _exporter(settings)
        self._to_record = _record_factory(settings)
        self._max_queue = max_queue
        self._linger = linger
        self._backoff = backoff
        self._queue: collections.deque[int] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="approver-otlp", daemon=True)
        self._reason = _FirstMessage()
        self.sent = 0
        """Audit events the collector accepted."""
        self.dropped = 0
        """Audit events given up on: the queue was full, or the collector was down at shutdown."""
        self.failing = False
        """True from a failed export until the next one succeeds."""

    def attach(self, events: EventHub) -> Callable[[], None]:
        """Listen for committed audit rows; returns the unsubscribe function."""
        return events.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        """Queue a committed row for sending; never blocks, never raises."""
        if not isinstance(event, Recorded):
            return
        with self._wake:
            if self._stopping or len(self._queue) >= self._max_queue:
                self.dropped += 1
                return
            self._queue.append(event.row_id)
            if isinstance(event.record, DecisionRecord) and event.record.approved is not None:
                self._queue.append(event.row_id + 1)  # its edit row, committed with it
            self._wake.notify()

    def start(self) -> None:
        """Start the sending thread."""
        # First in line, before the exporter's own duplicate filter could swallow the reason.
        logging.getLogger(_EXPORTER_LOGGER).filters.insert(0, self._reason)
        self._thread.start()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Send what is queued (unless the collector is failing), then stop; at most ``timeout`` s."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._exporter.shutdown()  # type: ignore[no-untyped-call]
        logging.getLogger(_EXPORTER_LOGGER).removeFilter(self._reason)
        if self.dropped:
            logger.warning("OTLP export: %d audit event(s) were not sent (%d sent)", self.dropped, self.sent)

    def _take(self) -> list[int] | None:
        """The next batch of row ids, or None when stopping."""
        with self._wake:
            while not self._queue and not self._stopping:
                self._wake.wait()
            if self._stopping:
                if self.failing or not self._queue:
                    self.dropped += len(self._queue)
                    self._queue.clear()
                    return None
            elif len(self._queue) < MAX_BATCH:
                self._wake.wait_for(lambda: self._stopping or len(self._queue) >= MAX_BATCH, self._linger)
            count = min(len(self._queue), MAX_BATCH)
            return [self._queue.popleft() for _ in range(count)]

    def _run(self) -> None:
        while (ids := self._take()) is not None:
            try:
                records = [self._to_record(row) for row in self._rows(ids)]
            except Exception as exc:  # the log closed under us, or a row that cannot be encoded
                logger.warning("OTLP export: could not read %d audit row(s): %s", len(ids), exc)
                with self._wake:
                    self.dropped += len(ids)
                continue
            self._send(records)

    def _rows(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        wanted = set(ids)
        rows = self._log.tail(after_id=min(ids) - 1, limit=max(ids) - min(ids) + 1)
        return [row for row in rows if row["id"] in wanted]

    def _send(self, records: list[ReadableLogRecord]) -> None:
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        wait = self._backoff[0]
        while True:
            self._reason.reset()
            try:
                result = self._exporter.export(records)
            except Exception as exc:  # the exporter reports failures itself; this is a bug's last net
                result = LogRecordExportResult.FAILURE
                self._reason.text = f"{type(exc).__name__}: {exc}"[:300]
            if result is LogRecordExportResult.SUCCESS:
                with self._wake:
                    self.sent += len(records)
                    recovered, self.failing = self.failing, False
                if recovered:
                    logger.warning(
                        "OTLP export to %s works again (%d audit event(s) dropped so far)",
                        self.settings.describe(),
                        self.dropped,
                    )
                return
            if not self.failing:
                logger.warning(
                    "OTLP export to %s failed (%s); retrying with backoff, calls are not affected, "
                    "and audit events beyond %d waiting are dropped until it works again",
                    self.settings.describe(),
                    self._reason.text or "no reason given",
                    self._max_queue,
                )
                self.failing = True
            with self._wake:
                if self._wake.wait_for(lambda: self._stopping, wait):
                    self.dropped += len(records)
                    return
            wait = min(wait * 2, self._backoff[1])


def _record_factory(settings: OtlpSettings) -> Callable[[Mapping[str, Any]], ReadableLogRecord]:
    """Turns stored audit rows into SDK log records under approver's resource and scope."""
    try:
        from opentelemetry._logs import LogRecord, SeverityNumber
        from opentelemetry.sdk._logs import ReadableLogRecord
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    except ImportError:
        raise OtlpUnavailableError(_EXTRA_HINT) from None

    defaults = {"service.name": "approver", "service.version": __version__, "host.name": socket.gethostname()}
    resource = Resource.create({**defaults, **settings.resource})
    scope = InstrumentationScope(SCOPE, __version__)

    def record(row: Mapping[str, Any]) -> ReadableLogRecord:
        troubled = row.get("decision") not in (None, "allow") or row.get("outcome") == "error"
        severity = SeverityNumber.WARN if troubled else SeverityNumber.INFO
        stamp = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
        log_record = LogRecord(
            timestamp=int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000,
            severity_number=severity,
            severity_text=severity.name,
            body=body(row),
            attributes=attributes(row, settings.include_arguments),
            event_name=f"approver.{row['kind']}",
        )
        return ReadableLogRecord(log_record=log_record, resource=resource, instrumentation_scope=scope)

    return record


def make_export(settings: OtlpSettings | None, log: AuditLog, events: EventHub) -> OtlpExport | None:
    """An :class:`OtlpExport` listening to ``events`` when ``settings`` turn it on (not started yet).

    Raises :class:`OtlpUnavailableError` when the export is on and the extra is missing.
    """
    if settings is None:
        return None
    export = OtlpExport(settings, log)
    export.attach(events)
    return export
