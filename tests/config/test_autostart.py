"""Start at login through an XDG autostart entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from approver.config.autostart import Autostart, AutostartError


def test_enabling_writes_an_entry_that_runs_the_command_and_disabling_removes_it(tmp_path: Path) -> None:
    autostart = Autostart(
        ["/opt/my apps/approver"], environ={"XDG_CONFIG_HOME": str(tmp_path)}, platform="linux"
    )
    assert not autostart.enabled()
    autostart.set_enabled(True)
    entry = (tmp_path / "autostart" / "approver.desktop").read_text()
    assert autostart.enabled()
    assert 'Exec="/opt/my apps/approver"\n' in entry and entry.startswith("[Desktop Entry]\n")
    autostart.set_enabled(True)  # idempotent
    autostart.set_enabled(False)
    autostart.set_enabled(False)
    assert not autostart.enabled() and not autostart.path.exists()


def test_an_entry_hidden_by_the_desktop_counts_as_disabled(tmp_path: Path) -> None:
    autostart = Autostart(["approver"], environ={"HOME": str(tmp_path)}, platform="linux")
    assert autostart.path == tmp_path / ".config" / "autostart" / "approver.desktop"
    autostart.set_enabled(True)
    autostart.path.write_text(autostart.path.read_text() + "Hidden=true\n")
    assert not autostart.enabled()


def test_other_systems_say_why_instead_of_pretending(tmp_path: Path) -> None:
    autostart = Autostart(["approver"], environ={"HOME": str(tmp_path)}, platform="darwin")
    assert not autostart.supported and "Linux" in autostart.unsupported_reason()
    with pytest.raises(AutostartError, match="Linux"):
        autostart.set_enabled(True)


def test_an_unwritable_autostart_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "autostart").write_text("a file where the folder should be")
    autostart = Autostart(["approver"], environ={"XDG_CONFIG_HOME": str(tmp_path)}, platform="linux")
    with pytest.raises(AutostartError, match=r"could not create .*approver\.desktop"):
        autostart.set_enabled(True)
