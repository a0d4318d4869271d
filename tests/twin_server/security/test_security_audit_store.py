"""The audit store cannot be abused (issue 15): values bounded, refusals aggregated, a size budget with segments
whose chain runs on, private file modes, a keyed chain that catches a re-chained trail, a snapshot verify that
never cries wolf on a live trail, and round-2 stores that still open and verify."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import ua

from linetwin_cli.main import main
from tests.conftest import wait_until
from tests.security_helpers import add_user, client_as, data_dir
from tests.twin_server.line_fixture import NAMESPACE
from tests.twin_server.security.test_security_roles import SETPOINT, twin_line
from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail
from twin_server.security.audit_admin import verify_lines
from twin_server.security.audit_chain import FIELDS, GENESIS, chain_hash
from twin_server.security.audit_key import KEY_FILE, load_or_create_key
from twin_server.security.audit_refusals import AGGREGATED_ACTION, RefusalAggregator
from twin_server.security.audit_store import AuditStore, export_entries, segment_paths, store_bytes, verify_chain
from twin_server.security.audit_values import bounded_value
from twin_server.security.roles import Role

T0 = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
MiB = 1024 * 1024


def entry(i: int, outcome: AuditOutcome = AuditOutcome.ACCEPTED, client: str = "urn:x 127.0.0.1:4840",
          value: object = None) -> AuditEntry:
    return AuditEntry(action="write", user="alice", role="operator", client=client,
                      node="pilot_line.feed_tank.jacket_temperature_setpoint", outcome=outcome,
                      old_value=20.0 + i, new_value=21.0 + i if value is None else value,
                      time=T0 + timedelta(seconds=i))


def keyed_store(directory: Path, **budget: int) -> tuple[AuditStore, bytes]:
    key = load_or_create_key(directory / KEY_FILE)
    return AuditStore(directory / "audit.sqlite", key, **budget), key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- 1. bounded values --------------------------------------------------------------------------------------

def test_values_are_kept_in_bounded_form() -> None:
    blob = os.urandom(MiB)
    kept = bounded_value(ua.Variant(blob, ua.VariantType.ByteString))
    assert kept == {"type": "ByteString", "bytes": MiB, "sha256": hashlib.sha256(blob).hexdigest()}
    text = "é" * 10_000
    kept = bounded_value(text, text_chars=100)
    assert kept["chars"] == 10_000 and kept["head"] == "é" * 100
    assert kept["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert bounded_value([1.0] * 100_000)["items"] == 100_000
    assert len(json.dumps(bounded_value(list(range(100_000))))) < 600
    assert bounded_value(21.5) == 21.5 and bounded_value("manual") == "manual" and bounded_value(None) is None
    assert bounded_value(b"\x01\x02") == {"type": "ByteString", "bytes": 2,
                                          "sha256": hashlib.sha256(b"\x01\x02").hexdigest(), "hex": "0102"}


def test_text_fields_from_clients_are_bounded_too(tmp_path: Path) -> None:
    store, _ = keyed_store(tmp_path)
    AuditTrail([store]).record(AuditEntry(action="login", user="u" * 100_000, node="pilot_line",
                                          outcome=AuditOutcome.REFUSED, client="urn:" + "a" * 100_000 + " 1.2.3.4:5",
                                          reason="r" * 100_000))
    store.close()
    (row,) = export_entries(tmp_path / "audit.sqlite", None, None)
    assert len(row["user"]) < 200 and len(row["client"]) < 500 and len(row["reason"]) < 1100
    assert row["client"].endswith("(100014 chars) 1.2.3.4:5")


async def test_megabyte_bytestring_writes_grow_the_store_by_kilobytes_not_megabytes() -> None:
    viewer = add_user("vera", Role.VIEWER, "viewer-password")
    store = data_dir() / "audit.sqlite"
    async with twin_line() as twin:
        async with client_as(twin.endpoint, None) as anonymous:
            idx = await anonymous.get_namespace_index(NAMESPACE)
            await wait_until(lambda: store_bytes(store) > 0, what="the audit store")
            before = store_bytes(store)
            for who in (None, viewer):
                async with client_as(twin.endpoint, who) as client:
                    node = client.get_node(ua.NodeId(SETPOINT, idx))
                    for _ in range(5):  # refused by the value limit ([security.limits] max_value_bytes), audited
                        with pytest.raises(ua.uaerrors.BadEncodingLimitsExceeded):
                            await node.write_value(ua.DataValue(ua.Variant(os.urandom(MiB),
                                                                           ua.VariantType.ByteString)))
            grown = store_bytes(store) - before
    refused = [r for r in export_entries(store, None, None) if r["action"] == "write" and r["node"] == SETPOINT]
    assert [r["user"] for r in refused] == ["anonymous"] * 5 + ["vera"] * 5
    assert all(r["new_value"]["type"] == "ByteString" and r["new_value"]["bytes"] == MiB
               and len(r["new_value"]["sha256"]) == 64 for r in refused)
    assert grown < 200 * 1024, f"the store grew by {grown} bytes for ten refused 1 MiB writes"
    result = verify_chain(store)
    assert result.ok and result.keyed  # the twin created its key and keys every entry
    assert mode(data_dir()) == 0o700 and mode(store) == 0o600 and mode(data_dir() / KEY_FILE) == 0o600


# --- 2. refusals aggregated ---------------------------------------------------------------------------------

def test_refusals_beyond_the_rate_become_one_summary_entry(tmp_path: Path) -> None:
    now = [0.0]
    store, _ = keyed_store(tmp_path)
    trail = AuditTrail([store], refusals=RefusalAggregator(burst=20, window_s=60.0, clock=lambda: now[0]))
    for i in range(1000):  # one script reconnecting: the port changes, the address does not
        trail.record(entry(i, AuditOutcome.REFUSED, client=f"urn:evil 10.0.0.9:{5000 + i}"))
    trail.record(entry(0, AuditOutcome.REFUSED, client="urn:ok 10.0.0.7:4000"))  # another client: its own count
    now[0] = 61.0
    trail.record(entry(1, AuditOutcome.ACCEPTED))  # the window ended: its summary comes first
    store.close()
    rows = list(export_entries(tmp_path / "audit.sqlite", None, None))
    assert len(rows) == 20 + 1 + 1 + 1
    summary = next(r for r in rows if r["action"] == AGGREGATED_ACTION)
    assert summary["new_value"]["count"] == 980 and summary["client"].endswith("10.0.0.9:5999")
    assert summary["new_value"]["first"] == (T0 + timedelta(seconds=20)).isoformat(timespec="microseconds")
    assert summary["new_value"]["last"] == (T0 + timedelta(seconds=999)).isoformat(timespec="microseconds")
    assert "980 further refused" in summary["reason"] and rows[-1]["outcome"] == "accepted"
    assert verify_chain(tmp_path / "audit.sqlite").ok


def test_guessed_user_names_from_one_address_are_one_client(tmp_path: Path) -> None:
    store, _ = keyed_store(tmp_path)
    trail = AuditTrail([store])
    for i in range(300):
        trail.record(AuditEntry(action="login", user=f"guess{i}", node="pilot_line", outcome=AuditOutcome.REFUSED,
                                status="BadUserAccessDenied", reason="unknown user",
                                client=f"urn:scan 10.0.0.8:{6000 + i}"))
    trail.flush()
    store.close()
    rows = list(export_entries(tmp_path / "audit.sqlite", None, None))
    assert len(rows) == 21 and rows[-1]["action"] == AGGREGATED_ACTION
    assert rows[-1]["new_value"]["count"] == 280 and len(rows[-1]["new_value"]["users"]) == 5


def test_flush_records_the_summary_still_being_counted(tmp_path: Path) -> None:
    store, _ = keyed_store(tmp_path)
    trail = AuditTrail([store], refusals=RefusalAggregator(burst=2))
    for i in range(5):
        trail.record(entry(i, AuditOutcome.REFUSED))
    trail.flush()
    store.close()
    actions = [r["action"] for r in export_entries(tmp_path / "audit.sqlite", None, None)]
    assert actions == ["write", "write", AGGREGATED_ACTION]


# --- 3. budget, segments, continuous chain ------------------------------------------------------------------

def fill_budget(directory: Path, n: int, max_bytes: int = 256 * 1024, segments: int = 4) -> Path:
    store, _ = keyed_store(directory, max_bytes=max_bytes, segments=segments)
    for i in range(n):
        store.store(entry(i, value="x" * 200))
    store.close()
    return directory / "audit.sqlite"


def test_the_store_rotates_within_its_budget_and_verifies_across_segments(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    sec = tmp_path / "security"  # the security folder of the line data dir tmp_path
    path = fill_budget(sec, 4000)
    segs = segment_paths(path)
    assert len(segs) >= 2 and segs[0][0] > 1, "old segments were pruned"
    assert store_bytes(path) <= 256 * 1024 + 64 * 1024 + 64 * 1024
    result = verify_chain(path)
    assert result.ok, result.problems
    assert result.keyed and len(result.segments) == len(segs) and result.pruned
    rows = list(export_entries(path, None, None))
    assert [r["seq"] for r in rows] == list(range(rows[0]["seq"], rows[-1]["seq"] + 1))
    actions = {r["action"] for r in rows}
    assert {"audit_rotate", "audit_prune"} <= actions
    assert main(["audit", "verify", "--data-dir", str(sec.parent)]) == 0
    assert "segments" in capsys.readouterr().out


def test_a_deleted_or_cut_segment_is_reported(tmp_path: Path) -> None:
    path = fill_budget(tmp_path, 4000)
    segs = segment_paths(path)
    middle = segs[1][1]
    middle.rename(tmp_path / "elsewhere.sqlite")
    problems = verify_chain(path).problems
    assert any("starts from entry" in p.detail for p in problems)
    (tmp_path / "elsewhere.sqlite").rename(middle)
    assert verify_chain(path).ok
    segs[0][1].unlink()  # the oldest left: no prune record names it
    problems = verify_chain(path).problems
    assert problems and problems[0].kind == "deleted" and "no audit_prune entry" in problems[0].detail


def test_a_cut_tail_of_a_sealed_segment_is_reported(tmp_path: Path) -> None:
    path = fill_budget(tmp_path, 3000)
    sealed = segment_paths(path)[-2][1]
    db = sqlite3.connect(sealed)
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute("DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)")
    db.execute("UPDATE audit_head SET count = count - 1, last_hash = (SELECT hash FROM audit ORDER BY seq DESC "
               "LIMIT 1)")
    db.commit()
    db.close()
    problems = verify_chain(path).problems
    assert problems and "the segment before it ends" in problems[0].detail


def test_audit_settings_are_validated(tmp_path: Path) -> None:
    from plc_adapters.config_issues import IssueCollector
    from twin_server.security.settings import parse_security

    c = IssueCollector("line.toml")
    settings = parse_security(c, {"audit_max_bytes": 10, "audit_segments": "8", "audit_value_chars": 64,
                                  "audit_key_file": "keys/audit.key"}, tmp_path)
    assert [issue.key for issue in c.issues] == ["security.audit_max_bytes", "security.audit_segments"]
    assert "an integer in [1048576, 1099511627776]" in c.issues[0].expected
    assert settings.audit_max_bytes == 256 * MiB and settings.audit_value_chars == 64
    assert settings.resolved_audit_key_file(tmp_path / "data" / "security") == tmp_path / "keys" / "audit.key"
    assert parse_security(c, {}, tmp_path).resolved_audit_key_file(tmp_path / "sec") == tmp_path / "sec" / "audit.key"


# --- 4. file modes ------------------------------------------------------------------------------------------

def test_store_segments_and_key_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir(mode=0o755)
    old = directory / "audit.sqlite"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)
    store, _ = keyed_store(directory)
    store.store(entry(0))
    assert mode(old) == 0o600 and mode(directory) == 0o700 and mode(directory / KEY_FILE) == 0o600
    assert mode(directory / "audit.sqlite-wal") == 0o600
    store.close()
    fill_budget(directory, 3000)
    files = [p for p in directory.iterdir() if p.name.startswith("audit")]
    assert len(files) >= 3 and all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}


# --- 5. keyed chain -----------------------------------------------------------------------------------------

def rechain_from(path: Path, seq: int, edit: dict[str, str], key: bytes | None) -> None:
    """The attack: edit entry ``seq``, recompute every later hash (with ``key``, or plain SHA-256), move the head."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    db.execute("DROP TRIGGER audit_no_update")
    rows = db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    prev = GENESIS
    for row in rows:
        content = {f: row[f] for f in FIELDS}
        if row["seq"] == seq:
            content.update(edit)
        if row["seq"] >= seq:
            digest = chain_hash(prev, content, key)
            db.execute(f"UPDATE audit SET {', '.join(f'{f} = ?' for f in FIELDS)}, prev_hash = ?, hash = ? "
                       "WHERE seq = ?", [content[f] for f in FIELDS] + [prev, digest, row["seq"]])
            prev = digest
        else:
            prev = row["hash"]
    db.execute("UPDATE audit_head SET last_hash = ?", (prev,))
    db.commit()
    db.close()


@pytest.mark.parametrize("attacker_key", [None, b"k" * 32], ids=["sha256", "wrong-key"])
def test_a_rechained_trail_is_reported_by_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 attacker_key: bytes | None) -> None:
    sec = tmp_path / "security"  # the security folder of the line data dir tmp_path
    store, _ = keyed_store(sec)
    for i in range(12):
        store.store(entry(i))
    store.close()
    path = sec / "audit.sqlite"
    rechain_from(path, 7, {"new_value": "99.0"}, attacker_key)
    assert main(["audit", "verify", "--data-dir", str(sec.parent)]) == 1
    out = capsys.readouterr().out
    assert "entry 7: edited" in out and "recomputed without the key" in out
    assert verify_chain(path).problems[0].seq == 7


def test_without_a_key_a_rechained_trail_is_not_detected_and_verify_says_so(tmp_path: Path) -> None:
    """What docs/security.md says: a store written without a key is protected against naive edits only."""
    store = AuditStore(tmp_path / "audit.sqlite")
    for i in range(12):
        store.store(entry(i))
    store.close()
    rechain_from(tmp_path / "audit.sqlite", 7, {"new_value": "99.0"}, None)
    code, lines = verify_lines(tmp_path)
    assert code == 0 and "re-chained trail would not be detected" in lines[0]


def test_verify_needs_the_right_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sec = tmp_path / "security"  # the security folder of the line data dir tmp_path
    store, _ = keyed_store(sec)
    store.store(entry(1))
    store.close()
    other = sec / "other.key"
    load_or_create_key(other)
    assert main(["audit", "verify", "--data-dir", str(sec.parent), "--key-file", str(other)]) == 2
    assert "is not the store's" in capsys.readouterr().err
    (sec / KEY_FILE).rename(sec / "kept-apart.key")
    assert main(["audit", "verify", "--data-dir", str(sec.parent)]) == 2
    assert "expected its key file" in capsys.readouterr().err
    assert main(["audit", "verify", "--data-dir", str(sec.parent), "--key-file",
                 str(sec / "kept-apart.key")]) == 0


def test_a_key_kept_apart_is_found_by_the_admin_commands_and_verify(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from twin_server.security.audit_admin import record_admin_entry

    data, keys = tmp_path / "data" / "security", tmp_path / "keys"
    key_file = keys / "line.audit.key"
    store = AuditStore(data / "audit.sqlite", load_or_create_key(key_file), key_file=key_file)
    store.store(entry(1))
    store.close()
    assert not (data / KEY_FILE).exists() and mode(keys) == 0o700 and mode(key_file) == 0o600
    record_admin_entry(data, entry(2))
    assert main(["audit", "verify", "--data-dir", str(data.parent)]) == 0
    assert "OK — 2 entries" in capsys.readouterr().out
    key_file.rename(keys / "moved.key")
    assert main(["user", "add", "bob", "--role", "viewer", "--no-password", "--data-dir", str(data.parent)]) == 2
    assert f"its key file {key_file} is not there" in capsys.readouterr().err


# --- 6. snapshot verify on a live trail ---------------------------------------------------------------------

def test_verify_is_never_wrong_about_a_trail_being_written_and_rotated(tmp_path: Path) -> None:
    store, _ = keyed_store(tmp_path, max_bytes=192 * 1024, segments=4)
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            store.store(entry(i, value="y" * 300))
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        results = [verify_chain(tmp_path / "audit.sqlite") for _ in range(30)]
    finally:
        stop.set()
        writer.join()
        store.close()
    assert all(r.ok for r in results), [r.problems for r in results if not r.ok][:1]
    assert results[-1].entries > results[0].entries or len(results[-1].segments) > 1


async def test_verify_25_times_while_the_twin_audits_connect_churn() -> None:
    add_user("vera", Role.VIEWER, "viewer-password")
    async with twin_line() as twin:
        stop = asyncio.Event()

        async def churn() -> int:
            n = 0
            while not stop.is_set():
                async with client_as(twin.endpoint, None):
                    n += 1
            return n

        task = asyncio.create_task(churn())
        try:
            outcomes = []
            for _ in range(25):
                outcomes.append(await asyncio.to_thread(verify_lines, data_dir()))
        finally:
            stop.set()
            connects = await task
    assert connects >= 2
    assert [code for code, _ in outcomes] == [0] * 25, [lines for code, lines in outcomes if code][:1]


# --- 7. round-2 stores --------------------------------------------------------------------------------------

ROUND2_SCHEMA = """
CREATE TABLE audit (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, action TEXT NOT NULL, user TEXT NOT NULL,
    role TEXT NOT NULL, client TEXT NOT NULL, node TEXT NOT NULL, old_value TEXT NOT NULL, new_value TEXT NOT NULL,
    outcome TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, last_hash TEXT NOT NULL);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'append-only'); END;
"""


def round2_store(path: Path, n: int = 8) -> None:
    """An audit.sqlite as round 2 wrote it: no meta, plain SHA-256 chain, mode 0644."""
    from twin_server.security.audit_chain import entry_row

    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(ROUND2_SCHEMA)
    prev = GENESIS
    for i in range(n):
        row = entry_row(entry(i))
        digest = chain_hash(prev, row)
        db.execute(f"INSERT INTO audit ({', '.join(FIELDS)}, prev_hash, hash) VALUES "
                   f"({', '.join('?' for _ in FIELDS)}, ?, ?)", [row[f] for f in FIELDS] + [prev, digest])
        prev = digest
    db.execute("INSERT INTO audit_head VALUES (1, ?, ?)", (n, prev))
    db.commit()
    db.close()
    os.chmod(path, 0o644)


def test_a_round2_store_verifies_as_it_is_and_after_a_keyed_writer_opens_it(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    sec = tmp_path / "security"  # the security folder of the line data dir tmp_path
    path = sec / "audit.sqlite"
    round2_store(path)
    assert main(["audit", "verify", "--data-dir", str(sec.parent)]) == 0
    assert "OK — 8 entries" in capsys.readouterr().out
    store, _ = keyed_store(sec)
    store.store(entry(9))
    store.close()
    assert mode(path) == 0o600
    result = verify_chain(path)
    assert result.ok and result.keyed and result.unkeyed_entries == 8 and result.entries == 10
    rows = list(export_entries(path, None, None))
    assert rows[8]["action"] == "audit_migrate" and rows[8]["new_value"] == {"unkeyed_entries": 8}
    assert main(["audit", "verify", "--data-dir", str(sec.parent)]) == 0
    assert "8 round-2 entries checked by SHA-256 only" in capsys.readouterr().out


def test_a_rechained_round2_part_is_caught_by_the_first_keyed_entry(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    round2_store(path)
    store, _ = keyed_store(tmp_path)
    store.store(entry(9))
    store.close()
    rechain_from(path, 3, {"user": "mallory"}, None)  # re-chains 3..10 with plain SHA-256
    problems = verify_chain(path).problems
    assert problems and problems[0].seq == 9 and problems[0].kind == "edited"


def test_the_live_segments_page_cache_stays_at_its_bound(tmp_path):
    """Issue 21: appending MiBs of entries leaves SQLite holding about the store's CACHE_KIB, not every page written
    (SQLite's default 2 MiB cache kept filling as the segment grew)."""
    from tests.twin_server.historian.test_historian_bounds import _sqlite_memory_used
    from twin_server.security.audit_store import CACHE_KIB

    store = AuditStore(tmp_path / "audit.sqlite")
    before = _sqlite_memory_used()
    for i in range(3000):
        store.store(entry(i, value="v" * 1000))
    grown = _sqlite_memory_used() - before
    written = os.path.getsize(tmp_path / "audit.sqlite") + os.path.getsize(tmp_path / "audit.sqlite-wal")
    store.close()
    assert written > 3 * 1024 * 1024, f"only {written} bytes written: not enough to show the bound"
    assert grown < (CACHE_KIB + 512) * 1024, f"SQLite holds {grown / 1024:.0f} KiB more after {written} bytes"
