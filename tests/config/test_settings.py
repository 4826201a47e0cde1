"""settings.json: the OTLP export is off unless the user turns it on, and errors say where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from approver.config.servers import SecretResolver
from approver.config.settings import OTLP_ENV, load_settings, logs_endpoint
from approver.errors import ConfigError
from approver.testing.harness import MemoryKeyring


def settings_file(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data), "utf-8")
    return path


def test_no_file_and_standard_otel_variables_alone_leave_the_export_off(tmp_path: Path) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert load_settings(tmp_path / "settings.json", environ=environ).otlp is None
    assert load_settings(settings_file(tmp_path, {}), environ=environ).otlp is None


def test_an_otlp_block_turns_it_on_with_the_logs_path_added_unless_enabled_is_false(tmp_path: Path) -> None:
    on = load_settings(
        settings_file(tmp_path, {"otlp": {"endpoint": "https://otel.example:4318/"}}), environ={}
    )
    assert on.otlp is not None and on.otlp.endpoint == "https://otel.example:4318/v1/logs"
    assert not on.otlp.include_arguments and on.otlp.timeout == 5.0
    off = {"otlp": {"endpoint": "https://otel.example:4318", "enabled": False}}
    assert load_settings(settings_file(tmp_path, off), environ={}).otlp is None
    assert logs_endpoint("http://h:4318/custom/v1/logs") == "http://h:4318/custom/v1/logs"


def test_the_environment_opts_in_and_the_standard_variables_name_the_collector(tmp_path: Path) -> None:
    missing = tmp_path / "settings.json"
    base = load_settings(missing, environ={OTLP_ENV: "1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert base.otlp is not None and base.otlp.endpoint == "http://c:4318/v1/logs"
    logs = {
        OTLP_ENV: "true",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://c:4318/logs",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "x",
    }
    assert load_settings(missing, environ=logs).otlp is not None
    assert load_settings(missing, environ=logs).otlp.endpoint == "http://c:4318/logs"  # type: ignore[union-attr]
    with pytest.raises(
        ConfigError, match=r"APPROVER_OTLP: .*no collector is named.*OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        load_settings(missing, environ={OTLP_ENV: "1"})


def test_header_secrets_come_from_the_keyring_and_never_show(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    backend.set_password("approver", "otlp-token", "tok-123456")
    path = settings_file(
        tmp_path,
        {
            "otlp": {
                "endpoint": "http://user:pw@c:4318?x=1",
                "headers": {"authorization": "Bearer ${keyring:otlp-token}"},
            }
        },
    )
    otlp = load_settings(path, SecretResolver(keyring_get=backend.get_password), environ={}).otlp
    assert otlp is not None and otlp.headers == {"authorization": "Bearer tok-123456"}
    assert otlp.secrets == {"tok-123456"}
    assert "tok-123456" not in repr(otlp) and "pw" not in otlp.describe()
    assert otlp.describe() == "http://c:4318/v1/logs"
    with pytest.raises(
        ConfigError, match="/otlp/headers/authorization: keyring secret 'otlp-token' not found"
    ):
        load_settings(path, SecretResolver(keyring_get=MemoryKeyring().get_password), environ={})


@pytest.mark.parametrize(
    ("data", "pointer"),
    [
        ({"otlp": {"endpoint": "grpc://c:4317"}}, "/otlp/endpoint"),
        ({"otlp": {"endpoint": "http://c", "include_arguments": "yes"}}, "/otlp/include_arguments"),
        ({"otlp": {"endpoint": "http://c", "timeout": 0}}, "/otlp/timeout"),
        ({"otlp": {"endpiont": "http://c"}}, "/otlp"),
        ({"otel": {}}, "/"),
    ],
)
def test_a_wrong_value_is_named_by_file_and_pointer(tmp_path: Path, data: Any, pointer: str) -> None:
    path = settings_file(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.file == str(path) and caught.value.pointer == pointer


def test_a_broken_file_is_an_error_not_a_silent_default(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"otlp": ', "utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_settings(path, environ={})
