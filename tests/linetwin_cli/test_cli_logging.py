"""`linetwin -v` logs linetwin at DEBUG but keeps pymodbus' DEBUG lines and frame dumps out (issue #7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Configure logging through the CLI (`-v check` runs no server), then log as pymodbus and linetwin do.
_SCRIPT = """
import logging, sys
from linetwin_cli.main import main
assert main(["-v", "check", sys.argv[1]]) == 0
from pymodbus.logging import Log
Log.transport_dump(Log.SEND_DATA, bytes([0, 1, 0, 0, 0, 6, 1, 4]), b"")
Log.debug("pymodbus debug line {}", 1)
Log.error("pymodbus error line")
logging.getLogger("plc_adapters.modbus_adapter").debug("linetwin debug line")
print("levels", *(logging.getLogger(name).getEffectiveLevel() for name in ("pymodbus", "pymodbus.logging")))
"""


def test_verbose_cli_keeps_pymodbus_at_warning_without_frame_dumps():
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(REPO / "examples" / "pilot_line.toml")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stderr
    assert "linetwin debug line" in log  # -v still gives linetwin's own DEBUG lines
    assert "pymodbus error line" in log  # pymodbus' errors are kept...
    assert "pymodbus debug line" not in log  # ...its DEBUG is not
    assert "send: 0x" not in log and ">>>>>" not in log, log  # nor its frame dumps
    levels = next(line for line in result.stdout.splitlines() if line.startswith("levels")).split()[1:]
    assert all(int(level) >= 30 for level in levels), levels
