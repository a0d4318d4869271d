"""``linetwin init DIR``: a starting line config that ``check`` passes, a first admin from a password file or the
environment (audited), and refusals that change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from linetwin_cli.main import main
from twin_server.security.audit_store import export_entries, verify_chain
from twin_server.security.roles import Role
from twin_server.security.users_file import UsersFile


def test_init_writes_a_config_check_passes_and_a_first_admin(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "pw").write_text("first-admin-password\n")
    data = tmp_path / "data"
    assert main(["init", str(tmp_path / "boiler_house"), "--password-file", str(tmp_path / "pw"),
                 "--data-dir", str(data)]) == 0
    config = tmp_path / "boiler_house" / "boiler_house.toml"
    assert 'name = "boiler_house"' in config.read_text()
    users = UsersFile.load(data / "security" / "users.toml")
    assert users.users["admin"].role is Role.ADMIN and users.users["admin"].check_password("first-admin-password")
    assert verify_chain(data / "security" / "audit.sqlite").ok
    assert [e["action"] for e in export_entries(data / "security" / "audit.sqlite", None, None)] == ["user_add"]
    capsys.readouterr()
    assert main(["check", str(config), "--data-dir", str(data)]) == 0
    assert f"data dir {data}" in capsys.readouterr().out


def test_init_takes_the_password_from_the_environment_or_writes_no_users(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("LINETWIN_ADMIN_PASSWORD", "from-the-environment")
    assert main(["init", str(tmp_path / "a"), "--line", "line_a", "--admin", "root_admin",
                 "--data-dir", str(tmp_path / "da")]) == 0
    assert UsersFile.load(tmp_path / "da" / "security" / "users.toml").users["root_admin"].check_password(
        "from-the-environment")
    monkeypatch.delenv("LINETWIN_ADMIN_PASSWORD")
    assert main(["init", str(tmp_path / "b"), "--line", "line_b", "--data-dir", str(tmp_path / "db")]) == 0
    assert "no users file written" in capsys.readouterr().out
    assert not (tmp_path / "db").exists()


def test_init_refuses_an_existing_config_a_bad_name_and_a_short_password(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]):
    assert main(["init", str(tmp_path / "plant"), "--data-dir", str(tmp_path / "data")]) == 0
    config = tmp_path / "plant" / "plant.toml"
    before = config.read_text()
    assert main(["init", str(tmp_path / "plant"), "--data-dir", str(tmp_path / "data")]) == 2
    assert "exists" in capsys.readouterr().err and config.read_text() == before
    assert main(["init", str(tmp_path / "x"), "--line", "9lives"]) == 2
    assert "--line: got '9lives'" in capsys.readouterr().err and not (tmp_path / "x").exists()
    (tmp_path / "short").write_text("short\n")
    assert main(["init", str(tmp_path / "y"), "--password-file", str(tmp_path / "short"),
                 "--data-dir", str(tmp_path / "dy")]) == 2
    assert "at least 8" in capsys.readouterr().err and not (tmp_path / "y").exists()
    assert main(["init", str(tmp_path / "z"), "--password-file", str(tmp_path / "nope")]) == 2
    assert "--password-file" in capsys.readouterr().err and not (tmp_path / "z").exists()
