"""Append-only SQLite audit store with a SHA-256 hash chain (21 CFR Part 11 §11.10(e)).

Each entry is one row of ``audit``; its ``hash`` is SHA-256 over the previous entry's hash and the entry's
canonical JSON (every field, values unshortened). ``audit_head`` keeps the number of entries and the last hash,
updated in the same transaction, so a deleted last entry is noticed too. Triggers refuse UPDATE and DELETE; a
tamperer who drops them is caught by :func:`verify_chain`, which names the first entry that was edited,
deleted or moved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from twin_server.audit import AuditEntry

log = logging.getLogger("linetwin.audit.store")

GENESIS = "0" * 64
FIELDS = ("time", "action", "user", "role", "client", "node", "old_value", "new_value", "outcome", "status", "reason")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL, action TEXT NOT NULL, user TEXT NOT NULL, role TEXT NOT NULL, client TEXT NOT NULL,
    node TEXT NOT NULL, old_value TEXT NOT NULL, new_value TEXT NOT NULL, outcome TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL,
                                       last_hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""


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


def chain_hash(prev_hash: str, row: dict[str, str]) -> str:
    canonical = json.dumps([row[f] for f in FIELDS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


class AuditStore:
    """An :data:`~twin_server.audit.AuditSink`: ``store(entry)`` appends one chained row (and commits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO audit_head (id, count, last_hash) VALUES (1, 0, ?)", (GENESIS,))

    def __call__(self, entry: AuditEntry) -> None:
        self.store(entry)

    def store(self, entry: AuditEntry) -> None:
        """Append one entry. The chain head is read inside the write transaction, so the CLI (``linetwin user
        add`` …) and a running server can both append to the same store."""
        row = entry_row(entry)
        cols = ", ".join(FIELDS)
        marks = ", ".join("?" for _ in FIELDS)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last_hash = str(self._db.execute("SELECT last_hash FROM audit_head WHERE id = 1").fetchone()[0])
                digest = chain_hash(last_hash, row)
                self._db.execute(f"INSERT INTO audit ({cols}, prev_hash, hash) VALUES ({marks}, ?, ?)",
                                 [row[f] for f in FIELDS] + [last_hash, digest])
                self._db.execute("UPDATE audit_head SET count = count + 1, last_hash = ? WHERE id = 1", (digest,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int | None
    """The row (``seq``) named; None for a problem at the end of the chain."""
    kind: str
    """edited | deleted | reordered | truncated"""
    detail: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "end of trail"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    entries: int
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _describe(row: sqlite3.Row) -> str:
    return f"{row['time']} {row['action']} {row['node']} by {row['user'] or '?'} ({row['outcome']})"


def verify_chain(path: Path) -> VerifyResult:
    """Walk the chain in ``seq`` order; name every entry that was edited, deleted (gap) or moved."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no audit store here")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        head = db.execute("SELECT count, last_hash FROM audit_head WHERE id = 1").fetchone()
    finally:
        db.close()
    by_hash = {r["hash"]: r for r in rows}
    problems: list[ChainProblem] = []
    prev_hash, prev_seq = GENESIS, 0
    for row in rows:
        content = {f: row[f] for f in FIELDS}
        content_ok = chain_hash(row["prev_hash"], content) == row["hash"]
        if not content_ok:
            problems.append(ChainProblem(row["seq"], "edited",
                                         f"its content does not match its hash ({_describe(row)})"))
        elif row["prev_hash"] != prev_hash:
            follows = by_hash.get(row["prev_hash"])
            if follows is not None:
                problems.append(ChainProblem(row["seq"], "reordered",
                                             f"it follows entry {follows['seq']} in the chain, but is stored after "
                                             f"entry {prev_seq} ({_describe(row)})"))
            else:
                gap = row["seq"] - prev_seq
                missing = (f"entry {prev_seq + 1}" if gap == 2 else f"entries {prev_seq + 1}..{row['seq'] - 1}"
                           if gap > 2 else f"the entry before it (after entry {prev_seq})")
                problems.append(ChainProblem(row["seq"], "deleted",
                                             f"{missing} missing: its predecessor's hash is gone "
                                             f"({_describe(row)})"))
        elif row["seq"] != prev_seq + 1 and prev_seq != 0:
            problems.append(ChainProblem(row["seq"], "reordered", f"its number changed (was after entry {prev_seq})"))
        prev_hash, prev_seq = row["hash"], row["seq"]
    if head is not None:
        count, last_hash = int(head[0]), str(head[1])
        if count != len(rows) or (rows and last_hash != rows[-1]["hash"]) or (not rows and last_hash != GENESIS):
            if last_hash in by_hash and by_hash[last_hash]["seq"] != (rows[-1]["seq"] if rows else None):
                problems.append(ChainProblem(by_hash[last_hash]["seq"], "reordered",
                                             "the last entry written is not stored last"))
            elif count > len(rows) and last_hash not in by_hash:
                problems.append(ChainProblem(None, "deleted", f"{count - len(rows)} entr(y/ies) missing: the store "
                                             f"recorded {count}, holds {len(rows)} (last entries deleted after "
                                             f"entry {rows[-1]['seq'] if rows else 0})"))
            elif count != len(rows):
                problems.append(ChainProblem(None, "truncated", f"the store recorded {count} entries, holds "
                                                                f"{len(rows)}"))
    return VerifyResult(len(rows), tuple(problems))


def export_entries(path: Path, start: datetime | None, end: datetime | None) -> Iterator[dict[str, object]]:
    """Rows with ``start <= time < end`` (UTC) in chain order, as dicts (values decoded from JSON)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        query, args = "SELECT * FROM audit WHERE 1=1", []
        if start is not None:
            query += " AND time >= ?"
            args.append(start.isoformat(timespec="microseconds"))
        if end is not None:
            query += " AND time < ?"
            args.append(end.isoformat(timespec="microseconds"))
        for row in db.execute(query + " ORDER BY seq", args):
            item: dict[str, object] = {k: row[k] for k in row.keys()}  # noqa: SIM118 (sqlite3.Row)
            for key in ("old_value", "new_value"):
                item[key] = json.loads(str(row[key]))
            yield item
    finally:
        db.close()
