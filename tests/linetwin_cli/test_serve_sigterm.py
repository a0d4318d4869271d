"""SIGTERM stops the twin cleanly: exit 0, the final history flushed, PLC links closed and an audit entry
``server_stop`` (in the audit store, and as an event in the history, which proves the last flush came after it).
Run as a user's service manager would: ``linetwin demo`` (the twin on its embedded bench) in a subprocess."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

from tests.conftest import free_tcp_port, wait_until
from twin_server.config import load_line_config
from twin_server.security.audit_store import export_entries
from twin_server.security.setup import data_paths

REPO = Path(__file__).resolve().parents[2]


def _count(db: Path, query: str) -> int:
    if not db.is_file():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()


async def test_sigterm_stops_cleanly_with_history_flushed_and_audited(tmp_path: Path):
    history = tmp_path / "history"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linetwin_cli", "demo", "--port", str(free_tcp_port()), "--speed", "10",
        "--data-dir", str(history), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO)
    try:
        db = history / "history.sqlite"
        await wait_until(lambda: _count(db, "SELECT count(*) FROM samples") > 0, 60,
                         what="the running twin's first samples in the history")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert "linetwin demo: stopped" in stdout.decode()
    assert _count(db, "SELECT count(*) FROM samples") > 0
    assert _count(db, "SELECT count(*) FROM events WHERE message LIKE 'server_stop %'") == 1, \
        "the server_stop entry reached the history: the final flush came after it"
    audit_db = data_paths(load_line_config(REPO / "examples" / "pilot_line.toml"))[3]
    stops = [e for e in export_entries(audit_db, None, None) if e["action"] == "server_stop"]
    assert len(stops) == 1 and stops[0]["outcome"] == "accepted"
    assert "line 'pilot_line' stopped" in stderr.decode()
