"""``linetwin user add | list | disable | enable | map-cert``: users and roles (``users.toml`` in the line's data
dir). Changes are audited (user = the local OS account).

``user add`` takes the password from one of: ``--password-file FILE`` (its first line), ``--password-stdin`` (the
first line of standard input), the environment variable ``LINETWIN_PASSWORD`` (for scripts), or a prompt on the
terminal (twice). With none of them and no terminal on standard input it refuses in one line rather than wait.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from linetwin_cli.failures import CommandError
from linetwin_cli.pki import read_certificate
from linetwin_cli.security import audit_admin, data_dir_options
from twin_server.security.roles import ROLE_NAMES, Role
from twin_server.security.users_file import USERS_FILE, UsersFile, UsersFileError

PASSWORD_ENV = "LINETWIN_PASSWORD"
"""The environment variable ``user add`` reads the password from when no option names a source."""


def add_user_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``user`` command group."""
    user = sub.add_parser("user", help="users and roles (users.toml in the line's data dir)")
    us = user.add_subparsers(dest="user_command", required=True)
    add = us.add_parser("add", help="add a user (or --replace one); password from a prompt, --password-file, "
                        f"--password-stdin or ${PASSWORD_ENV}")
    add.add_argument("name", help="user name (letters, digits, . _ -)")
    add.add_argument("--role", required=True, choices=ROLE_NAMES, help="viewer | operator | engineer | admin")
    source = add.add_mutually_exclusive_group()
    source.add_argument("--password-file", default=None, metavar="FILE",
                        help=f"read the password from the first line of FILE (for scripts; or set ${PASSWORD_ENV})")
    source.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    source.add_argument("--no-password", action="store_true", help="certificate login only (see user map-cert)")
    add.add_argument("--replace", action="store_true", help="replace an existing user's role and password")
    data_dir_options(add)
    lst = us.add_parser("list", help="list users, roles and whether they are enabled")
    data_dir_options(lst)
    for name, text in (("disable", "disable a user (logins refused)"), ("enable", "enable a disabled user")):
        c = us.add_parser(name, help=text)
        c.add_argument("name", help="user name")
        data_dir_options(c)
    mc = us.add_parser("map-cert", help="map an X.509 user certificate (DER or PEM) to a user")
    mc.add_argument("name", help="user name")
    mc.add_argument("certificate", help="the user's X.509 certificate (PEM or DER)")
    data_dir_options(mc)


def _first_line(text: str, where: str) -> str:
    password = text.split("\n", 1)[0].rstrip("\r")
    if not password:
        raise CommandError(f"{where}: got no password (an empty first line); expected the password on it")
    return password


def _read_password(args: argparse.Namespace) -> str | None:
    """The new user's password from the first source given (module docstring); ``None`` for ``--no-password``."""
    if args.no_password:
        return None
    if args.password_file is not None:
        path = Path(args.password_file)
        try:
            return _first_line(path.read_text(encoding="utf-8"), f"--password-file {path}")
        except OSError as exc:
            raise CommandError(f"--password-file {path}: cannot read: {exc.strerror or exc}; expected a file with "
                               "the password on its first line") from None
        except UnicodeDecodeError:
            raise CommandError(f"--password-file {path}: got bytes that are not UTF-8 text; expected the password "
                               "on its first line") from None
    if args.password_stdin:
        if sys.stdin is None or sys.stdin.closed:
            raise CommandError("--password-stdin: standard input is closed; expected the password on its first line")
        return _first_line(sys.stdin.readline(), "--password-stdin")
    if PASSWORD_ENV in os.environ:
        return _first_line(os.environ[PASSWORD_ENV], f"${PASSWORD_ENV}")
    if sys.stdin is None or sys.stdin.closed or not sys.stdin.isatty():
        raise CommandError(f"user add {args.name}: no terminal on standard input to ask for the password; expected "
                           f"--password-file FILE, --password-stdin, ${PASSWORD_ENV} or --no-password")
    try:
        first, again = getpass.getpass("password: "), getpass.getpass("again: ")
    except EOFError:
        raise CommandError("<prompt>: password: got end of input; expected the password twice") from None
    if first != again:
        raise UsersFileError("<prompt>: password: got two different entries; expected the same password twice")
    return first


def run_user(args: argparse.Namespace, data_dir: Path) -> int:
    """Run a ``user`` command on the users file of ``data_dir``; 0 on success."""
    users = UsersFile.load(data_dir / USERS_FILE)
    cmd = args.user_command
    if cmd == "list":
        if not users.exists():
            print(f"{users.path}: no users file yet (only anonymous access)")
        for u in sorted(users.users.values(), key=lambda u: u.name):
            login = ("password" if u.password else "") + (" + certificate" if u.certificate_sha256 else "")
            print(f"{u.name:<20} {u.role.label:<9} {'disabled' if u.disabled else 'enabled':<9} {login.strip(' +')}")
        return 0
    if cmd == "add":
        record = users.add(args.name, Role.parse(args.role), _read_password(args), replace_existing=args.replace)
        users.save()
        audit_admin(data_dir, "user_add", f"users.{record.name}", {"role": record.role.label})
        print(f"user {record.name} ({record.role.label}) saved in {users.path}")
    elif cmd in ("disable", "enable"):
        record = users.set_disabled(args.name, cmd == "disable")
        users.save()
        audit_admin(data_dir, f"user_{cmd}", f"users.{record.name}")
        print(f"user {record.name} {cmd}d")
    elif cmd == "map-cert":
        cert = read_certificate(Path(args.certificate))
        from cryptography.hazmat.primitives.serialization import Encoding

        from twin_server.security.pki import common_name, fingerprint  # asyncua: only for map-cert

        record = users.map_certificate(args.name, cert.public_bytes(Encoding.DER))
        users.save()
        audit_admin(data_dir, "user_map_cert", f"users.{record.name}", fingerprint(cert))
        print(f"certificate {common_name(cert)} (SHA-256 {fingerprint(cert)}) mapped to {record.name}")
    return 0
