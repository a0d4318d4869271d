"""``linetwin user add | list | disable | enable | map-cert``: users and roles (``users.toml`` in the line's data
dir). Changes are audited (user = the local OS account)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from linetwin_cli.security import audit_admin, data_dir_options
from twin_server.security.pki import common_name, fingerprint, load_certificate_file
from twin_server.security.roles import ROLE_NAMES, Role
from twin_server.security.setup import USERS_FILE
from twin_server.security.users_file import UsersFile, UsersFileError


def add_user_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``user`` command group."""
    user = sub.add_parser("user", help="users and roles (users.toml in the line's data dir)")
    us = user.add_subparsers(dest="user_command", required=True)
    add = us.add_parser("add", help="add a user (or --replace one); password from a prompt or --password-stdin")
    add.add_argument("name", help="user name (letters, digits, . _ -)")
    add.add_argument("--role", required=True, choices=ROLE_NAMES, help="viewer | operator | engineer | admin")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    add.add_argument("--no-password", action="store_true", help="certificate login only (see user map-cert)")
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


def _read_password(args: argparse.Namespace) -> str | None:
    if args.no_password:
        return None
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
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
        cert = load_certificate_file(Path(args.certificate))
        from cryptography.hazmat.primitives.serialization import Encoding

        record = users.map_certificate(args.name, cert.public_bytes(Encoding.DER))
        users.save()
        audit_admin(data_dir, "user_map_cert", f"users.{record.name}", fingerprint(cert))
        print(f"certificate {common_name(cert)} (SHA-256 {fingerprint(cert)}) mapped to {record.name}")
    return 0
