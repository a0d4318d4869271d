"""The operators of ``linetwin demo`` and ``linetwin hil run``: the demo's ``operator`` user with a generated
password, a HIL run's own data dir, operator and engineer, and what the demo prints about security."""

from __future__ import annotations

import os
from pathlib import Path

from linetwin_cli.security import audit_admin
from twin_server.data_dir import LineDataDir
from twin_server.security.passwords import generate_password
from twin_server.security.roles import Role
from twin_server.security.users_file import UsersFile

DEMO_OPERATOR = "operator"
DEMO_CREDENTIALS = "demo_operator.txt"


def demo_operator(data: LineDataDir) -> tuple[str, str, Path]:
    """The demo's ``operator`` user: created with a generated password on first start (kept, mode 0600, in
    ``demo_operator.txt`` beside the users file so the demo can print it at every start)."""
    data_dir = data.security
    creds = data_dir / DEMO_CREDENTIALS
    users = UsersFile.load(data.users_file)
    record = users.users.get(DEMO_OPERATOR)
    if record is not None and creds.is_file():
        password = creds.read_text(encoding="utf-8").strip()
        if record.check_password(password):
            return DEMO_OPERATOR, password, users.path
    if record is not None and not creds.is_file():
        return DEMO_OPERATOR, "(set by you; not stored)", users.path
    password = generate_password()
    users.add(DEMO_OPERATOR, Role.OPERATOR, password, replace_existing=True)
    users.save()
    creds.write_text(password + "\n", encoding="utf-8")
    os.chmod(creds, 0o600)
    audit_admin(data_dir, "user_add", f"users.{DEMO_OPERATOR}", {"role": "operator"}, "demo first start")
    return DEMO_OPERATOR, password, users.path


def scenario_operator(data: LineDataDir) -> tuple[str, str]:
    """A HIL run's operator (``hil_operator``: writes, StartBatch): a fresh password in the run's users file."""
    return _scenario_user(data, "hil_operator", Role.OPERATOR)


def scenario_engineer(data: LineDataDir) -> tuple[str, str]:
    """A HIL run's engineer (``hil_engineer``: ApplyParameterSet before a batch): a fresh password in the run's
    users file."""
    return _scenario_user(data, "hil_engineer", Role.ENGINEER)


def _scenario_user(data: LineDataDir, name: str, role: Role) -> tuple[str, str]:
    users = UsersFile.load(data.users_file)
    password = generate_password()
    users.add(name, role, password, replace_existing=True)
    users.save()
    return name, password


def demo_security_lines(security: object, operator: tuple[str, str, Path]) -> str:
    """What the demo prints about security at start-up (endpoints, None warning, operator credentials)."""
    from twin_server.security.setup import TwinSecurity

    assert isinstance(security, TwinSecurity)
    name, password, users_path = operator
    lines = [f"  security: endpoints {security.endpoint_summary}; anonymous = {security.settings.anonymous}"]
    if security.settings.allow_none:
        lines.append("  WARNING: SecurityPolicy None is enabled for the quick start (unsigned, unencrypted); "
                     "production configs turn it off (examples/production_line.toml)")
    lines.append(f"  operator login (may write setpoints, mode, targets, StartBatch): user '{name}' password "
                 f"'{password}' (users file {users_path})")
    lines.append(f"  audit trail {security.audit_path}; PKI {security.pki.root}")
    return "\n".join(lines)
