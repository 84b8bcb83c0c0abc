"""What an emulation refuses before it starts anything."""

from __future__ import annotations

import pytest

from lasp_gateway.emulator import Emulation, EmulationConfig
from lasp_gateway.emulator.apps import AppError
from lasp_gateway.emulator.services import Broker


def test_a_workdir_with_other_files_is_never_cleared(tmp_path):
    (tmp_path / "devices").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        Emulation(EmulationConfig(workdir=str(tmp_path)))
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "devices").is_dir()


def test_a_previous_runs_workdir_is_reused(tmp_path):
    Emulation(EmulationConfig(workdir=str(tmp_path)))  # marks it
    (tmp_path / "devices" / "v0001").mkdir(parents=True)
    Emulation(EmulationConfig(workdir=str(tmp_path)))
    assert not (tmp_path / "devices").exists()  # stale stores would not match a new oracle


@pytest.mark.parametrize(
    "kw",
    [{"devices": 0}, {"devices": 3, "real": 4}, {"broken": "nope"}, {"duration": 0}],
)
def test_bad_configs_are_refused(kw):
    with pytest.raises(ValueError):
        EmulationConfig(**kw)


def test_unknown_apps_and_unrestartable_brokers_are_refused(tmp_path):
    with pytest.raises(AppError):
        Emulation(EmulationConfig(app="no_such_app"))
    external = Broker.from_option("127.0.0.1:1", tmp_path)
    assert not external.restartable
    with pytest.raises(ValueError, match="broker-restart"):
        Emulation(EmulationConfig(faults="broker-restart:1"), broker=external)
