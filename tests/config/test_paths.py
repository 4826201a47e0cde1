"""Config and data directories: flag, then environment, then platform default."""

from __future__ import annotations

import stat
from pathlib import Path

import platformdirs
import pytest

from approver.config.paths import Paths, write_private_text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_flags_beat_environment_variables(tmp_path: Path) -> None:
    environ = {
        "APPROVER_CONFIG_DIR": str(tmp_path / "env-config"),
        "APPROVER_DATA_DIR": str(tmp_path / "env-data"),
    }
    paths = Paths.resolve(str(tmp_path / "flag-config"), str(tmp_path / "flag-data"), environ=environ)
    assert paths == Paths(tmp_path / "flag-config", tmp_path / "flag-data")


def test_environment_variables_beat_platform_defaults(tmp_path: Path) -> None:
    environ = {"APPROVER_CONFIG_DIR": str(tmp_path / "c"), "APPROVER_DATA_DIR": str(tmp_path / "d")}
    paths = Paths.resolve(environ=environ)
    assert paths == Paths(tmp_path / "c", tmp_path / "d")


def test_without_flags_or_environment_the_platform_directories_are_used() -> None:
    paths = Paths.resolve(environ={})
    assert paths.config_dir == Path(platformdirs.user_config_dir("approver", appauthor=False))
    assert paths.data_dir == Path(platformdirs.user_data_dir("approver", appauthor=False))
    assert paths.config_dir.name == "approver"


def test_empty_flag_and_empty_variable_count_as_unset(tmp_path: Path) -> None:
    paths = Paths.resolve("", None, environ={"APPROVER_CONFIG_DIR": "", "APPROVER_DATA_DIR": str(tmp_path)})
    assert paths.config_dir == Path(platformdirs.user_config_dir("approver", appauthor=False))
    assert paths.data_dir == tmp_path


def test_relative_and_home_paths_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    paths = Paths.resolve("conf", "~/data", environ={})
    assert paths.config_dir == tmp_path / "conf"
    assert paths.data_dir == tmp_path / "home" / "data"


def test_files_live_in_the_right_directory(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "c", tmp_path / "d")
    assert paths.servers_file == tmp_path / "c" / "servers.json"
    assert paths.policy_file == tmp_path / "c" / "policy.json"
    assert paths.audit_db == tmp_path / "d" / "audit.db"
    assert paths.logs_dir == tmp_path / "d" / "logs"
    assert paths.runtime_file == tmp_path / "d" / "gateway.json"
    assert paths.tokens_file == tmp_path / "d" / "tokens.json"


def test_ensure_creates_the_directories_readable_only_by_the_owner(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "deep" / "config", tmp_path / "data")
    paths.ensure()
    for directory in (paths.config_dir, paths.data_dir, paths.logs_dir):
        assert directory.is_dir()
        assert _mode(directory) == 0o700


def test_ensure_leaves_the_mode_of_an_existing_directory_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    Paths(shared, shared).ensure()
    assert _mode(shared) == 0o755
    assert _mode(shared / "logs") == 0o700


def test_write_private_text_writes_a_file_only_the_owner_can_read(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_text("old")
    target.chmod(0o644)
    write_private_text(target, "new")
    assert target.read_text() == "new"
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_private_text(target, "bad \udc80 surrogate")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]
