"""Append-only SQLite audit store: a hash chain keyed with HMAC-SHA256, in segments under a size budget
(21 CFR Part 11 §11.10(e)).

Each entry is one row of ``audit``; its ``hash`` is HMAC-SHA256 (:mod:`.audit_key`) over the previous entry's hash
and the entry's canonical JSON (every field as stored; values are already bounded by the trail). ``audit_head``
keeps the segment's number of entries and last hash, updated in the same transaction, so a deleted last entry is
noticed too. Triggers refuse UPDATE and DELETE.

Segments: ``audit.sqlite`` is segment 1, ``audit.000002.sqlite`` … the next ones; the newest is written. When the
written segment passes ``max_bytes / segments`` it is sealed with an ``audit_rotate`` entry and the next segment
starts from its head (``audit_meta``: segment, start_seq, start_hash), so the chain runs on across segments. When
all segments together pass ``max_bytes``, the oldest is deleted after an ``audit_prune`` entry naming it and its
head, so :mod:`.audit_verify` can tell a pruned segment from a deleted one.

A round-2 store (no ``audit_meta``, plain SHA-256 chain) opens as segment 1: its entries stay as they are, and
when a key is given an ``audit_migrate`` entry (keyed) records how many entries before it are unkeyed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from twin_server.audit import AuditEntry, AuditOutcome
from twin_server.security.audit_chain import (
    FIELDS,
    FORMAT,
    GENESIS,
    UNKEYED,
    AuditStoreError,
    chain_hash,
    entry_row,
    find_key,
    meta_value,
    segment_bytes,
    segment_path,
    segment_paths,
    store_bytes,
)
from twin_server.security.audit_key import KEY_FILE, key_id
from twin_server.security.audit_verify import ChainProblem, VerifyResult, export_entries, verify_chain

__all__ = ["AuditStore", "AuditStoreError", "ChainProblem", "VerifyResult", "export_entries", "verify_chain",
           "GENESIS", "segment_paths", "store_bytes"]

log = logging.getLogger("linetwin.audit.store")

AUDIT_DB = "audit.sqlite"
"""The audit store's file in a line data dir's ``security/`` folder."""
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_SEGMENTS = 8
CACHE_KIB = 256
"""The live segment's SQLite page cache (``PRAGMA cache_size``), KiB. The store only appends one chained row at a
time and reads the last one back, so a few pages are its hot set; SQLite's default (2 MiB) filled with pages that
are never read again as the segment grew, and kept them (issue 21)."""
WAL_PAGES = 256
"""Pages in the written segment's WAL before a checkpoint (about 1 MiB: what the live store may use beyond its
budget)."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY,
        time TEXT NOT NULL, action TEXT NOT NULL, user TEXT NOT NULL, role TEXT NOT NULL, client TEXT NOT NULL,
        node TEXT NOT NULL, old_value TEXT NOT NULL, new_value TEXT NOT NULL, outcome TEXT NOT NULL,
        status TEXT NOT NULL, reason TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS audit_time ON audit(time)",
    """CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL,
                                             last_hash TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
)
"""Statements run one by one inside the opening transaction (``executescript`` would commit it first)."""


def _private_file(path: Path) -> None:
    """``path`` (and its SQLite WAL and shared-memory files) mode 0600, its folder 0700; created empty if absent."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if f.exists():
            os.chmod(f, 0o600)


@dataclass(frozen=True, slots=True)
class SegmentStart:
    number: int
    start_seq: int
    start_hash: str


class AuditStore:
    """An :data:`~twin_server.audit.AuditSink`: ``store(entry)`` appends one chained row (and commits).

    ``path``: the store (segment 1, ``audit.sqlite``); ``key``: the HMAC key (None: the key file ``audit.key``
    beside the store or the one its writer recorded, else plain SHA-256 as in round 2); ``max_bytes``/``segments``:
    the size budget (``max_bytes`` 0: unbounded); ``key_file``: where the key is kept, recorded in the store so the
    admin commands find it (the path only, never the key)."""

    def __init__(self, path: Path, key: bytes | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                 segments: int = DEFAULT_SEGMENTS, key_file: Path | None = None) -> None:
        self.path = path
        self.key = key if key is not None else find_key(path)
        self.key_file = key_file
        self.max_bytes = max_bytes
        self.segments = max(1, segments)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.segment = 0
        with self._lock:
            self._open_live()

    # --- opening ------------------------------------------------------------------------------------------

    def _connect(self, path: Path) -> sqlite3.Connection:
        _private_file(path)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")  # the WAL stays small beside the budget …
        db.execute(f"PRAGMA journal_size_limit={WAL_PAGES * 4096}")  # … and is cut back after a checkpoint
        return db

    def _open_live(self) -> None:
        """Open the newest segment (creating segment 1, or the successor of a sealed one, as needed)."""
        while True:
            found = segment_paths(self.path)
            number, path = found[-1] if found else (1, self.path)
            db = self._connect(path)
            db.execute("BEGIN IMMEDIATE")
            try:
                migrated = self._init_segment(db, path, SegmentStart(number, 0, GENESIS) if number == 1 else None)
                self._record_key_file(db)
                sealed = meta_value(db, "sealed")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                db.close()
                raise
            if sealed is None:
                break
            head = db.execute("SELECT count, last_hash FROM audit_head WHERE id = 1").fetchone()
            start = int(meta_value(db, "start_seq") or 0)
            db.close()
            self._create_successor(SegmentStart(number + 1, start + int(head[0]), str(head[1])))
        if self._db is not None:
            self._db.close()
        self._db, self.segment = db, number
        for _, p in found:
            _private_file(p)
        if migrated:
            log.warning("%s: round-2 audit store: %d entries unkeyed (plain SHA-256 chain); keyed from entry %d",
                        path, migrated, migrated + 1)

    def _init_segment(self, db: sqlite3.Connection, path: Path, start: SegmentStart | None) -> int:
        """Schema and meta of a segment (inside a write transaction). Returns the number of round-2 entries when a
        keyed writer opens an unkeyed store (a migration entry follows), else 0."""
        had_meta = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_meta'").fetchone()
        had_audit = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone()
        for statement in _SCHEMA:
            db.execute(statement)
        db.execute("INSERT OR IGNORE INTO audit_head (id, count, last_hash) VALUES (1, 0, ?)",
                   (start.start_hash if start else GENESIS,))
        if not had_meta and start is not None:
            count = int(db.execute("SELECT count FROM audit_head WHERE id = 1").fetchone()[0]) if had_audit else 0
            keyed_from = UNKEYED if self.key is None else str(start.start_seq + count + 1)
            for name, value in (("format", FORMAT), ("segment", str(start.number)),
                                ("start_seq", str(start.start_seq)), ("start_hash", start.start_hash),
                                ("keyed_from", keyed_from),
                                ("key_id", key_id(self.key) if self.key is not None else "")):
                db.execute("INSERT OR IGNORE INTO audit_meta (name, value) VALUES (?, ?)", (name, value))
            if self.key is not None and count:
                self._insert(db, _migration_entry(path, count))
            return count if self.key is not None else 0
        keyed_from = meta_value(db, "keyed_from")
        if meta_value(db, "sealed") is not None:
            return 0  # a sealed segment is never written again (its successor is)
        if self.key is None and keyed_from not in (None, UNKEYED):
            raise AuditStoreError(f"{path}: this audit store is keyed (HMAC-SHA256, key id "
                                  f"{meta_value(db, 'key_id')}); expected its key file (default audit.key in the "
                                  "data dir, or [security] audit_key_file)")
        if self.key is not None and keyed_from not in (None, UNKEYED) and meta_value(db, "key_id") != key_id(self.key):
            raise AuditStoreError(f"{path}: the audit key given (id {key_id(self.key)}) is not the store's "
                                  f"(id {meta_value(db, 'key_id')}); expected the key file it was written with")
        if self.key is not None and keyed_from == UNKEYED:
            count = int(db.execute("SELECT count FROM audit_head WHERE id = 1").fetchone()[0])
            start_seq = int(meta_value(db, "start_seq") or 0)
            db.execute("UPDATE audit_meta SET value = ? WHERE name = 'keyed_from'", (str(start_seq + count + 1),))
            db.execute("UPDATE audit_meta SET value = ? WHERE name = 'key_id'", (key_id(self.key),))
            if count:
                self._insert(db, _migration_entry(path, count))
            return count
        return 0

    def _create_successor(self, start: SegmentStart) -> None:
        """Segment ``start.number`` starting from the sealed segment's head (idempotent: any writer may do it)."""
        db = self._connect(segment_path(self.path, start.number))
        try:
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO audit_head (id, count, last_hash) VALUES (1, 0, ?)", (start.start_hash,))
            for name, value in (("format", FORMAT), ("segment", str(start.number)),
                                ("start_seq", str(start.start_seq)), ("start_hash", start.start_hash),
                                ("keyed_from", UNKEYED if self.key is None else str(start.start_seq + 1)),
                                ("key_id", key_id(self.key) if self.key is not None else "")):
                db.execute("INSERT OR IGNORE INTO audit_meta (name, value) VALUES (?, ?)", (name, value))
            self._record_key_file(db)
            db.execute("COMMIT")
        finally:
            db.close()

    def _record_key_file(self, db: sqlite3.Connection) -> None:
        beside = self.path.with_name(KEY_FILE)
        if self.key_file is not None and self.key is not None and self.key_file.resolve() != beside.resolve():
            db.execute("INSERT OR REPLACE INTO audit_meta (name, value) VALUES ('key_file', ?)",
                       (str(self.key_file.resolve()),))

    # --- writing ------------------------------------------------------------------------------------------

    def __call__(self, entry: AuditEntry) -> None:
        self.store(entry)

    def store(self, entry: AuditEntry) -> None:
        """Append one entry. The chain head is read inside the write transaction, so the CLI (``linetwin user
        add`` …) and a running server can both append to the same store; a segment another writer sealed is
        left for its successor."""
        with self._lock:
            self._append(entry)
            if self.max_bytes and self._live_bytes() > self.max_bytes // self.segments:
                self._rotate()

    def _append(self, entry: AuditEntry, seal: bool = False) -> None:
        """Append ``entry`` in one write transaction (and mark the segment sealed in it when ``seal``)."""
        while True:
            db = self._db
            assert db is not None, "the audit store is closed"
            db.execute("BEGIN IMMEDIATE")
            try:
                if meta_value(db, "sealed") is not None:
                    db.execute("ROLLBACK")
                    self._open_live()  # another writer rotated: go on in the newest segment
                    continue
                self._insert(db, entry)
                if seal:
                    db.execute("INSERT OR REPLACE INTO audit_meta (name, value) VALUES ('sealed', ?)",
                               (datetime.now(UTC).isoformat(),))
                db.execute("COMMIT")
                return
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _insert(self, db: sqlite3.Connection, entry: AuditEntry) -> None:
        """Insert one chained row and move the head (inside the caller's write transaction)."""
        row = entry_row(entry)
        count, last_hash = db.execute("SELECT count, last_hash FROM audit_head WHERE id = 1").fetchone()
        seq = int(meta_value(db, "start_seq") or 0) + int(count) + 1
        keyed_from = meta_value(db, "keyed_from")
        key = self.key if keyed_from not in (None, UNKEYED) and seq >= int(keyed_from) else None  # type: ignore[arg-type]
        digest = chain_hash(str(last_hash), row, key)
        db.execute(f"INSERT INTO audit (seq, {', '.join(FIELDS)}, prev_hash, hash) "
                   f"VALUES (?, {', '.join('?' for _ in FIELDS)}, ?, ?)",
                   [seq] + [row[f] for f in FIELDS] + [last_hash, digest])
        db.execute("UPDATE audit_head SET count = count + 1, last_hash = ? WHERE id = 1", (digest,))

    def _live_bytes(self) -> int:
        assert self._db is not None
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        return int(pages) * int(self._db.execute("PRAGMA page_size").fetchone()[0])

    def _rotate(self) -> None:
        """Seal the written segment with an ``audit_rotate`` entry, go on in its successor, prune the oldest
        segments beyond the budget (each after an ``audit_prune`` entry)."""
        assert self._db is not None
        nxt = segment_path(self.path, self.segment + 1)
        self._append(AuditEntry(action="audit_rotate", user="linetwin", node=str(self.path), role="internal",
                                outcome=AuditOutcome.ACCEPTED, new_value={"next_segment": nxt.name},
                                reason=f"segment {self.segment} full (budget {self.max_bytes} bytes in "
                                       f"{self.segments} segments); the chain continues in {nxt.name}"), seal=True)
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._open_live()
        while len(found := segment_paths(self.path)) > 1 and segment_bytes(self.path) > self.max_bytes:
            self._prune(*found[0])

    def _prune(self, number: int, path: Path) -> None:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            count, head = db.execute("SELECT count, last_hash FROM audit_head WHERE id = 1").fetchone()
            start = int(meta_value(db, "start_seq") or 0)
        finally:
            db.close()
        self._append(AuditEntry(
            action="audit_prune", user="linetwin", node=str(path), role="internal", outcome=AuditOutcome.ACCEPTED,
            old_value={"segment": number, "file": path.name, "first_seq": start + 1, "last_seq": start + int(count),
                       "head": str(head)},
            reason=f"segment {number} (entries {start + 1}..{start + int(count)}) deleted: the store passed its "
                   f"budget of {self.max_bytes} bytes"))
        log.warning("audit store over its budget of %d bytes: deleted segment %s (entries %d..%d)", self.max_bytes,
                    path.name, start + 1, start + int(count))
        for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            f.unlink(missing_ok=True)

    def head(self) -> tuple[int, str]:
        """``(number, hash)`` of the last entry written (in the written segment)."""
        with self._lock:
            assert self._db is not None, "the audit store is closed"
            count, last_hash = self._db.execute("SELECT count, last_hash FROM audit_head WHERE id = 1").fetchone()
            return int(meta_value(self._db, "start_seq") or 0) + int(count), str(last_hash)

    def close(self) -> None:
        """Close the store, logging its head (a copy outside the store that reveals a cut tail later)."""
        if self._db is not None:
            seq, digest = self.head()
            log.info("audit store %s closed at entry %d, head %s", self.path, seq, digest)
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _migration_entry(path: Path, unkeyed: int) -> AuditEntry:
    return AuditEntry(action="audit_migrate", user="linetwin", node=str(path), outcome=AuditOutcome.ACCEPTED,
                      new_value={"unkeyed_entries": unkeyed}, role="internal",
                      reason=f"round-2 store: entries 1..{unkeyed} keep their plain SHA-256 chain; entries from "
                             "here on are keyed (HMAC-SHA256)")


