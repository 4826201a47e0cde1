"""A real OTLP/HTTP logs receiver on 127.0.0.1, for tests and for trying the export by hand.

It accepts ``POST /v1/logs`` with a protobuf ``ExportLogsServiceRequest`` (what the official
exporter sends, optionally gzip-compressed), decodes it with ``opentelemetry-proto`` and keeps
each log record as a plain :class:`ReceivedLog`. ``python -m approver.testing.otlp_receiver
--port 4318`` prints every record as a JSON line, a stand-in for a collector.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

LOGS_PATH: Final = "/v1/logs"
"""The only path the receiver answers."""


@dataclass(frozen=True)
class ReceivedLog:
    """One log record as the collector saw it."""

    body: str
    event_name: str
    severity_text: str
    time_unix_nano: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    headers: dict[str, str] = field(default_factory=dict)
    """The HTTP request headers it came with (lower-case names)."""


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


def _attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def decode(payload: bytes, headers: Mapping[str, str]) -> list[ReceivedLog]:
    """The log records in one protobuf ``ExportLogsServiceRequest``."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    request.ParseFromString(payload)
    found = []
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                found.append(
                    ReceivedLog(
                        body=str(_value(record.body)),
                        event_name=record.event_name,
                        severity_text=record.severity_text,
                        time_unix_nano=record.time_unix_nano,
                        attributes=_attributes(record.attributes),
                        resource=resource,
                        scope=scope_logs.scope.name,
                        headers=dict(headers),
                    )
                )
    return found


class OtlpReceiver:
    """A threaded HTTP server collecting OTLP log records; a context manager.

    ``status`` is the HTTP status it answers with (set 503 to play a failing collector; the
    records of a failed request are not kept).
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.records: list[ReceivedLog] = []
        self.requests = 0
        self.status = 200
        self._changed = threading.Condition()
        self._server = http.server.ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """Its base URL (``/v1/logs`` is added by the exporter's settings)."""
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedLog]:
        """The records once at least ``count`` arrived; AssertionError after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.records) >= count, timeout):
                raise AssertionError(f"expected {count} OTLP log records, got {len(self.records)}")
            return list(self.records)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and free the port."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def _accept(self, payload: bytes, headers: Mapping[str, str]) -> int:
        with self._changed:
            self.requests += 1
            status = self.status
            if status == 200:
                self.records.extend(decode(payload, headers))
                self._changed.notify_all()
        return status

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != LOGS_PATH:
                    self.send_error(404)
                    return
                payload = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    payload = gzip.decompress(payload)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver._accept(payload, headers)
                self.send_response(status)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests and the console printer show what matters

        return Handler


def main() -> None:
    """Print every received record as a JSON line until interrupted."""
    parser = argparse.ArgumentParser(description="A minimal OTLP/HTTP logs receiver on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=4318)
    port = parser.parse_args().port
    with OtlpReceiver(port) as receiver:
        print(f"listening on {receiver.endpoint}{LOGS_PATH}", flush=True)
        seen = 0
        try:
            while True:
                try:
                    records = receiver.wait_for(seen + 1, timeout=3600)
                except AssertionError:  # an hour without records: keep listening
                    continue
                for record in records[seen:]:
                    fields = asdict(record)
                    fields.pop("headers")
                    print(json.dumps(fields, default=str), flush=True)
                seen = len(records)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
