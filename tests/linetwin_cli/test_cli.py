"""The CLI as a user runs it: `linetwin demo` serves and stops by itself; a broken config never starts a server."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

from tests.conftest import free_tcp_port

REPO = Path(__file__).resolve().parents[2]


async def test_demo_serves_prints_endpoint_and_stops_after_duration():
    port = free_tcp_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linetwin_cli", "demo", "--port", str(port), "--duration", "4", "--speed", "10",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    out = stdout.decode()
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert f"opc.tcp://127.0.0.1:{port}/linetwin/" in out
    assert "virtual PLC feed_tank" in out and "stopped" in out
    assert "feed_tank: OK" in out, out  # the live status line (printed every 5 s when not a terminal)


async def test_serve_with_broken_config_reports_errors_and_does_not_listen(tmp_path):
    port = free_tcp_port()
    text = (REPO / "examples" / "pilot_line.toml").read_text()
    text = text.replace("opc.tcp://127.0.0.1:4840/linetwin/", f"opc.tcp://127.0.0.1:{port}/linetwin/")
    text = text.replace('kind = "crystallizer"', 'kind = "reactor"').replace('unit = "KWT"', 'unit = "kilowatt"')
    broken = tmp_path / "broken.toml"
    broken.write_text(text)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linetwin_cli", "serve", str(broken),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    err = stderr.decode()
    assert proc.returncode == 2
    assert "2 configuration error(s)" in err
    assert f"{broken}: units.crystallizer.kind: got 'reactor'" in err
    assert f"{broken}: units.feed_tank.tags.agitator_power.unit: got 'kilowatt'" in err
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "nothing may listen on the endpoint"


def test_simulate_command_writes_csv_with_units(tmp_path, capsys):
    from linetwin_cli.main import main

    out = tmp_path / "tank.csv"
    assert main(["simulate", str(REPO / "examples" / "cases" / "mixing_tank.toml"), "--out", str(out), "--quiet"]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[0] == "time [s]" and "temperature [K]" in header and "level [m]" in header
    assert "final state" in capsys.readouterr().out
