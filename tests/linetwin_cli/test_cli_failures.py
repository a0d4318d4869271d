"""Every command fails in one clear line (issue 15, finding 9): fed a missing file, a malformed file, a closed
stdin, a closed stdout pipe or conflicting options, each command group (demo, serve, check, hil, user, pki, audit,
history, simulate, surrogate) exits 2 for bad input (1 for a failure while running) with one line on stderr that
names the file or option, never a traceback; a closed stdout ends it quietly with 141 (128 + SIGPIPE), as the Unix
tools do.

Each command runs as a subprocess with its standard input closed (as from cron or a service manager): the
closed-stdin case of every command group, beside the ones that read stdin (``user add``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from linetwin_cli.failures import EXIT_CLOSED_PIPE, run_reporting_failures
from linetwin_cli.main import main
from tests.conftest import free_tcp_port
from tests.linetwin_cli.test_cli_usability import line_with_ports

REPO = Path(__file__).resolve().parents[2]
MIXING_CASE = REPO / "examples" / "cases" / "mixing_tank.toml"
PILOT = REPO / "examples" / "pilot_line.toml"


@dataclass(frozen=True)
class Case:
    """One mistake: the command line (``{name}`` fields filled from :func:`files`), the exit status and what the
    one stderr line must name."""

    group: str
    mistake: str
    argv: str
    code: int
    names: tuple[str, ...]


CASES = [
    # a missing file
    Case("demo", "missing file", "demo --config {missing} --duration 5", 2, ("{missing}",)),
    Case("serve", "missing file", "serve {missing} --duration 5", 2, ("{missing}",)),
    Case("check", "missing file", "check {missing}", 2, ("{missing}",)),
    Case("hil", "missing file", "hil serve {missing} --duration 5", 2, ("{missing}",)),
    Case("hil", "missing file", "hil run {missing}", 2, ("{missing}",)),
    Case("user", "missing file", "user map-cert bob {missing} --data-dir {empty_dir}", 2, ("{missing}",)),
    Case("user", "missing file", "user add bob --role operator --password-file {missing} --data-dir {empty_dir}", 2,
         ("--password-file", "{missing}")),
    Case("pki", "missing file", "pki trust {missing} --data-dir {empty_dir}", 2, ("{missing}", "certificate")),
    Case("audit", "missing file", "audit verify --data-dir {empty_dir}", 2, ("{empty_dir}/security/audit.sqlite",)),
    Case("audit", "missing file", "audit export --data-dir {audited} --output {missing_dir}/audit.csv", 2,
         ("{missing_dir}/audit.csv",)),
    Case("history", "missing file", "history export {missing}", 2, ("{missing}",)),
    Case("history", "missing file", "history export {pilot} --kind events --data-dir {empty_dir} "
         "--output {missing_dir}/events.csv", 2, ("{missing_dir}/events.csv",)),
    Case("simulate", "missing file", "simulate {missing}", 2, ("{missing}",)),
    Case("surrogate", "missing file", "surrogate train {missing} --samples 5", 2, ("{missing}",)),
    Case("surrogate", "missing file", "surrogate evaluate {missing_dir}", 2, ("{missing_dir}/surrogate.json",)),
    # a malformed file
    Case("demo", "malformed file", "demo --config {malformed} --duration 5", 2, ("{malformed}", "TOML")),
    Case("serve", "malformed file", "serve {malformed} --duration 5", 2, ("{malformed}", "TOML")),
    Case("check", "malformed file", "check {malformed}", 2, ("{malformed}", "TOML")),
    Case("hil", "malformed file", "hil serve {malformed} --duration 5", 2, ("{malformed}", "TOML")),
    Case("hil", "malformed file", "hil run {malformed}", 2, ("{malformed}", "TOML")),
    Case("user", "malformed file", "user list --data-dir {bad_users}", 2, ("{bad_users}/security/users.toml",)),
    Case("user", "malformed file", "user map-cert bob {not_a_certificate} --data-dir {empty_dir}", 2,
         ("{not_a_certificate}", "certificate")),
    Case("pki", "malformed file", "pki trust {not_a_certificate} --data-dir {empty_dir}", 2,
         ("{not_a_certificate}", "certificate")),
    Case("audit", "malformed file", "audit verify --data-dir {bad_store}", 2, ("{bad_store}/security/audit.sqlite",)),
    Case("audit", "malformed file", "audit export --data-dir {bad_store}", 2, ("{bad_store}/security/audit.sqlite",)),
    Case("history", "malformed file", "history export {malformed}", 2, ("{malformed}", "TOML")),
    Case("history", "malformed file", "history export {pilot} --kind events --data-dir {bad_store}", 2,
         ("{bad_store}", "history")),
    Case("simulate", "malformed file", "simulate {malformed}", 2, ("{malformed}", "TOML")),
    Case("surrogate", "malformed file", "surrogate train {malformed} --samples 5", 2, ("{malformed}", "TOML")),
    Case("surrogate", "malformed file", "surrogate evaluate {bad_store}", 2, ("{bad_store}/surrogate.json",)),
    # closed stdin where a command reads it
    Case("user", "closed stdin", "user add bob --role operator --data-dir {empty_dir}", 2,
         ("terminal", "--password-file", "LINETWIN_PASSWORD")),
    Case("user", "closed stdin", "user add bob --role operator --password-stdin --data-dir {empty_dir}", 2,
         ("--password-stdin", "closed")),
    # conflicting options, and options the parser refuses (one line too, not the usage text)
    Case("user", "conflicting options", "user add bob --role operator --password-stdin --password-file {missing} "
         "--data-dir {empty_dir}", 2, ("--password-file", "--password-stdin")),
    Case("audit", "conflicting options", "audit export --from 2030-01-01T00:00:00Z --to 2020-01-01T00:00:00Z "
         "--data-dir {audited}", 2, ("--from", "--to")),
    Case("history", "conflicting options", "history export {pilot} --kind events --from 1h --to 2h "
         "--data-dir {empty_dir}", 2, ("--from", "--to")),
    Case("surrogate", "conflicting options", "surrogate train {mixing_case} --config {pilot} --unit crystallizer "
         "--samples 5", 2, ("--config", "{mixing_case}")),
    Case("surrogate", "conflicting options", "surrogate train {mixing_case} --until 60 --samples 5", 2,
         ("--until", "--config")),
    Case("pki", "bad option", "pki create --force --force-all --data-dir {empty_dir}", 2,
         ("--force-all",)),
    Case("demo", "bad option", "demo --speed 0", 2, ("--speed",)),
    Case("serve", "bad option", "serve {pilot} --port 70000", 2, ("--port",)),
    Case("check", "bad option", "check {pilot} {malformed}", 2, ("{malformed}",)),
    Case("hil", "bad option", "hil run {pilot} --speed -1", 2, ("--speed",)),
    Case("simulate", "bad option", "simulate {mixing_case} --until soon", 2, ("--until",)),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The files the mistakes are made with; every path under one temporary directory."""
    root = tmp_path_factory.mktemp("cli_failures")
    malformed = root / "malformed.toml"
    malformed.write_bytes(b"\x00\x01 [[[ not = toml\n")
    not_a_certificate = root / "not_a_certificate.der"
    not_a_certificate.write_text("this is not a certificate\n")
    bad_users = root / "bad_users"
    (bad_users / "security").mkdir(parents=True)  # line data dirs (docs/data-directory.md)
    (bad_users / "security" / "users.toml").write_text("users = [[[\n")
    bad_store = root / "bad_store"  # an audit store, a history file and a surrogate artefact that are not
    bad_store.mkdir()
    for name in ("security/audit.sqlite", "history/history.sqlite", "surrogate.json"):
        (bad_store / name).parent.mkdir(parents=True, exist_ok=True)
        (bad_store / name).write_text("{garbage")
    audited = root / "audited"
    password = root / "password.txt"
    password.write_text("a-long-password\n")
    assert main(["user", "add", "alice", "--role", "viewer", "--password-file", str(password),
                 "--data-dir", str(audited)]) == 0
    empty_dir = root / "empty"
    (empty_dir / "history").mkdir(parents=True)  # a line data dir with an empty history folder
    return {"missing": str(root / "missing.toml"), "missing_dir": str(root / "no_such_dir"),
            "malformed": str(malformed), "not_a_certificate": str(not_a_certificate), "bad_users": str(bad_users),
            "bad_store": str(bad_store), "audited": str(audited), "empty_dir": str(empty_dir), "pilot": str(PILOT),
            "mixing_case": str(MIXING_CASE), "password": str(password), "root": str(root)}


def run_closed_stdin(argv: list[str], stdout_closed: bool = False, env: dict[str, str] | None = None,
                     timeout_s: float = 120.0) -> tuple[int, str]:
    """Run ``linetwin argv`` with stdin closed (and, with ``stdout_closed``, its stdout pipe closed before it
    writes): exit status and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "linetwin_cli", *argv], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(0),
                            start_new_session=True, env={**os.environ, **(env or {})})
    try:
        if stdout_closed:
            assert proc.stdout is not None
            proc.stdout.close()
        _, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err.decode(errors="replace")


def test_every_command_group_is_fed_every_mistake():
    """A missing file, a malformed file and a conflicting or refused option for every group; closed stdin for
    every case (and for ``user add``, which reads it); a closed stdout below."""
    groups = {"demo", "serve", "check", "hil", "user", "pki", "audit", "history", "simulate", "surrogate"}
    assert {c.group for c in CASES} == groups
    for group in groups:
        mistakes = {c.mistake for c in CASES if c.group == group}
        assert {"missing file", "malformed file"} <= mistakes, group
        assert mistakes & {"conflicting options", "bad option"}, group


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.group}-{c.mistake.replace(' ', '_')}-{c.argv.split()[1]}")
def test_a_mistake_fails_in_one_line_naming_the_file_or_option(case: Case, files: dict[str, str]):
    argv = [part.format(**files) for part in case.argv.split()]
    code, err = run_closed_stdin(argv)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert code == case.code, err
    for name in case.names:
        assert name.format(**files) in lines[0], (name, lines[0])


CLOSED_PIPE = [
    ("check", "check {pilot}"),
    ("user", "user list --data-dir {audited}"),
    ("pki", "pki show --data-dir {audited}"),
    ("audit", "audit export --format csv --data-dir {audited}"),
    ("audit", "audit verify --data-dir {audited}"),
    ("history", "history export {pilot} --kind events --data-dir {empty_dir}"),
    ("simulate", "simulate {mixing_case} --quiet"),
]


@pytest.mark.parametrize(("group", "argv"), CLOSED_PIPE, ids=[f"{g}-{a.split()[1]}" for g, a in CLOSED_PIPE])
def test_a_closed_stdout_ends_a_command_quietly(group: str, argv: str, files: dict[str, str]):
    code, err = run_closed_stdin([part.format(**files) for part in argv.split()], stdout_closed=True)
    assert code == EXIT_CLOSED_PIPE, err
    assert err == "", err


@pytest.mark.parametrize("command", ["demo", "serve", "hil serve"])
def test_a_closed_stdout_stops_a_running_command_cleanly(command: str, tmp_path: Path):
    """demo / serve / hil serve print their endpoints once started: with nobody reading, they stop (the twin and
    the virtual PLCs shut down in order) and exit 141, with no traceback in their log."""
    port = free_tcp_port()
    config = line_with_ports(tmp_path, port, [free_tcp_port() for _ in range(3)])
    argv = {"demo": ["demo", "--config", str(config), "--port", str(port), "--data-dir", str(tmp_path / "history")],
            "serve": ["serve", str(config), "--data-dir", str(tmp_path / "history")],
            "hil serve": ["hil", "serve", str(config)]}[command]
    code, err = run_closed_stdin([*argv, "--duration", "60"], stdout_closed=True,
                                 env={"XDG_DATA_HOME": str(tmp_path / "data")})  # its users, PKI and audit
    assert code == EXIT_CLOSED_PIPE, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_user_add_takes_the_password_from_a_file_or_the_environment(files: dict[str, str], tmp_path: Path):
    data_dir = tmp_path / "security"
    assert run_closed_stdin(["user", "add", "bob", "--role", "operator", "--password-file", files["password"],
                             "--data-dir", str(data_dir)])[0] == 0
    assert run_closed_stdin(["user", "add", "carol", "--role", "engineer", "--data-dir", str(data_dir)],
                            env={"LINETWIN_PASSWORD": "another-long-one"})[0] == 0
    from twin_server.security.users_file import UsersFile

    users = UsersFile.load(data_dir / "security" / "users.toml")
    assert users.users["bob"].role.label == "operator" and users.users["carol"].role.label == "engineer"
    assert users.users["bob"].password and users.users["carol"].password
    code, err = run_closed_stdin(["user", "add", "dave", "--role", "viewer", "--data-dir", str(data_dir)],
                                 env={"LINETWIN_PASSWORD": ""})
    assert code == 2 and "LINETWIN_PASSWORD" in err
    assert "dave" not in UsersFile.load(data_dir / "security" / "users.toml").users


def test_pki_create_takes_the_line_from_config_and_the_folder_from_data_dir(tmp_path: Path, capsys):
    assert main(["pki", "create", "--config", str(PILOT), "--data-dir", str(tmp_path)]) == 0
    assert "CN=urn:linetwin:pilot_line" in capsys.readouterr().out
    assert (tmp_path / "security" / "pki" / "own" / "cert.der").is_file()


def test_pki_trust_of_a_non_certificate_changes_nothing(files: dict[str, str], tmp_path: Path):
    assert main(["pki", "trust", files["not_a_certificate"], "--data-dir", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []


def test_a_ctrl_c_before_the_command_handles_it_is_one_line(capsys):
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_reporting_failures(interrupted) == 130
    assert capsys.readouterr().err == "interrupted\n"
