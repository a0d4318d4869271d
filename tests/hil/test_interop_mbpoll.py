"""Modbus interop: an independent Modbus TCP client (Debian's ``mbpoll``, installed by tools/test_setup.sh) reads
and writes the virtual PLC, and agrees with linetwin's codec on every layout it can express."""

from __future__ import annotations

import asyncio
import re
import shutil

import pytest

from hil.plant import make_plant
from hil.virtual_plc import VirtualPlc
from tests.hil.hil_helpers import loopback, pilot_line_unit

MBPOLL = shutil.which("mbpoll")
pytestmark = pytest.mark.skipif(
    MBPOLL is None,
    reason="mbpoll not installed: the independent Modbus client check is skipped (install: sudo apt-get install -y "
    "mbpoll; `make test` as root installs it)",
)


async def mbpoll(port: int, *args: str) -> str:
    assert MBPOLL is not None, "mbpoll is required (tools/test_setup.sh installs it: apt-get install -y mbpoll)"
    proc = await asyncio.create_subprocess_exec(
        MBPOLL, "-m", "tcp", "-a", "1", "-0", "-1", "-p", str(port), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 0, err.decode() + out.decode()
    return out.decode()


def values(output: str) -> dict[int, float]:
    """``[ref]: value`` lines of mbpoll's output."""
    return {int(r): float(v) for r, v in re.findall(r"^\[(\d+)\]:\s+(-?[0-9.eE+-]+)", output, re.MULTILINE)}


@pytest.fixture
async def feed_tank_plc():
    kind, model, tags = pilot_line_unit("feed_tank")
    noiseless = {k: 0.0 for k in ("level_noise_std_m", "temperature_noise_std_c", "concentration_noise_std_kg_per_m3",
                                  "jacket_temperature_noise_std_c", "outlet_flow_noise_std_m3_per_h",
                                  "agitator_power_noise_std_kw")}
    plc = VirtualPlc("feed_tank", loopback(1), tags, make_plant(kind, {**model, **noiseless}, seed=1), speed=1.0)
    await plc.start()
    try:
        yield plc
    finally:
        await plc.stop()


async def test_mbpoll_reads_what_the_codec_wrote(feed_tank_plc):
    plc = feed_tank_plc
    # temperature: float32 ABCD at input register 1 (mbpoll -B = big-endian word order)
    temperature = values(await mbpoll(plc.port, "-t", "3:float", "-B", "-r", "1", "-c", "1", "127.0.0.1"))[1]
    assert temperature == pytest.approx(plc.read_tag("temperature"), abs=0.05)
    # concentration: float32 CDAB (word order little) at input register 3: mbpoll's default word order
    concentration = values(await mbpoll(plc.port, "-t", "3:float", "-r", "3", "-c", "1", "127.0.0.1"))[3]
    assert concentration == pytest.approx(plc.read_tag("concentration"), rel=1e-3)
    # level: int16 raw at input register 0, scale 0.001 m
    level_raw = values(await mbpoll(plc.port, "-t", "3", "-r", "0", "-c", "1", "127.0.0.1"))[0]
    assert level_raw * 0.001 == pytest.approx(plc.read_tag("level"), abs=0.002)


async def test_mbpoll_writes_land_as_the_codec_decodes_them(feed_tank_plc):
    plc = feed_tank_plc
    await mbpoll(plc.port, "-t", "4:float", "-B", "-r", "0", "127.0.0.1", "1.5")  # inlet_flow_setpoint, ABCD
    await mbpoll(plc.port, "-t", "4", "-r", "4", "127.0.0.1", "250")  # agitator_speed_setpoint, uint16
    assert plc.read_tag("inlet_flow_setpoint") == pytest.approx(1.5)
    assert plc.read_tag("agitator_speed_setpoint") == pytest.approx(250.0)
