"""Every benchmark script still runs: each ``benchmarks/*.py`` with ``--smoke`` (tiny sizes, seconds) in a
subprocess, as a user would start it. It must exit 0, write its JSON to ``--out`` (marked ``"smoke": true``), and
leave nothing in the user's home (HOME is an empty temporary directory, ``LINETWIN_DATA_DIR`` unset).

The figures themselves are not checked: speed lives in the benchmarks, not in the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BENCHMARKS = REPO_ROOT / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name not in ("bench_cli.py", "modbus_peer.py", "soak.py"))
"""Every script in benchmarks/ (``bench_cli.py`` and ``modbus_peer.py`` are shared modules, not benchmarks);
soak.py's smoke run has its own test with stronger checks (tests/test_soak_smoke.py)."""


def test_every_benchmark_is_covered():
    assert len(SCRIPTS) >= 10 and "mirror_throughput.py" in SCRIPTS


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke_run(script: str, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "out" / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("LINETWIN_DATA_DIR", "XDG_DATA_HOME")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO_ROOT), TMPDIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke", "--out", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, f"{script} --smoke exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    payload = json.loads(out.read_text())
    assert payload["smoke"] is True
    assert not (home / ".local" / "share" / "linetwin").exists()
    assert [p for p in home.rglob("*") if "linetwin" in p.name] == []
