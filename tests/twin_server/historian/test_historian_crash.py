"""Crash safety: ``kill -9`` of a recording twin loses at most the last unflushed batch, leaves a sound store,
and a restart appends to the same store."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_tcp_port, wait_until

REPO = Path(__file__).resolve().parents[3]
FLUSH_INTERVAL_S = 0.5  # the default [historian] flush_interval_s
MARGIN_S = 2.5  # scheduling slack: on a loaded machine the demo's event loop itself may lag the wall clock


def _stats(db: Path) -> tuple[int, float]:
    """(samples stored, newest server timestamp in s) read through a separate connection."""
    if not db.is_file():
        return 0, 0.0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        n, newest = conn.execute("SELECT count(*), coalesce(max(server_t), 0) FROM samples").fetchone()
        return int(n), newest / 1e6
    except sqlite3.OperationalError:  # schema not created yet
        return 0, 0.0
    finally:
        conn.close()


async def _start_demo(data: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linetwin_cli", "demo", "--port", str(free_tcp_port()), "--speed", "10",
        "--data-dir", str(data), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=REPO)


@pytest.mark.serial  # its loss bound is in wall seconds: not beside another heavy test under xdist
async def test_kill_9_loses_at_most_the_last_batch_and_restart_appends(tmp_path):
    data = tmp_path / "line"  # the line's data dir; a stale twin.pid after kill -9 is taken over at restart
    db = data / "history" / "history.sqlite"
    proc = await _start_demo(data)
    try:
        await wait_until(lambda: _stats(db)[0] > 500, timeout_s=120.0, what="the demo recording history")
        await asyncio.sleep(1.0)  # keep recording a moment (not a synchronisation)
    finally:
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    n_after_kill, newest = _stats(db)
    assert n_after_kill > 500
    assert killed_at - newest <= FLUSH_INTERVAL_S + MARGIN_S, f"lost {killed_at - newest:.2f} s of history"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    proc = await _start_demo(data)
    try:
        await wait_until(lambda: _stats(db)[0] > n_after_kill + 200, timeout_s=120.0,
                         what="the restarted demo appending to the same store")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=60)
    conn = sqlite3.connect(db)
    n_before = conn.execute("SELECT count(*) FROM samples WHERE server_t <= ?", (int(newest * 1e6),)).fetchone()[0]
    conn.close()
    assert n_before == n_after_kill  # everything from before the crash is still there
