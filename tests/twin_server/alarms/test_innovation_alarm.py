"""The ``parameter_set_mismatch`` alarm (issue 17 item 3): raised when the estimator's normalised innovation squared
stays above its χ² band for the on-delay — live, over real sockets: the pilot line's crystallizer behind its virtual
PLC (physics plant at 100×), the twin's estimator declaring the plant's own sensor noise (so its NIS is χ² while the
parameter set fits), a client reading the nodes and the history.

The plant runs nominal (the deployed nominal set fits it) for the first 1200 plant seconds of the batch, then its
kinetics change (growth ×0.5, nucleation ×3: a new raw-material lot) and the set no longer fits.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua

from process_models.innovation_consistency import NisBand, nis_quantile
from tests.conftest import wait_until
from tests.security_helpers import add_operator, client_as
from tests.twin_server.line_fixture import NAMESPACE, PILOT, live_line
from twin_server.config import load_line_config

SPEED = 100.0
UNIT = "crystallizer"
PREFIX = f"pilot_line.{UNIT}"
PLANT_NOISE = {"temperature": 0.02, "solute_concentration": 0.3, "mean_chord_length": 1.0, "chord_count_rate": 20.0}
"""1σ of the physics plant's sensors (hil/plants/crystallizer_physics.py), tag units."""
CHANGE_AT_S = 1200.0


def test_the_nis_band_is_the_chi_square_band_of_the_measurement_dimension():
    band = NisBand(0.95)
    low, high = band.limits(4)
    assert (low, high) == pytest.approx((0.4844, 11.143), rel=1e-3)  # χ²(4) 2.5 % and 97.5 % quantiles
    assert nis_quantile(high, 4) == pytest.approx(band.high_quantile)
    assert nis_quantile(low, 4) == pytest.approx(band.low_quantile)
    assert band.limits(1)[1] == pytest.approx(5.024, rel=1e-3)  # one measurement used: one degree of freedom
    assert math.isnan(nis_quantile(math.nan, 4))
    with pytest.raises(ValueError):
        NisBand(1.0)


async def test_the_alarm_stays_quiet_on_the_plant_its_set_fits_and_rises_when_the_kinetics_change():
    base = load_line_config(PILOT)
    control = {"time_scale": SPEED, "batch_duration_s": 2400.0, "initial_mode": "auto",
               "measurement_std": PLANT_NOISE}
    units = tuple(dataclasses.replace(u, plant={"plant_model": "physics", "initial_temperature_c": 40.0},
                                      control=control)
                  for u in base.units if u.name == UNIT)
    config = dataclasses.replace(base, units=units, scan_period_s=0.05)
    async with live_line(config, SPEED) as line:
        twin, bench = line.twin, line.bench
        async with client_as(twin.endpoint, add_operator()) as client:
            idx = await client.get_namespace_index(NAMESPACE)
            assert twin.alarms is not None
            condition = twin.alarms.conditions[ua.NodeId(f"{PREFIX}.alarms.parameter_set_mismatch", idx)]
            raised: list[float] = []
            loop = twin.control_loops[UNIT]
            twin.alarms.sinks.append(lambda c, _e: raised.append(loop.batch_time_s())
                                     if c is condition and c.state.active else None)

            def node(name: str):
                return client.get_node(ua.NodeId(f"{PREFIX}.{name}", idx))

            adapter = twin.runtime.adapters[UNIT]
            await wait_until(lambda: len(adapter.last_samples) > 0
                             and all(s.quality.is_good for s in adapter.last_samples.values()), what="Good tags")
            started = datetime.now(UTC)
            await node("control").call_method(ua.NodeId(f"{PREFIX}.control.StartBatch", idx))
            await wait_until(lambda: loop.batch_time_s() >= CHANGE_AT_S, timeout_s=60.0,
                             what=f"{CHANGE_AT_S:g} plant seconds of the nominal batch")
            assert raised == []  # the nominal plant: the deployed (nominal) set fits
            assert await node("model.innovation_dof").read_value() == 4
            nis = await node("model.innovation_nis").read_value()
            assert 0.0 <= nis < 100.0
            assert await node("model.innovation_nis_high").read_value() == pytest.approx(11.143, rel=1e-3)

            bench.plc(UNIT).plant.change_kinetics(growth_rate_factor=0.5, nucleation_rate_factor=3.0)
            await wait_until(lambda: bool(raised), timeout_s=60.0, what="the parameter_set_mismatch alarm")

            assert CHANGE_AT_S + 180.0 <= raised[0] < 2400.0  # not before the change and its on-delay
            text = condition.state.message
            assert "no longer fits the plant" in text and loop.core.parameter_set_id in text
            history = await node("model.innovation_nis").read_raw_history(started, datetime.now(UTC)
                                                                          + timedelta(seconds=1))
            assert len(history) >= CHANGE_AT_S / 60.0 - 2  # one NIS per estimator step, historized
