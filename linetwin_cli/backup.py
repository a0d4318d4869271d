"""``linetwin backup`` and ``linetwin restore``: a line's whole data directory (:mod:`twin_server.backup`).

Local admin commands: they need file-system access to the data directory (who may run them is who may read and
write it), and each successful one writes an ``backup`` / ``restore`` entry to the line's audit trail (user = the
local OS account). A refused restore changes nothing, the audit trail included.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linetwin_cli.common import data_dir_arg, line_data, load_or_exit

COMMANDS = ("backup", "restore")


def add_backup_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``backup`` and ``restore`` commands."""
    backup = sub.add_parser("backup", help="snapshot the line's data directory into one file (the twin may run)")
    backup.add_argument("config", help="line config (TOML) whose data directory to back up")
    backup.add_argument("--to", required=True, metavar="FILE", help="the backup archive to write (.tar.gz)")
    data_dir_arg(backup)
    restore = sub.add_parser("restore", help="put a backup in place of the line's data directory (twin stopped)")
    restore.add_argument("archive", help="a backup written by `linetwin backup`")
    restore.add_argument("config", help="line config (TOML) whose data directory to restore")
    data_dir_arg(restore)


def run_backup_command(args: argparse.Namespace) -> int:
    from linetwin_cli.security import audit_admin
    from twin_server.backup import BackupError, create_backup, restore_backup

    config = load_or_exit(Path(args.config))
    data = line_data(args, config)
    try:
        if args.command == "backup":
            dest = Path(args.to)
            manifest = create_backup(data, config.name, dest)
            audit_admin(data.security, "backup", str(dest.resolve()),
                        {"files": len(manifest.files), "audit_entries": manifest.audit_entries},
                        f"data dir {data.root}")
            print(f"backup {dest}: {len(manifest.files)} files of {data.root}, audit chain "
                  f"{'absent' if manifest.audit_entries is None else f'{manifest.audit_entries} entries, verified'}")
            return 0
        archive = Path(args.archive)
        manifest, kept = restore_backup(archive, data, config.name)
        audit_admin(data.security, "restore", str(data.root), {"backup": str(archive.resolve()),
                                                               "created": manifest.created},
                    f"previous data dir kept at {kept}" if kept else "no previous data dir")
        print(f"restored {archive} ({manifest.created}, {len(manifest.files)} files) into {data.root}"
              + (f"; the replaced directory is kept at {kept}" if kept else ""))
        return 0
    except BackupError as exc:
        print(f"linetwin {args.command}: {exc}", file=sys.stderr)
        return 2
