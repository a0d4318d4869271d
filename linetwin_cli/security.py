"""``linetwin user | pki | audit``: what the three security command groups share (which line's data dir, the
audit entry of an admin change) and their dispatch; each group is its own module (:mod:`linetwin_cli.user`,
:mod:`linetwin_cli.pki`, :mod:`linetwin_cli.audit`).

Every command takes ``--config LINE.toml`` (default: the demo line) or ``--data-dir DIR`` to say which line's
data directory it works on. Changes to users and trust are themselves audited (user = the local OS account).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from twin_server.audit import AuditEntry, AuditOutcome
from twin_server.config import ConfigError, LineConfig, load_line_config
from twin_server.security.audit_admin import record_admin_entry
from twin_server.security.audit_key import AuditKeyError
from twin_server.security.audit_store import AuditStoreError
from twin_server.security.users_file import UsersFileError

COMMANDS = ("user", "pki", "audit")


def data_dir_options(p: argparse.ArgumentParser) -> None:
    """``--config`` / ``--data-dir``: which line's data dir a security command works on."""
    p.add_argument("--config", default=None, help="line config whose data dir to use (default: the demo line)")
    p.add_argument("--data-dir", default=None, help="data dir (users.toml, pki/, audit.sqlite); overrides --config")


def add_security_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``user``, ``pki`` and ``audit`` command groups."""
    from linetwin_cli.audit import add_audit_commands
    from linetwin_cli.pki import add_pki_commands
    from linetwin_cli.user import add_user_commands

    add_user_commands(sub)
    add_pki_commands(sub)
    add_audit_commands(sub)


def _data_dir(args: argparse.Namespace) -> tuple[Path, LineConfig | None]:
    if args.data_dir:
        return Path(args.data_dir), None
    from linetwin_cli.common import DEFAULT_DEMO_CONFIG

    path = Path(args.config) if args.config else DEFAULT_DEMO_CONFIG
    config = load_line_config(path)
    return config.security.resolved_data_dir(config.name), config


def audit_admin(data_dir: Path, action: str, node: str, new: object = None, reason: str = "") -> None:
    """Record an admin change made from the command line in the data dir's audit store."""
    record_admin_entry(data_dir, AuditEntry(action=action, user=f"{getpass.getuser()} (local)", role="admin",
                                            node=node, outcome=AuditOutcome.ACCEPTED, new_value=new, reason=reason,
                                            client="linetwin CLI"))


def run_security_command(args: argparse.Namespace) -> int:
    from linetwin_cli.audit import run_audit
    from linetwin_cli.pki import run_pki
    from linetwin_cli.user import run_user

    try:
        data_dir, config = _data_dir(args)
        if args.command == "user":
            return run_user(args, data_dir)
        if args.command == "pki":
            return run_pki(args, data_dir, config)
        return run_audit(args, data_dir)
    except (UsersFileError, ConfigError, AuditKeyError, AuditStoreError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
