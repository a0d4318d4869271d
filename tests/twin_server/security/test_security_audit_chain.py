"""The audit store's hash chain: `linetwin audit verify` passes on a clean chain and names the entry after an
edit, a deletion and a reorder of the SQLite rows; `audit export` selects by time; the store is append-only."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from linetwin_cli.main import main
from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail
from twin_server.security.audit_store import AuditStore, verify_chain

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def fill(data_dir: Path, n: int = 6) -> Path:
    """An audit chain of ``n`` entries in the security folder of the line data dir ``data_dir``."""
    path = data_dir / "security" / "audit.sqlite"
    store = AuditStore(path)
    trail = AuditTrail([store])
    for i in range(n):
        trail.record(AuditEntry(action="write", user="alice", role="operator", client="urn:x 127.0.0.1:5",
                                node="pilot_line.feed_tank.jacket_temperature_setpoint",
                                outcome=AuditOutcome.ACCEPTED, old_value=20.0 + i, new_value=21.0 + i,
                                reason="", time=T0 + timedelta(minutes=i)))
    store.close()
    return path


def tamper(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()


def verify(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify", "--data-dir", str(data_dir)])
    return code, capsys.readouterr().out


def test_clean_chain_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path)
    code, out = verify(tmp_path, capsys)
    assert code == 0 and "OK — 6 entries" in out


def test_store_refuses_update_and_delete(tmp_path: Path) -> None:
    path = fill(tmp_path)
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET new_value = '99' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 2")
    db.close()


def test_edited_entry_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = fill(tmp_path)
    tamper(path, "UPDATE audit SET old_value = '55.0' WHERE seq = 3")
    code, out = verify(tmp_path, capsys)
    assert code == 1 and "entry 3: edited" in out
    assert [p.seq for p in verify_chain(path).problems] == [3]


def test_deleted_entry_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = fill(tmp_path)
    tamper(path, "DELETE FROM audit WHERE seq = 4")
    code, out = verify(tmp_path, capsys)
    assert code == 1 and "entry 5: deleted: entry 4 missing" in out
    problems = verify_chain(path).problems
    assert problems[0].seq == 5 and problems[0].kind == "deleted"


def test_deleted_last_entry_is_noticed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = fill(tmp_path)
    tamper(path, "DELETE FROM audit WHERE seq = 6")
    code, out = verify(tmp_path, capsys)
    assert code == 1 and "deleted" in out and "after entry 5" in out


def test_reordered_entries_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = fill(tmp_path)
    # swap rows 2 and 3 (all columns, as a re-insert in another order would)
    tamper(path, "UPDATE audit SET seq = -2 WHERE seq = 2", "UPDATE audit SET seq = 2 WHERE seq = 3",
           "UPDATE audit SET seq = 3 WHERE seq = -2")
    code, out = verify(tmp_path, capsys)
    assert code == 1 and "reordered" in out
    problems = verify_chain(path).problems
    assert {p.seq for p in problems} >= {2, 3} and all(p.kind == "reordered" for p in problems)


def test_export_by_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path)
    assert main(["audit", "export", "--data-dir", str(tmp_path), "--from", "2026-11-30T06:02:00Z",
                 "--to", "2026-11-30T06:04:00Z"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in rows] == [3, 4]
    assert rows[0]["old_value"] == 22.0 and rows[0]["new_value"] == 23.0 and rows[0]["user"] == "alice"


def test_export_csv_keeps_values_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "security" / "audit.sqlite"
    path.parent.mkdir()
    store = AuditStore(path)
    long_value = "x" * 5000
    store.store(AuditEntry(action="write", user="bob", node="n", outcome=AuditOutcome.REFUSED,
                           status="BadTypeMismatch", new_value=long_value, reason="expected Double"))
    store.close()
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", "--data-dir", str(tmp_path), "--format", "csv", "--output", str(out)]) == 0
    import csv

    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1 and json.loads(rows[0]["new_value"]) == long_value
    assert rows[0]["status"] == "BadTypeMismatch" and rows[0]["reason"] == "expected Double"
    assert main(["audit", "export", "--data-dir", str(tmp_path), "--from", "yesterday"]) == 2
    assert "--from: got 'yesterday'; expected an ISO 8601 time" in capsys.readouterr().err


def test_pki_create_keeps_and_replaces_the_server_certificate(linetwin_data_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    pilot = Path(__file__).resolve().parents[3] / "examples" / "pilot_line.toml"
    assert main(["pki", "create", "--config", str(pilot)]) == 0
    cert = linetwin_data_dir / "security" / "pki" / "own" / "cert.der"
    first = cert.read_bytes()
    assert "created" in capsys.readouterr().out
    assert (linetwin_data_dir / "security" / "pki" / "own" / "key.pem").stat().st_mode & 0o777 == 0o600
    assert main(["pki", "create", "--config", str(pilot)]) == 0
    assert "kept" in capsys.readouterr().out and cert.read_bytes() == first
    assert main(["pki", "create", "--config", str(pilot), "--force"]) == 0
    assert cert.read_bytes() != first
    assert main(["audit", "verify", "--data-dir", str(linetwin_data_dir)]) == 0
