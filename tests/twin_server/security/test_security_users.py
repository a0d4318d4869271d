"""The users file and logins without a server: scrypt hashes with per-user salt, `linetwin user add|list|disable`,
the user manager's decisions (disabled user, lock-out that expires), and `[security]` config validation."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest

from linetwin_cli.main import main
from twin_server.config import ConfigError, parse_line_config
from twin_server.security.identity import CURRENT_LOGIN, LoginAttempt, TwinUserManager
from twin_server.security.lockout import LoginLockout
from twin_server.security.roles import Role
from twin_server.security.users_file import UsersFile, UsersFileError


def add(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, role: str, password: str,
        *extra: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["user", "add", name, "--role", role, "--password-stdin", "--data-dir", str(tmp_path), *extra])


def test_user_add_stores_scrypt_hashes_with_per_user_salt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert add(tmp_path, monkeypatch, "alice", "operator", "same-password") == 0
    assert add(tmp_path, monkeypatch, "bob", "engineer", "same-password") == 0
    text = (tmp_path / "security" / "users.toml").read_text()
    assert "same-password" not in text
    users = tomllib.loads(text)["users"]
    assert users["alice"]["password"].startswith("scrypt$16384$8$1$")
    assert users["alice"]["password"] != users["bob"]["password"]
    assert (tmp_path / "security" / "users.toml").stat().st_mode & 0o777 == 0o600
    loaded = UsersFile.load(tmp_path / "security" / "users.toml")
    assert loaded.users["alice"].check_password("same-password")
    assert not loaded.users["alice"].check_password("Same-password")
    assert add(tmp_path, monkeypatch, "alice", "admin", "another-password") == 2
    assert "existing user" in capsys.readouterr().err
    assert add(tmp_path, monkeypatch, "eve", "operator", "short") == 2
    assert "at least 8" in capsys.readouterr().err
    assert main(["user", "disable", "bob", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["user", "list", "--data-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:3] == ["alice", "operator", "enabled"]
    assert listing[1].split()[:3] == ["bob", "engineer", "disabled"]
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 0  # user changes are audited
    assert "OK — 3 entries" in capsys.readouterr().out


def test_bad_users_file_is_reported_with_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text('[users.alice]\nrole = "superuser"\n')
    with pytest.raises(UsersFileError, match=r"users\.toml: users\.alice\.role: got 'superuser'; expected one of"):
        UsersFile.load(path)
    path.write_text('[users.alice]\nrole = "viewer"\npassword = "plain-text"\n')
    with pytest.raises(UsersFileError, match=r"users\.alice\.password: got a value that is not a scrypt hash"):
        UsersFile.load(path)


def _login(manager: TwinUserManager, user: str, password: str, address: str = "10.0.0.5:50000"):
    attempt = LoginAttempt(token="username", address=address, user_name=user)
    token = CURRENT_LOGIN.set(attempt)
    try:
        return manager.get_user(None, username=user, password=password), attempt
    finally:
        CURRENT_LOGIN.reset(token)


def test_disabled_users_and_lockout_that_expires(tmp_path: Path) -> None:
    users = UsersFile(tmp_path / "security" / "users.toml")
    users.add("alice", Role.OPERATOR, "alice-password")
    users.add("bob", Role.VIEWER, "bob-password")
    users.set_disabled("bob")
    users.save()
    now = [1000.0]
    manager = TwinUserManager(users.path, True, LoginLockout(max_failures=2, lockout_s=30.0, clock=lambda: now[0]))
    user, _ = _login(manager, "alice", "alice-password")
    assert user is not None and user.twin_role is Role.OPERATOR and user.name == "alice"
    user, attempt = _login(manager, "bob", "bob-password", address="10.0.0.7:1")
    assert user is None and attempt.refusal == "user disabled"
    assert _login(manager, "alice", "wrong")[0] is None
    user, attempt = _login(manager, "alice", "wrong")
    assert user is None and "now locked out for 30 s" in attempt.refusal
    user, attempt = _login(manager, "alice", "alice-password", address="10.0.0.9:1")
    assert user is None and "locked out" in attempt.refusal and "user:alice" in attempt.refusal
    now[0] += 31.0
    assert _login(manager, "alice", "alice-password")[0] is not None


def test_unknown_names_throttle_the_address_with_a_growing_delay_and_never_lock_a_name(tmp_path: Path) -> None:
    users = UsersFile(tmp_path / "users.toml")
    users.add("alice", Role.OPERATOR, "alice-password")
    users.save()
    now = [1000.0]
    lockout = LoginLockout(max_failures=3, lockout_s=300.0, throttle_after=2, throttle_s=1.0, throttle_max_s=4.0,
                           clock=lambda: now[0])
    manager = TwinUserManager(users.path, True, lockout)
    assert _login(manager, "mallory", "x")[1].refusal == "unknown user"
    assert _login(manager, "trudy", "x")[1].refusal == "unknown user; address throttled for 1 s (addr:10.0.0.5)"
    user, attempt = _login(manager, "alice", "alice-password")  # during the delay: not even checked
    assert user is None and attempt.refusal.startswith("throttled after repeated failed logins, retry in 1.0 s")
    assert _login(manager, "alice", "alice-password", address="10.0.0.6:1")[0] is not None  # other address: fine
    delays = []
    for name in ("eve", "oscar", "peggy", "victor"):
        now[0] += 5.0
        delays.append(_login(manager, name, "x")[1].refusal.split("throttled for ")[1].split(" s")[0])
    assert delays == ["2", "4", "4", "4"]  # doubling, capped at throttle_max_s
    now[0] += 4.0
    user, attempt = _login(manager, "alice", "alice-password")  # the real user gets in after the delay
    assert user is not None, attempt.refusal
    assert lockout.refusal("mallory", None) is None  # a name is never locked by itself


def test_without_a_users_file_user_name_logins_get_nothing(tmp_path: Path) -> None:
    manager = TwinUserManager(tmp_path / "users.toml", True, LoginLockout())
    user, attempt = _login(manager, "admin", "")
    assert user is None and "no users file yet" in attempt.refusal
    anonymous = LoginAttempt(token="anonymous")
    token = CURRENT_LOGIN.set(anonymous)
    try:
        viewer = manager.get_user(None)
    finally:
        CURRENT_LOGIN.reset(token)
    assert viewer is not None and viewer.twin_role is Role.VIEWER


def test_security_table_is_validated() -> None:
    base = {"line": {"name": "l"}, "server": {}, "units": {}}
    with pytest.raises(ConfigError) as err:
        parse_line_config({**base, "security": {"allow_none": "yes", "policies": ["Basic128Rsa15_Sign"],
                                                "anonymous": "admin", "max_failed_logins": 0, "colour": 1}},
                          source="line.toml")
    text = str(err.value)
    assert "line.toml: security.allow_none: got 'yes'; expected true or false" in text
    assert "line.toml: security.policies: got ['Basic128Rsa15_Sign']; expected a list of distinct names" in text
    assert "line.toml: security.anonymous: got 'admin'; expected one of viewer, off" in text
    assert "line.toml: security.max_failed_logins: got 0; expected an integer in [1, 1000]" in text
    assert "line.toml: security.colour: got an unknown key" in text
    with pytest.raises(ConfigError) as err:
        parse_line_config({**base, "security": {"audit_events_role": "everyone", "login_throttle_s": -1,
                                                "limits": {"max_nodes_per_read": 0, "max_cats": 3}}},
                          source="line.toml")
    text = str(err.value)
    assert "line.toml: security.audit_events_role: got 'everyone'; expected one of viewer, operator" in text
    assert "line.toml: security.login_throttle_s: got -1; expected a number of seconds > 0" in text
    assert "line.toml: security.limits.max_nodes_per_read: got 0; expected an integer in [1, " in text
    assert "line.toml: security.limits.max_cats: got an unknown key" in text
