"""The stepped loop's PLC image (hil/stepped_plc.py): plant steps on a stepped clock, the adapter's decoding, the
guarded write, and the virtual PLC's faults."""

from __future__ import annotations

import asyncio

import pytest

from hil.faults import Fault, FaultInjector, FaultKind
from hil.plant import make_plant
from hil.stepped_plc import SteppedPlc, SteppedWriteRefused
from process_models.plant_clock import SteppedClock
from tests.hil.hil_helpers import pilot_line_unit


def crystallizer_plc() -> SteppedPlc:
    kind, model, tags = pilot_line_unit("crystallizer")
    plant = make_plant(kind, {**model, "plant_model": "physics"}, seed=1)
    return SteppedPlc("crystallizer", tags, plant, step_s=2.0, clock=SteppedClock())


def test_a_step_advances_plant_time_and_the_plant_reads_the_setpoint_register() -> None:
    plc = crystallizer_plc()
    assert plc.plant_time_s == 0.0
    assert all(v is not None for v in plc.scan().values())  # measurements published at construction
    plc.step()
    plc.write("jacket_temperature_setpoint", 36.0)
    assert plc.scan()["jacket_temperature_setpoint"] == pytest.approx(36.0)
    jacket_before = plc.scan()["jacket_temperature"]
    for _ in range(29):
        plc.step()
    assert plc.plant_time_s == 60.0 and plc.steps == 30
    assert plc.scan()["jacket_temperature"] < jacket_before - 1.0  # the thermostat follows the new setpoint


def test_the_guarded_write_refuses_outside_limits_and_too_fast_and_writes_nothing() -> None:
    plc = crystallizer_plc()
    start = plc.read_tag("jacket_temperature_setpoint")
    with pytest.raises(SteppedWriteRefused, match=r"allowed now 0 CEL .* min\(0 s since the PLC took 40"):
        plc.write("jacket_temperature_setpoint", start - 1.0)  # no plant time has passed since the PLC took 40 °C
    plc.step()
    with pytest.raises(SteppedWriteRefused, match=r"outside the write limits 0\.\.80"):
        plc.write("jacket_temperature_setpoint", 95.0)
    with pytest.raises(SteppedWriteRefused, match="no commanded tag 'temperature'"):
        plc.write("temperature", 20.0)
    plc.write("jacket_temperature_setpoint", start - 5.0)  # max_rate 5 °C/s: after a pause, one 5 °C step
    with pytest.raises(SteppedWriteRefused, match="max_rate 5 CEL/s"):
        plc.write("jacket_temperature_setpoint", start - 10.0)  # no plant time has passed since
    assert plc.read_tag("jacket_temperature_setpoint") == pytest.approx(start - 5.0)


def test_faults_act_on_the_image_as_on_the_virtual_plc() -> None:
    plc = crystallizer_plc()
    faults = (Fault(FaultKind.MEASUREMENT_DROPOUT, 4.0, 8.0, tag="solute_concentration"),
              Fault(FaultKind.PLC_DISCONNECT, 10.0, 12.0))
    injector = FaultInjector(plc, faults)
    seen: list[tuple[float, bool, bool]] = []  # (time, concentration usable, connected); all Bad while down

    async def run() -> None:
        for _ in range(8):
            await injector.update()
            scan = plc.scan()
            seen.append((plc.plant_time_s, scan["solute_concentration"] is not None, plc.communicating))
            if not plc.communicating:
                assert set(scan.values()) == {None}
                with pytest.raises(SteppedWriteRefused, match="PLC not connected"):
                    plc.write("jacket_temperature_setpoint", 30.0)
            plc.step()

    asyncio.run(run())
    assert seen == [(0.0, True, True), (2.0, True, True), (4.0, False, True), (6.0, False, True),
                    (8.0, True, True), (10.0, False, False), (12.0, True, True), (14.0, True, True)]
