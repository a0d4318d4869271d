"""``linetwin user | pki | audit``: what the three security command groups share (which line's data dir, the
audit entry of an admin change) and their dispatch; each group is its own module (:mod:`linetwin_cli.user`,
:mod:`linetwin_cli.pki`, :mod:`linetwin_cli.audit`).

Every command takes ``--config LINE.toml`` (default: the demo line) and ``--data-dir DIR`` (the line's data
directory, as for every command; :mod:`twin_server.data_dir`) and works on its ``security/`` folder.
Changes to users and trust are themselves audited (user = the local OS account).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from linetwin_cli.failures import config_error_text
from twin_server.audit import AuditEntry, AuditOutcome
from twin_server.config import ConfigError, LineConfig, load_line_config
from twin_server.data_dir import layout, line_data_dir
from twin_server.security.audit_admin import record_admin_entry
from twin_server.security.audit_key import AuditKeyError
from twin_server.security.audit_store import AuditStoreError
from twin_server.security.users_file import UsersFileError

COMMANDS = ("user", "pki", "audit")


def data_dir_options(p: argparse.ArgumentParser) -> None:
    """``--config`` / ``--data-dir``: which line's data dir a security command works on."""
    from linetwin_cli.common import data_dir_arg

    p.add_argument("--config", default=None, help="line config whose data dir to use (default: the demo line)")
    data_dir_arg(p)


def add_security_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``user``, ``pki`` and ``audit`` command groups."""
    from linetwin_cli.audit import add_audit_commands
    from linetwin_cli.pki import add_pki_commands
    from linetwin_cli.user import add_user_commands

    add_user_commands(sub)
    add_pki_commands(sub)
    add_audit_commands(sub)


def _data_dir(args: argparse.Namespace) -> tuple[Path, LineConfig | None]:
    """The security folder of the line's data dir (``--data-dir`` alone: its default ``security/``), and the
    config when one was read."""
    if args.data_dir and not args.config:
        return layout(Path(args.data_dir)).security, None
    from linetwin_cli.common import demo_config_path

    config = load_line_config(Path(args.config) if args.config else demo_config_path())
    return line_data_dir(config, args.data_dir).security, config


def audit_admin(data_dir: Path, action: str, node: str, new: object = None, reason: str = "") -> None:
    """Record an admin change made from the command line in the audit store of the security folder ``data_dir``."""
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
    except (UsersFileError, AuditKeyError, AuditStoreError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(config_error_text(exc), file=sys.stderr)
        return 2
