"""``linetwin user | pki | audit``: manage users, the PKI folder and the audit store of a line.

Every command takes ``--config LINE.toml`` (default: the demo line) or ``--data-dir DIR`` to say which line's
data directory it works on. Changes to users and trust are themselves audited (user = the local OS account).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from twin_server.audit import AuditEntry, AuditOutcome
from twin_server.config import ConfigError, LineConfig, load_line_config
from twin_server.security.audit_admin import record_admin_entry, verify_lines
from twin_server.security.audit_key import AuditKeyError
from twin_server.security.audit_store import AuditStoreError, export_entries, segment_paths
from twin_server.security.passwords import generate_password
from twin_server.security.pki import (
    PkiPaths,
    common_name,
    ensure_server_certificate,
    fingerprint,
    load_certificate_file,
    trust_certificate,
)
from twin_server.security.roles import ROLE_NAMES, Role
from twin_server.security.setup import AUDIT_DB, PKI_DIR, USERS_FILE
from twin_server.security.users_file import UsersFile, UsersFileError

COMMANDS = ("user", "pki", "audit")
DEMO_OPERATOR = "operator"
DEMO_CREDENTIALS = "demo_operator.txt"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="line config whose data dir to use (default: the demo line)")
    p.add_argument("--data-dir", default=None, help="data dir (users.toml, pki/, audit.sqlite); overrides --config")


def add_security_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    user = sub.add_parser("user", help="users and roles (users.toml in the line's data dir)")
    us = user.add_subparsers(dest="user_command", required=True)
    add = us.add_parser("add", help="add a user (or --replace one); password from a prompt or --password-stdin")
    add.add_argument("name", help="user name (letters, digits, . _ -)")
    add.add_argument("--role", required=True, choices=ROLE_NAMES, help="viewer | operator | engineer | admin")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    add.add_argument("--no-password", action="store_true", help="certificate login only (see user map-cert)")
    add.add_argument("--replace", action="store_true", help="replace an existing user's role and password")
    _common(add)
    lst = us.add_parser("list", help="list users, roles and whether they are enabled")
    _common(lst)
    for name, text in (("disable", "disable a user (logins refused)"), ("enable", "enable a disabled user")):
        c = us.add_parser(name, help=text)
        c.add_argument("name", help="user name")
        _common(c)
    mc = us.add_parser("map-cert", help="map an X.509 user certificate (DER or PEM) to a user")
    mc.add_argument("name", help="user name")
    mc.add_argument("certificate", help="the user's X.509 certificate (PEM or DER)")
    _common(mc)

    pki = sub.add_parser("pki", help="the server certificate and trusted / rejected client certificates")
    ps = pki.add_subparsers(dest="pki_command", required=True)
    _common(ps.add_parser("show", help="own certificate, trusted and rejected certificates"))
    tr = ps.add_parser("trust", help="trust a client certificate (e.g. a file from rejected/)")
    tr.add_argument("certificate", help="client certificate to trust (e.g. a file under pki/rejected/)")
    _common(tr)
    cr = ps.add_parser("create", help="create the server key and certificate (done on first start anyway)")
    cr.add_argument("--force", action="store_true", help="replace an existing certificate")
    _common(cr)

    audit = sub.add_parser("audit", help="the tamper-evident audit trail (audit.sqlite)")
    aus = audit.add_subparsers(dest="audit_command", required=True)
    ve = aus.add_parser("verify", help="check the keyed hash chain; names any edited, deleted or reordered entry")
    ve.add_argument("--key-file", default=None, help="the chain's key (default: audit.key beside the store)")
    _common(ve)
    ex = aus.add_parser("export", help="export entries between two UTC times (ISO 8601) as JSON lines or CSV")
    ex.add_argument("--from", dest="start", default=None, help="first time (inclusive), e.g. 2026-11-30T06:00:00Z")
    ex.add_argument("--to", dest="end", default=None, help="last time (exclusive)")
    ex.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format (default jsonl)")
    ex.add_argument("--output", default=None, help="file (default: stdout)")
    _common(ex)


def _data_dir(args: argparse.Namespace) -> tuple[Path, LineConfig | None]:
    if args.data_dir:
        return Path(args.data_dir), None
    from twin_server.cli import DEFAULT_DEMO_CONFIG

    path = Path(args.config) if args.config else DEFAULT_DEMO_CONFIG
    config = load_line_config(path)
    return config.security.resolved_data_dir(config.name), config


def _audit_admin(data_dir: Path, action: str, node: str, new: object = None, reason: str = "") -> None:
    record_admin_entry(data_dir, AuditEntry(action=action, user=f"{getpass.getuser()} (local)", role="admin",
                                            node=node, outcome=AuditOutcome.ACCEPTED, new_value=new, reason=reason,
                                            client="linetwin CLI"))


def run_security_command(args: argparse.Namespace) -> int:
    try:
        data_dir, config = _data_dir(args)
        if args.command == "user":
            return _user(args, data_dir)
        if args.command == "pki":
            return _pki(args, data_dir, config)
        return _audit(args, data_dir)
    except (UsersFileError, ConfigError, AuditKeyError, AuditStoreError) as exc:
        print(str(exc), file=sys.stderr)
        return 2


def _read_password(args: argparse.Namespace) -> str | None:
    if args.no_password:
        return None
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UsersFileError("<prompt>: password: got two different entries; expected the same password twice")
    return first


def _user(args: argparse.Namespace, data_dir: Path) -> int:
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
        _audit_admin(data_dir, "user_add", f"users.{record.name}", {"role": record.role.label})
        print(f"user {record.name} ({record.role.label}) saved in {users.path}")
    elif cmd in ("disable", "enable"):
        record = users.set_disabled(args.name, cmd == "disable")
        users.save()
        _audit_admin(data_dir, f"user_{cmd}", f"users.{record.name}")
        print(f"user {record.name} {cmd}d")
    elif cmd == "map-cert":
        cert = load_certificate_file(Path(args.certificate))
        from cryptography.hazmat.primitives.serialization import Encoding

        record = users.map_certificate(args.name, cert.public_bytes(Encoding.DER))
        users.save()
        _audit_admin(data_dir, "user_map_cert", f"users.{record.name}", fingerprint(cert))
        print(f"certificate {common_name(cert)} (SHA-256 {fingerprint(cert)}) mapped to {record.name}")
    return 0


def _pki(args: argparse.Namespace, data_dir: Path, config: LineConfig | None) -> int:
    paths = PkiPaths(data_dir / PKI_DIR)
    if args.pki_command == "show":
        print(f"PKI folder {paths.root}")
        for title, folder in (("own", paths.own), ("trusted", paths.trusted), ("rejected", paths.rejected)):
            certs = []
            for f in sorted(folder.glob("*")) if folder.is_dir() else []:
                if f.suffix.lower() not in (".der", ".pem", ".crt"):
                    continue
                try:
                    certs.append((f, load_certificate_file(f)))
                except ValueError:
                    continue  # the private key (own/key.pem)
            print(f"{title}: {len(certs)}")
            for f, cert in certs:
                print(f"  {f.name}: CN={common_name(cert)} valid until {cert.not_valid_after_utc:%Y-%m-%d} "
                      f"SHA-256 {fingerprint(cert)}")
        return 0
    if args.pki_command == "trust":
        target = trust_certificate(paths, Path(args.certificate))
        _audit_admin(data_dir, "pki_trust", str(target), fingerprint(load_certificate_file(target)))
        print(f"trusted: {target}")
        return 0
    if config is None:
        raise UsersFileError("--data-dir: pki create: got no line config; expected --config LINE.toml (the "
                             "certificate names the line's application URI and host)")
    if args.force:
        paths.certificate.unlink(missing_ok=True)
    import asyncio

    from twin_server.config import ServerConfig

    server: ServerConfig = config.server
    created = asyncio.run(ensure_server_certificate(paths, f"urn:linetwin:{config.name}", server.host))
    cert = load_certificate_file(paths.certificate)
    if created:
        _audit_admin(data_dir, "pki_create", str(paths.certificate), fingerprint(cert))
    print(f"{'created' if created else 'kept'} {paths.certificate}: CN={common_name(cert)} SHA-256 {fingerprint(cert)}")
    return 0


def _parse_time(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsersFileError(f"<command line>: {flag}: got {text[:40]!r}; expected an ISO 8601 time like "
                             "2026-11-30T06:00:00Z") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _audit(args: argparse.Namespace, data_dir: Path) -> int:
    path = data_dir / AUDIT_DB
    if not segment_paths(path):
        print(f"{path}: no audit store here", file=sys.stderr)
        return 2
    if args.audit_command == "verify":
        code, lines = verify_lines(data_dir, Path(args.key_file) if args.key_file else None)
        print("\n".join(lines))
        return code
    rows = export_entries(path, _parse_time(args.start, "--from"), _parse_time(args.end, "--to"))
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        if args.format == "jsonl":
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, default=repr) + "\n")
        else:
            writer = None
            for row in rows:
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow({k: json.dumps(v, ensure_ascii=False) if k in ("old_value", "new_value") else v
                                 for k, v in row.items()})
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


# --- operators for the demo and HIL runs -----------------------------------------------------------------------

def demo_operator(config: LineConfig) -> tuple[str, str, Path]:
    """The demo's ``operator`` user: created with a generated password on first start (kept, mode 0600, in
    ``demo_operator.txt`` beside the users file so the demo can print it at every start)."""
    data_dir = config.security.resolved_data_dir(config.name)
    creds = data_dir / DEMO_CREDENTIALS
    users = UsersFile.load(data_dir / USERS_FILE)
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
    _audit_admin(data_dir, "user_add", f"users.{DEMO_OPERATOR}", {"role": "operator"}, "demo first start")
    return DEMO_OPERATOR, password, users.path


def scenario_operator(config: LineConfig, data_dir: Path) -> tuple[LineConfig, tuple[str, str]]:
    """A HIL run's twin: its own data dir (audit trail beside the report) with a fresh operator password."""
    config = dataclasses.replace(config, security=dataclasses.replace(config.security, data_dir=data_dir))
    users = UsersFile.load(data_dir / USERS_FILE)
    password = generate_password()
    users.add("hil_operator", Role.OPERATOR, password, replace_existing=True)
    users.save()
    return config, ("hil_operator", password)


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
