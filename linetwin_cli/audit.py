"""``linetwin audit verify | export``: the tamper-evident audit trail (``audit.sqlite``) of a line."""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from linetwin_cli.failures import CommandError
from linetwin_cli.security import data_dir_options
from twin_server.security.audit_admin import verify_lines
from twin_server.security.audit_store import AUDIT_DB, export_entries, segment_paths
from twin_server.security.users_file import UsersFileError


def add_audit_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``audit`` command group."""
    audit = sub.add_parser("audit", help="the tamper-evident audit trail (audit.sqlite)")
    aus = audit.add_subparsers(dest="audit_command", required=True)
    verify = aus.add_parser("verify", help="check the keyed hash chain; names any edited, deleted or reordered entry")
    verify.add_argument("--key-file", default=None, help="the chain's key (default: audit.key beside the store, or "
                                                         "the key file the twin recorded in it)")
    data_dir_options(verify)
    ex = aus.add_parser("export", help="export entries between two UTC times (ISO 8601) as JSON lines or CSV")
    ex.add_argument("--from", dest="start", default=None, help="first time (inclusive), e.g. 2026-11-30T06:00:00Z")
    ex.add_argument("--to", dest="end", default=None, help="last time (exclusive)")
    ex.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format (default jsonl)")
    ex.add_argument("--output", default=None, help="file (default: stdout)")
    data_dir_options(ex)


def _parse_time(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsersFileError(f"<command line>: {flag}: got {text[:40]!r}; expected an ISO 8601 time like "
                             "2026-11-30T06:00:00Z") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def run_audit(args: argparse.Namespace, data_dir: Path) -> int:
    """Run an ``audit`` command on the audit store of ``data_dir``: 0 OK, 1 tampered, 2 no store (or no key), an
    unreadable store or bad options. A closed standard output ends an export quietly (:mod:`linetwin_cli.failures`)."""
    path = data_dir / AUDIT_DB
    if not segment_paths(path):
        print(f"{path}: no audit store here", file=sys.stderr)
        return 2
    try:
        return _verify(args, data_dir) if args.audit_command == "verify" else _export(args, path)
    except sqlite3.DatabaseError as exc:
        raise CommandError(f"{path}: cannot read the audit store: {exc}; expected the SQLite audit trail "
                           "written by linetwin") from None


def _verify(args: argparse.Namespace, data_dir: Path) -> int:
    code, lines = verify_lines(data_dir, Path(args.key_file) if args.key_file else None)
    print("\n".join(lines))
    return code


def _export(args: argparse.Namespace, path: Path) -> int:
    start, end = _parse_time(args.start, "--from"), _parse_time(args.end, "--to")
    if start is not None and end is not None and start > end:
        raise CommandError(f"--from and --to: got --from {args.start} after --to {args.end}; expected --from at or "
                           "before --to")
    rows = export_entries(path, start, end)
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
