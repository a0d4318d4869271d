"""One data directory per line: where it is, its layout, the config keys relative to it, ``twin.pid``, and a
column's case file stated relative to the config."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from twin_server.config import ConfigError, load_line_config
from twin_server.data_dir import default_data_root, layout, line_data_dir
from twin_server.pid_file import DataDirInUse, TwinPidFile, running_pid

REPO = Path(__file__).resolve().parents[2]
PILOT = REPO / "examples" / "pilot_line.toml"
SMA_CASE = REPO / "examples" / "cases" / "chromatography_sma_load_wash_elute.toml"


def test_data_dir_precedence_flag_then_env_then_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = load_line_config(PILOT)
    assert line_data_dir(config, tmp_path / "flag").root == tmp_path / "flag"
    monkeypatch.setenv("LINETWIN_DATA_DIR", str(tmp_path / "env"))
    assert line_data_dir(config).root == tmp_path / "env"
    monkeypatch.delenv("LINETWIN_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_root("pilot_line") == tmp_path / "xdg" / "linetwin" / "pilot_line"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_root("pilot_line") == tmp_path / "home" / ".local" / "share" / "linetwin" / "pilot_line"


def test_layout_and_configured_folders_are_relative_to_the_data_dir(tmp_path: Path):
    data = layout(tmp_path)
    assert data.history == tmp_path / "history" and data.security == tmp_path / "security"
    assert data.users_file == tmp_path / "security" / "users.toml"
    assert data.audit_db == tmp_path / "security" / "audit.sqlite" and data.pki == tmp_path / "security" / "pki"
    assert data.parameter_sets == tmp_path / "parameter_sets" and data.reports == tmp_path / "reports"
    assert data.pid_file == tmp_path / "twin.pid"
    moved = layout(tmp_path, history="hist", security="/srv/linetwin-security")
    assert moved.history == tmp_path / "hist"  # relative: to the data dir, never to the config file
    assert moved.security == Path("/srv/linetwin-security")


def test_pid_file_refuses_another_live_twin_and_takes_over_a_stale_one(tmp_path: Path):
    path = tmp_path / "twin.pid"
    path.write_text(f"{os.getppid()}\n")  # a live process that is not this one
    with pytest.raises(DataDirInUse, match=f"pid {os.getppid()}"):
        TwinPidFile.acquire(path)
    assert path.read_text().strip() == str(os.getppid())  # untouched
    path.write_text("999999999\n")  # no such process: stale
    lock = TwinPidFile.acquire(path)
    assert running_pid(path) == os.getpid()
    lock.release()
    assert not path.exists()


def _line_with_case(folder: Path, case: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = PILOT.read_text().replace('case = "sma_load_wash_elute"', f'case = "{case}"', 1)
    assert f'case = "{case}"' in text
    path = folder / "line.toml"
    path.write_text(text)
    return path


def test_column_case_file_is_relative_to_the_config_not_the_working_directory(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    plant = tmp_path / "plant"
    (plant / "cases").mkdir(parents=True)
    shutil.copy(SMA_CASE, plant / "cases" / "column.toml")
    config_path = _line_with_case(plant, "cases/column.toml")
    monkeypatch.chdir(tmp_path)  # elsewhere: the path still resolves beside the config
    column = next(u for u in load_line_config(config_path).units if u.name == "capture_column")
    assert column.model["case"] == str((plant / "cases" / "column.toml").resolve())

    missing = _line_with_case(tmp_path / "other", "cases/column.toml")
    with pytest.raises(ConfigError) as err:
        load_line_config(missing)
    text = str(err.value)
    assert "units.capture_column.model.case" in text and str(tmp_path / "other" / "cases" / "column.toml") in text
