"""``linetwin demo --data-dir`` records history with no set-up; ``linetwin history export`` reads it back."""

from __future__ import annotations

import asyncio
import csv
import io
import sys
from pathlib import Path

import pytest

from tests.conftest import free_tcp_port

REPO = Path(__file__).resolve().parents[3]
PILOT = REPO / "examples" / "pilot_line.toml"


async def _run(*args: str, timeout: float = 90) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "linetwin_cli", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                cwd=REPO)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.slow
async def test_demo_records_history_and_export_reads_it(tmp_path):
    data = tmp_path / "line_data"
    rc, out, err = await _run("demo", "--port", str(free_tcp_port()), "--duration", "6", "--speed", "10",
                              "--data-dir", str(data))
    assert rc == 0, err[-2000:]
    assert "history: sqlite ok" in out, out
    assert (data / "history" / "history.sqlite").is_file()  # DATA/history/ of the one data dir
    assert (data / "security" / "audit.sqlite").is_file() and (data / "security" / "pki").is_dir()
    rc, out, err = await _run("history", "export", str(PILOT), "--node", "crystallizer.temperature",
                              "--from=-1h", "--to", "now", "--format", "csv", "--data-dir", str(data))
    assert rc == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["source_timestamp", "server_timestamp", "value", "status"]
    assert len(rows) > 5
    assert all(r[3] == "Good" for r in rows[1:])
    assert all(-10.0 <= float(r[2]) <= 100.0 for r in rows[1:])  # slurry temperature, °C
    assert [r[0] for r in rows[1:]] == sorted(r[0] for r in rows[1:])
    assert f"{len(rows) - 1} rows exported" in err


async def test_export_reports_bad_arguments(tmp_path):
    data = tmp_path / "line_data"
    (data / "history").mkdir(parents=True)
    rc, _, err = await _run("history", "export", str(PILOT), "--node", "crystallizer.temperature",
                            "--from", "yesterday",
                            "--data-dir", str(data))
    assert rc == 2 and "--from: got 'yesterday'; expected an ISO 8601 time" in err
    rc, _, err = await _run("history", "export", str(PILOT), "--node", "nope.nothing", "--data-dir", str(data))
    assert rc == 2 and "--node: got 'nope.nothing'" in err
