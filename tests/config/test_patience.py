"""Patience per client: defaults, per-client values, 0 as no limit, writes and edits by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from approver.config.patience import DEFAULT_PATIENCE, Patience
from approver.errors import ConfigError


def write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data), "utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new stamp even within one tick


def test_without_a_settings_file_every_client_has_the_default_patience(tmp_path: Path) -> None:
    patience = Patience(tmp_path / "settings.json")
    assert patience.for_client("cursor") == DEFAULT_PATIENCE == 50.0
    assert patience.configured("cursor") is None


def test_a_client_of_its_own_overrides_the_default_and_zero_means_no_limit(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, {"patience": 20, "clients": {"inspector": {"patience": 0}, "cursor": {"patience": 5}}})
    patience = Patience(path)
    assert patience.for_client("claude") == 20
    assert patience.for_client("cursor") == 5
    assert patience.for_client("inspector") is None


def test_set_writes_the_file_keeping_the_rest_and_none_returns_to_the_default(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    write(path, {"otlp": {"endpoint": "http://127.0.0.1:4318", "enabled": False}})
    patience = Patience(path)

    patience.set("cursor", 0)
    assert patience.for_client("cursor") is None
    written = json.loads(path.read_text("utf-8"))
    assert written.pop("$schema").endswith("settings.schema.json")  # for editor completion
    assert written == {
        "otlp": {"endpoint": "http://127.0.0.1:4318", "enabled": False},
        "clients": {"cursor": {"patience": 0}},
    }
    patience.set("cursor", None)
    assert patience.for_client("cursor") == DEFAULT_PATIENCE
    assert "clients" not in json.loads(path.read_text("utf-8"))


def test_an_edit_by_hand_applies_to_the_next_held_call_and_a_broken_one_keeps_the_last(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.json"
    patience = Patience(path)
    write(path, {"clients": {"cursor": {"patience": 7}}})
    assert patience.for_client("cursor") == 7

    write(path, {"clients": {"cursor": {"patience": -1}}})
    assert patience.for_client("cursor") == 7
    assert patience.error is not None and "/clients/cursor/patience" in patience.error


def test_an_invalid_value_is_refused_and_the_file_is_untouched(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    patience = Patience(path)
    with pytest.raises(ConfigError):
        patience.set("cursor", -3)
    assert not path.exists()
