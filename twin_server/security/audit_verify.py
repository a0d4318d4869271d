"""Reading the audit store: ``verify_chain`` walks the chain across every segment and names each entry that was
edited, deleted, moved or re-chained; ``export_entries`` yields entries by time. Library functions behind
``linetwin audit verify | export``.

Each segment is read in one read transaction (rows, head and meta from one WAL snapshot), so a live trail the twin
is writing verifies as it stood at that moment; a segment that is rotated out or created while it is being read
makes the whole walk start again (up to :data:`RETRIES` times).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from twin_server.security.audit_chain import (
    FIELDS,
    GENESIS,
    UNKEYED,
    AuditStoreError,
    chain_hash,
    find_key,
    read_meta,
    segment_paths,
)
from twin_server.security.audit_key import AuditKeyError, key_id

RETRIES = 5


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int | None
    """The row (``seq``) named; None for a problem at the end of the chain or of a segment."""
    kind: str
    """edited | deleted | reordered | truncated | unkeyed"""
    detail: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "end of trail"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    entries: int
    problems: tuple[ChainProblem, ...]
    keyed: bool = False
    """Whether entries were checked with the key (HMAC-SHA256)."""
    unkeyed_entries: int = 0
    """Entries checked by the plain SHA-256 chain only (round-2 entries, or a store written without a key)."""
    segments: tuple[str, ...] = ()
    pruned: tuple[str, ...] = field(default=())
    """Segments deleted by rotation (each recorded by an ``audit_prune`` entry)."""
    last_seq: int = 0
    head: str = GENESIS
    """The last entry's number and hash: kept outside the store (a cron log), they reveal a cut tail later."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Segment:
    number: int
    path: Path
    meta: dict[str, str]
    rows: list[sqlite3.Row]
    head: tuple[int, str] | None


class _Changed(Exception):
    """A segment vanished or appeared while the store was read: read it again."""


def _read_segment(number: int, path: Path) -> _Segment | None:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.OperationalError as exc:
        raise _Changed(str(exc)) from None
    db.row_factory = sqlite3.Row
    try:
        db.execute("BEGIN")  # one snapshot for rows, head and meta
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "audit" not in tables:
            return None  # created a moment ago, schema not yet written
        meta = read_meta(db)
        rows = db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        head_row = db.execute("SELECT count, last_hash FROM audit_head WHERE id = 1").fetchone()
        db.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise _Changed(str(exc)) from None
    finally:
        db.close()
    return _Segment(number, path, meta, rows, None if head_row is None else (int(head_row[0]), str(head_row[1])))


def _read_all(base: Path) -> list[_Segment]:
    for _ in range(RETRIES):
        listed = segment_paths(base)
        try:
            segments = [s for n, p in listed if (s := _read_segment(n, p)) is not None]
        except _Changed:
            continue
        if segment_paths(base) == listed:
            return segments
    raise AuditStoreError(f"{base}: the audit store changed segments {RETRIES} times while being read; try again")


def _describe(row: sqlite3.Row) -> str:
    return f"{row['time']} {row['action']} {row['node']} by {row['user'] or '?'} ({row['outcome']})"


def verify_chain(path: Path, key: bytes | None = None) -> VerifyResult:
    """Walk the chain of the store ``path`` (``audit.sqlite``) across its segments in ``seq`` order; name every entry
    that was edited (or re-chained, with ``key``), deleted (gap), moved, and segments deleted without a prune
    record. A keyed store needs its ``key`` (default: :func:`~.audit_chain.find_key`; :class:`~.audit_key.AuditKeyError`
    if there is none)."""
    if not segment_paths(path):
        raise FileNotFoundError(f"{path}: no audit store here")
    if key is None:
        key = find_key(path)
    segments = _read_all(path)
    problems: list[ChainProblem] = []
    keyed_ids = {s.meta.get("key_id") for s in segments if s.meta.get("keyed_from", UNKEYED) != UNKEYED}
    if keyed_ids and key is None:
        raise AuditKeyError(f"{path}: this audit store is keyed (HMAC-SHA256, key id {', '.join(sorted(keyed_ids))})"
                            "; expected its key file (--key-file, default audit.key in the data dir)")
    if key is not None and keyed_ids and keyed_ids != {key_id(key)}:
        raise AuditKeyError(f"{path}: the key given (id {key_id(key)}) is not the store's (id "
                            f"{', '.join(sorted(str(k) for k in keyed_ids))}); expected the key file it was written "
                            "with")
    all_rows = [r for s in segments for r in s.rows]
    by_hash = {r["hash"]: r for r in all_rows}
    pruned = _pruned(all_rows)
    prev_hash, prev_seq = GENESIS, 0
    unkeyed = 0
    first = segments[0] if segments else None
    if first is not None and first.number > 1:
        record = pruned.get(first.number - 1)
        if record is None or record.get("head") != first.meta.get("start_hash"):
            problems.append(ChainProblem(None, "deleted", f"segments 1..{first.number - 1} are gone and no "
                                         f"audit_prune entry records segment {first.number - 1} with the head "
                                         f"{first.meta.get('start_hash', '?')[:12]}… that {first.path.name} starts "
                                         "from"))
        prev_hash, prev_seq = first.meta.get("start_hash", GENESIS), int(first.meta.get("start_seq", 0))
    for index, seg in enumerate(segments):
        if index and (seg.meta.get("start_hash") != prev_hash or int(seg.meta.get("start_seq", -1)) != prev_seq):
            problems.append(ChainProblem(None, "truncated" if seg.meta.get("start_hash") not in (None, prev_hash)
                                         else "deleted",
                                         f"{seg.path.name} starts from entry {seg.meta.get('start_seq')} hash "
                                         f"{seg.meta.get('start_hash', '?')[:12]}…, but the segment before it ends "
                                         f"at entry {prev_seq} hash {prev_hash[:12]}…"))
            prev_hash, prev_seq = seg.meta.get("start_hash", prev_hash), int(seg.meta.get("start_seq", prev_seq))
        if index < len(segments) - 1 and "sealed" not in seg.meta:
            problems.append(ChainProblem(None, "reordered", f"{seg.path.name} is followed by another segment but "
                                                            "was never sealed"))
        keyed_from_text = seg.meta.get("keyed_from", UNKEYED)
        keyed_from = None if keyed_from_text == UNKEYED else int(keyed_from_text)
        if keyed_from is not None and index == 0 and seg.number == 1 and keyed_from > 1:
            _check_migration(seg, keyed_from, problems)
        elif keyed_from is not None and keyed_from > int(seg.meta.get("start_seq", 0)) + 1:
            problems.append(ChainProblem(keyed_from, "unkeyed", f"{seg.path.name} claims entries before "
                                         f"{keyed_from} unkeyed, but only a round-2 first segment may have them"))
        start_prev = prev_seq
        for row in seg.rows:
            row_key = key if keyed_from is not None and row["seq"] >= keyed_from else None
            unkeyed += row_key is None
            content = {f: row[f] for f in FIELDS}
            if chain_hash(row["prev_hash"], content, row_key) != row["hash"]:
                what = "its content does not match its " + ("keyed hash (HMAC-SHA256): edited, or the chain was "
                                                            "recomputed without the key" if row_key else "hash")
                problems.append(ChainProblem(row["seq"], "edited", f"{what} ({_describe(row)})"))
            elif row["prev_hash"] != prev_hash:
                follows = by_hash.get(row["prev_hash"])
                if follows is not None:
                    problems.append(ChainProblem(row["seq"], "reordered",
                                                 f"it follows entry {follows['seq']} in the chain, but is stored "
                                                 f"after entry {prev_seq} ({_describe(row)})"))
                else:
                    gap = row["seq"] - prev_seq
                    missing = (f"entry {prev_seq + 1}" if gap == 2 else f"entries {prev_seq + 1}..{row['seq'] - 1}"
                               if gap > 2 else f"the entry before it (after entry {prev_seq})")
                    problems.append(ChainProblem(row["seq"], "deleted", f"{missing} missing: its predecessor's "
                                                                        f"hash is gone ({_describe(row)})"))
            elif row["seq"] != prev_seq + 1 and prev_seq != start_prev:
                problems.append(ChainProblem(row["seq"], "reordered",
                                             f"its number changed (was after entry {prev_seq})"))
            prev_hash, prev_seq = row["hash"], row["seq"]
        _check_head(seg, problems, by_hash)
    return VerifyResult(len(all_rows), tuple(problems), keyed=key is not None and bool(keyed_ids),
                        unkeyed_entries=unkeyed, segments=tuple(s.path.name for s in segments),
                        pruned=tuple(str(r.get("file", "?")) for _, r in sorted(pruned.items())),
                        last_seq=prev_seq, head=prev_hash)


def _pruned(rows: list[sqlite3.Row]) -> dict[int, dict[str, object]]:
    out: dict[int, dict[str, object]] = {}
    for row in rows:
        if row["action"] == "audit_prune":
            try:
                record = json.loads(row["old_value"])
                out[int(record["segment"])] = record
            except (ValueError, KeyError, TypeError):
                continue
    return out


def _check_migration(seg: _Segment, keyed_from: int, problems: list[ChainProblem]) -> None:
    """Round-2 entries before ``keyed_from`` are only believed unkeyed if a keyed ``audit_migrate`` entry says so."""
    mark = next((r for r in seg.rows if r["seq"] == keyed_from), None)
    ok = mark is not None and mark["action"] == "audit_migrate"
    if ok:
        try:
            ok = json.loads(mark["new_value"]).get("unkeyed_entries") == keyed_from - 1
        except (ValueError, AttributeError):
            ok = False
    if not ok:
        problems.append(ChainProblem(keyed_from, "unkeyed", f"{seg.path.name} claims entries 1..{keyed_from - 1} "
                                     "unkeyed (round 2), but no audit_migrate entry there says so"))


def _check_head(seg: _Segment, problems: list[ChainProblem], by_hash: dict[str, sqlite3.Row]) -> None:
    if seg.head is None:
        return
    rows = seg.rows
    count, last_hash = seg.head
    start_hash = seg.meta.get("start_hash", GENESIS)
    if count == len(rows) and last_hash == (rows[-1]["hash"] if rows else start_hash):
        return
    if last_hash in by_hash and by_hash[last_hash]["seq"] != (rows[-1]["seq"] if rows else None):
        problems.append(ChainProblem(by_hash[last_hash]["seq"], "reordered",
                                     "the last entry written is not stored last"))
    elif count > len(rows) and last_hash not in by_hash:
        last = rows[-1]["seq"] if rows else int(seg.meta.get("start_seq", 0))
        problems.append(ChainProblem(None, "deleted", f"{count - len(rows)} entr(y/ies) missing in {seg.path.name}: "
                                     f"the store recorded {count}, holds {len(rows)} (last entries deleted after "
                                     f"entry {last})"))
    else:
        problems.append(ChainProblem(None, "truncated", f"{seg.path.name}: the store recorded {count} entries with "
                                     f"head {last_hash[:12]}…, holds {len(rows)}"))


def export_entries(path: Path, start: datetime | None, end: datetime | None) -> Iterator[dict[str, object]]:
    """Rows with ``start <= time < end`` (UTC) in chain order across segments, as dicts (values decoded from
    JSON)."""
    for number, seg_path in segment_paths(path):
        del number
        db = sqlite3.connect(f"file:{seg_path}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            query, args = "SELECT * FROM audit WHERE 1=1", []
            if start is not None:
                query += " AND time >= ?"
                args.append(start.isoformat(timespec="microseconds"))
            if end is not None:
                query += " AND time < ?"
                args.append(end.isoformat(timespec="microseconds"))
            try:
                rows = db.execute(query + " ORDER BY seq", args)
            except sqlite3.OperationalError:
                continue  # a segment created a moment ago
            for row in rows:
                item: dict[str, object] = {k: row[k] for k in row.keys()}  # noqa: SIM118 (sqlite3.Row)
                for key in ("old_value", "new_value"):
                    item[key] = json.loads(str(row[key]))
                yield item
        finally:
            db.close()
