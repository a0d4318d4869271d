"""``linetwin init DIR``: a starting line config for a new plant (and its users file with a first admin).

The config is the shipped template (``examples/templates/new_line.toml``: one mixing tank behind a Modbus PLC,
encrypted endpoints only, anonymous off, SQLite history) with the line's name; ``linetwin check`` passes on it.
With ``--password-file FILE`` or ``$LINETWIN_ADMIN_PASSWORD`` the first admin user is written to the line's data
directory (``DATA/security/users.toml``; audited); without either, no users file is written and the command says
how to add one. A local admin command (file-system access); an existing config is never overwritten.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from pathlib import Path

from linetwin_cli.common import data_dir_arg

TEMPLATE = "templates/new_line.toml"
TEMPLATE_LINE = "new_line"
PASSWORD_ENV = "LINETWIN_ADMIN_PASSWORD"


def add_init_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``init`` command."""
    init = sub.add_parser("init", help="write a starting line config (and a first admin user) for a new plant")
    init.add_argument("directory", help="folder for the line config (created if missing)")
    init.add_argument("--line", default=None, metavar="NAME",
                      help="line name (letters, digits, _; default: the folder's name)")
    init.add_argument("--admin", default="admin", metavar="USER", help="the first admin's user name (default admin)")
    init.add_argument("--password-file", default=None, metavar="FILE",
                      help=f"file holding the first admin's password (else ${PASSWORD_ENV}; neither: no users file)")
    data_dir_arg(init)


def _line_name(args: argparse.Namespace) -> str:
    from plc_adapters.config_issues import NAME_RE

    name = args.line if args.line is not None else re.sub(r"\W", "_", Path(args.directory).resolve().name)
    if not NAME_RE.match(name):
        raise ValueError(f"--line: got {name!r}; expected a line name of letters, digits and _ starting with a "
                         "letter (pass --line NAME)")
    return name


def _admin_password(args: argparse.Namespace) -> str | None:
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"--password-file: got {args.password_file} ({exc.strerror}); expected a readable "
                             "file holding the password") from exc
    return os.environ.get(PASSWORD_ENV) or None


def run_init(args: argparse.Namespace) -> int:
    from linetwin_cli.security import audit_admin
    from linetwin_examples import example_path
    from twin_server.config import parse_line_config
    from twin_server.data_dir import line_data_dir
    from twin_server.security.roles import Role
    from twin_server.security.users_file import UsersFile, UsersFileError

    try:
        name = _line_name(args)
        password = _admin_password(args)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    target = Path(args.directory) / f"{name}.toml"
    if target.exists():
        print(f"{target}: exists; expected a new file (init never overwrites a line config)", file=sys.stderr)
        return 2
    text = example_path(TEMPLATE).read_text(encoding="utf-8").replace(TEMPLATE_LINE, name)
    config = parse_line_config(tomllib.loads(text), source=str(target))
    data = line_data_dir(config, args.data_dir)
    users = None
    if password is not None:  # checked before anything is written: a refusal leaves nothing behind
        try:
            users = UsersFile.load(data.users_file)
            users.add(args.admin, Role.ADMIN, password)
        except UsersFileError as exc:
            print(str(exc), file=sys.stderr)
            return 2
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}: line '{name}' (edit its PLC address and tag map, then `linetwin check {target}`)")
    if users is None:
        print(f"no users file written (no --password-file, no ${PASSWORD_ENV}); add the first admin with "
              f"`linetwin user add {args.admin} --role admin --config {target}`")
        return 0
    users.save()
    audit_admin(data.security, "user_add", f"users.{args.admin}", {"role": "admin"}, "linetwin init")
    print(f"wrote {data.users_file}: admin user '{args.admin}'; data directory {data.root}")
    return 0
