"""The audit chain's pieces shared by the writer (:mod:`.audit_store`) and the reader (:mod:`.audit_verify`): the
stored form of an entry, its hash (HMAC-SHA256 with the key, plain SHA-256 without), the segment files and their
meta."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

from twin_server.audit import AuditEntry
from twin_server.security.audit_key import KEY_FILE, entry_mac, load_key

GENESIS = "0" * 64
FORMAT = "3"
FIELDS = ("time", "action", "user", "role", "client", "node", "old_value", "new_value", "outcome", "status", "reason")
UNKEYED = "none"
"""``keyed_from`` of a store written without a key."""


class AuditStoreError(ValueError):
    """A store that cannot be opened or read as asked (e.g. a keyed store opened without its key)."""


def _json_value(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return json.dumps(repr(value), ensure_ascii=False)


def entry_row(entry: AuditEntry) -> dict[str, str]:
    """The stored text of each field (time as ISO 8601 UTC with microseconds, values as JSON)."""
    return {
        "time": entry.time.isoformat(timespec="microseconds"), "action": entry.action, "user": entry.user,
        "role": entry.role, "client": entry.client, "node": entry.node,
        "old_value": _json_value(entry.old_value), "new_value": _json_value(entry.new_value),
        "outcome": str(entry.outcome.value), "status": entry.status, "reason": entry.reason,
    }


def canonical(row: dict[str, str] | sqlite3.Row) -> str:
    return json.dumps([row[f] for f in FIELDS], ensure_ascii=False, separators=(",", ":"))


def chain_hash(prev_hash: str, row: dict[str, str] | sqlite3.Row, key: bytes | None = None) -> str:
    """The entry's hash: HMAC-SHA256 with ``key``, plain SHA-256 (round 2, or a store written without a key)."""
    text = canonical(row)
    if key is not None:
        return entry_mac(key, prev_hash, text)
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


# --- segments -----------------------------------------------------------------------------------------------

def segment_path(base: Path, number: int) -> Path:
    """Segment ``number`` of the store ``base`` (``audit.sqlite``): 1 → base, n → ``audit.00000n.sqlite``."""
    return base if number == 1 else base.with_name(f"{base.stem}.{number:06d}{base.suffix}")


def segment_paths(base: Path) -> list[tuple[int, Path]]:
    """``(number, path)`` of every segment on disk, oldest first."""
    found = [(1, base)] if base.is_file() else []
    pattern = re.compile(rf"^{re.escape(base.stem)}\.(\d{{6}}){re.escape(base.suffix)}$")
    if base.parent.is_dir():
        for p in base.parent.iterdir():
            m = pattern.match(p.name)
            if m and int(m.group(1)) > 1:
                found.append((int(m.group(1)), p))
    return sorted(found)


def segment_bytes(base: Path) -> int:
    """Bytes of the segment files (the budget counts these; the written segment's WAL comes on top)."""
    total = 0
    for _, p in segment_paths(base):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            continue
    return total


def store_bytes(base: Path) -> int:
    """Bytes on disk of every segment with its WAL and shared-memory files."""
    total = 0
    for _, p in segment_paths(base):
        for f in (p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
            try:
                total += f.stat().st_size
            except FileNotFoundError:
                continue
    return total


def meta_value(db: sqlite3.Connection, name: str) -> str | None:
    try:
        row = db.execute("SELECT value FROM audit_meta WHERE name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:  # a round-2 store: no audit_meta
        return None
    return None if row is None else str(row[0])


def read_meta(db: sqlite3.Connection) -> dict[str, str]:
    """A segment's ``audit_meta`` ({} for a round-2 store)."""
    try:
        return {str(k): str(v) for k, v in db.execute("SELECT name, value FROM audit_meta")}
    except sqlite3.OperationalError:
        return {}


def key_file_of(base: Path) -> Path | None:
    """Where the store ``base`` keeps its key: ``audit.key`` beside it, else the key file its writer recorded
    (``[security] audit_key_file``, in the newest segment's meta), else None."""
    beside = base.with_name(KEY_FILE)
    if beside.is_file():
        return beside
    found = segment_paths(base)
    if not found:
        return None
    try:
        db = sqlite3.connect(f"file:{found[-1][1]}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        recorded = meta_value(db, "key_file")
    except sqlite3.Error:
        recorded = None
    finally:
        db.close()
    return Path(recorded) if recorded else None


def find_key(base: Path) -> bytes | None:
    """The key of the store ``base`` (see :func:`key_file_of`), None if it has none."""
    path = key_file_of(base)
    return load_key(path) if path is not None else None
