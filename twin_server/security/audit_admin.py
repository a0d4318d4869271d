"""The audit store as the admin commands use it (``linetwin user | pki | audit``): append an entry with the chain's
key, verify with a key file, and say the result in lines. The command-line parsing stays in the CLI module; this
is the logic behind it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twin_server.audit import AuditEntry
from twin_server.security.audit_chain import UNKEYED, key_file_of, meta_value
from twin_server.security.audit_key import KEY_FILE, load_key, load_or_create_key
from twin_server.security.audit_store import AUDIT_DB, AuditStore, AuditStoreError
from twin_server.security.audit_verify import verify_chain


def _store_keyed(path: Path) -> bool:
    if not path.is_file():
        return False
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return meta_value(db, "keyed_from") not in (None, UNKEYED)
    except sqlite3.DatabaseError:
        return False
    finally:
        db.close()


def record_admin_entry(data_dir: Path, entry: AuditEntry, key_file: Path | None = None) -> None:
    """Append ``entry`` to the store in ``data_dir`` with the chain's key (``key_file``, default ``audit.key`` in
    ``data_dir`` or the key file the twin recorded in the store, created beside a new store)."""
    path = data_dir / AUDIT_DB
    key_path = key_file or key_file_of(path) or data_dir / KEY_FILE
    if key_path.is_file():
        key = load_key(key_path)
    elif _store_keyed(path):
        raise AuditStoreError(f"{path}: this audit store is keyed, but its key file {key_path} is not there; "
                              "expected the key file of [security] audit_key_file, readable by this account")
    else:
        key = load_or_create_key(key_path)
    store = AuditStore(path, key, key_file=key_path)
    try:
        store.store(entry)
    finally:
        store.close()


def verify_lines(data_dir: Path, key_file: Path | None = None) -> tuple[int, list[str]]:
    """``linetwin audit verify``: exit code (0 intact, 1 tampered, 2 cannot verify) and the lines to print."""
    path = data_dir / AUDIT_DB
    key = load_key(key_file) if key_file is not None else None
    result = verify_chain(path, key)
    segments = f" in {len(result.segments)} segments" if len(result.segments) > 1 else ""
    pruned = f"; {len(result.pruned)} older segment(s) deleted by rotation, as recorded" if result.pruned else ""
    how = ("keyed chain (HMAC-SHA256) intact" if result.keyed else "hash chain intact (no key: SHA-256 only, a "
           "re-chained trail would not be detected)")
    unkeyed = (f"; {result.unkeyed_entries} round-2 entries checked by SHA-256 only"
               if result.keyed and result.unkeyed_entries else "")
    if result.ok:
        return 0, [f"{path}: OK — {result.entries} entries{segments}, {how}{unkeyed}{pruned}; last entry "
                   f"{result.last_seq}, head {result.head[:16]}"]
    lines = [f"{path}: TAMPERED — {len(result.problems)} problem(s) in {result.entries} entries{segments}:"]
    lines += [f"  - {problem}" for problem in result.problems]
    return 1, lines
