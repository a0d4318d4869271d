"""SIGTERM stops the twin cleanly: exit 0, the final history flushed, PLC links closed and an audit entry
``server_stop`` (in the audit store, and as an event in the history, which proves the last flush came after it).
Run as a service manager would, in a subprocess: ``linetwin serve`` against the HIL bench's virtual PLCs (started
by the test), and ``linetwin demo`` (the twin on its embedded bench)."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import sys
from pathlib import Path

from linetwin_cli.bench_launcher import build_bench
from tests.conftest import free_tcp_port, wait_until
from twin_server.config import load_line_config
from twin_server.data_dir import layout
from twin_server.security.audit_store import export_entries

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


PILOT = REPO / "examples" / "pilot_line.toml"


async def _sigterm_after_first_history(args: list[str], history: Path) -> tuple[int | None, str, str]:
    """Start ``linetwin ARGS`` with ``--data-dir history``, SIGTERM it once samples are in the history, and return
    (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linetwin_cli", *args, "--data-dir", str(history),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO)
    try:
        db = history / "history" / "history.sqlite"  # the line data dir's history/
        await wait_until(lambda: _count(db, "SELECT count(*) FROM samples") > 0, 60,
                         what="the running twin's first samples in the history")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, stdout.decode(), stderr.decode()


def _assert_clean_stop(history: Path, stderr: str) -> None:
    db = history / "history" / "history.sqlite"  # the line data dir's history/
    assert _count(db, "SELECT count(*) FROM samples") > 0
    assert _count(db, "SELECT count(*) FROM events WHERE message LIKE 'server_stop %'") == 1, \
        "the server_stop entry reached the history: the final flush came after it"
    audit_db = layout(history).audit_db  # the same line data dir (--data-dir) holds the audit trail
    stops = [e for e in export_entries(audit_db, None, None) if e["action"] == "server_stop"]
    assert len(stops) == 1 and stops[0]["outcome"] == "accepted"
    assert "line 'pilot_line' stopped" in stderr


async def test_sigterm_stops_serve_cleanly_with_history_flushed_and_audited(tmp_path: Path):
    endpoint = f"opc.tcp://127.0.0.1:{free_tcp_port()}/"
    text = PILOT.read_text(encoding="utf-8").replace("opc.tcp://127.0.0.1:4840/", endpoint)
    config = load_line_config(PILOT)
    bench = build_bench(config, speed=10.0, free_ports=True)
    await bench.start()
    try:
        for unit in config.units:  # serve the same line against the bench's virtual PLCs
            text = re.sub(rf"(\[units\.{unit.name}\.plc\][^\[]*?port = )\d+", rf"\g<1>{bench.plc(unit.name).port}",
                          text)
        line = tmp_path / "pilot_line.toml"
        line.write_text(text, encoding="utf-8")
        history = tmp_path / "history"
        code, stdout, stderr = await _sigterm_after_first_history(["serve", str(line)], history)
    finally:
        await bench.stop()
    assert code == 0, stderr[-2000:]
    assert "served at" in stdout
    _assert_clean_stop(history, stderr)


async def test_sigterm_stops_demo_cleanly(tmp_path: Path):
    history = tmp_path / "history"
    code, stdout, stderr = await _sigterm_after_first_history(
        ["demo", "--port", str(free_tcp_port()), "--speed", "10"], history)
    assert code == 0, stderr[-2000:]
    assert "linetwin demo: stopped" in stdout
    _assert_clean_stop(history, stderr)
