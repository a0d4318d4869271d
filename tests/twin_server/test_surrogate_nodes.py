"""The twin runs a unit's surrogate beside its physics model on live data: ``<unit>/surrogate`` over OPC UA, and
its ``surrogate_drift`` alarm condition (real sockets: virtual PLC running the crystallizer plant, asyncua server
and client on loopback)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from asyncua import ua

from process_models.crystallization.crystallizer import crystallizer_model, moments_initial_state, seed_moments
from process_models.crystallization.kinetics import solubility
from process_models.declaration import compile_model
from process_models.surrogates.dataset import ModelSource, generate_dataset
from process_models.surrogates.design import InputRange, StateRange, TrainingDesign
from process_models.surrogates.pipeline import TrainingSettings, train_surrogate
from tests.conftest import wait_until
from tests.security_helpers import OPERATOR, add_operator, client_as
from tests.twin_server.alarms.alarm_line import EventRecorder, subscribe_events
from tests.twin_server.line_fixture import NAMESPACE, PILOT, live_line
from twin_server.config import ConfigError, load_line_config

SPEED = 400.0
OPTIONS = {"volume_m3": 0.02, "resolution": "moments"}  # the pilot line's crystallizer as its estimator sees it


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    nominal = compile_model(crystallizer_model(OPTIONS)).declaration.parameter_values()
    moments = seed_moments(0.0035, 150e-6, 15e-6, nominal["crystal_density"], nominal.get("volume_shape_factor", 1.0))
    state = moments_initial_state(float(solubility(313.15, nominal)), moments, 313.15)
    design = TrainingDesign(base_state=state, base_inputs={}, start_s=0.0, until_s=1200.0, interval_s=60.0,
                            states=(StateRange("temperature", 0.99, 1.01),),
                            inputs=(InputRange("jacket_temperature", 300.0, 314.0, knots=3),))
    source = ModelSource("crystallizer", OPTIONS)
    dataset = generate_dataset(source, design, 8, workers=1, progress=False)
    out = tmp_path_factory.mktemp("twin_surrogate")
    train_surrogate(source, design, 8, out, dataset=dataset, progress=False,
                    settings=TrainingSettings(hidden=(8,), epochs=2, window=3))
    return out


def test_a_surrogate_table_is_validated_with_the_line(tmp_path):
    text = PILOT.read_text().replace("[units.crystallizer.control]",
                                     f'[units.crystallizer.surrogate]\npath = "{tmp_path}"\nwindow = 0\n\n'
                                     "[units.crystallizer.control]")
    bad = tmp_path / "line.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_line_config(bad)
    message = str(info.value)
    assert "units.crystallizer.surrogate.path" in message and "units.crystallizer.surrogate.window" in message


@pytest.mark.slow
async def test_surrogate_nodes_show_both_models_disagreement_and_drift(artifact_dir):
    base = load_line_config(PILOT)
    control = {"time_scale": SPEED, "batch_duration_s": 1800.0, "jacket_limits_c": [15.0, 40.0],
               "target_d43_um": 300.0}
    surrogate = {"path": str(artifact_dir), "disagreement_threshold": 1e-12, "window": 5}
    units = tuple(dataclasses.replace(u, plant={"plant_model": "physics", "initial_temperature_c": 40.0},
                                      control=control, surrogate=surrogate)
                  for u in base.units if u.name == "crystallizer")
    config = dataclasses.replace(base, units=units, scan_period_s=0.05)
    add_operator()
    async with live_line(config, SPEED) as line, client_as(line.url, OPERATOR) as client:
        twin = line.twin
        idx = await client.get_namespace_index(NAMESPACE)

        def node(name: str):
            return client.get_node(ua.NodeId(f"pilot_line.crystallizer.surrogate.{name}", idx))

        version = await node("artifact_version").read_value()
        assert version and version in (artifact_dir / "surrogate.json").read_text()
        assert await node("disagreement_threshold").read_value() == pytest.approx(1e-12)
        adapter = twin.runtime.adapters["crystallizer"]
        await wait_until(lambda: len(adapter.last_samples) > 0
                         and all(s.quality.is_good for s in adapter.last_samples.values()),
                         what="Good crystallizer tags")
        drift_events = EventRecorder()  # the surrogate_drift condition, at the unit's notifier
        await subscribe_events(client, client.get_node(ua.NodeId("pilot_line.crystallizer", idx)), drift_events)
        condition_id = "pilot_line.crystallizer.alarms.surrogate_drift"
        control_obj = client.get_node(ua.NodeId("pilot_line.crystallizer.control", idx))
        await control_obj.call_method(ua.NodeId("pilot_line.crystallizer.control.StartBatch", idx))
        watch = twin.control_loops["crystallizer"].surrogate_watch
        await wait_until(lambda: watch.readings >= 3, timeout_s=120.0, what="three surrogate comparisons")
        surrogate_d43 = await node("surrogate_d43").read_value()
        physics_d43 = await node("physics_d43").read_value()
        assert math.isfinite(surrogate_d43) and 50.0 < physics_d43 < 2000.0  # µm
        assert await node("disagreement_nrmse").read_value() > 0.0
        assert await node("drift").read_value() is True
        assert "surrogate drift" in await node("last_event").read_value()
        assert await node("prediction_model").read_value() == "physics"
        # drift raises the condition (AlarmConditionType, default severity 500) ...
        await wait_until(lambda: any(e["ActiveState/Id"] for e in drift_events.of(condition_id)), 30,
                         what="the surrogate_drift condition's active event")
        raised = next(e for e in drift_events.of(condition_id) if e["ActiveState/Id"])
        assert raised["EventType"] == ua.NodeId(ua.ObjectIds.AlarmConditionType)
        assert raised["ConditionName"] == "surrogate_drift" and raised["SourceName"] == "crystallizer"
        assert raised["Severity"] == 500 and "surrogate drift" in raised["Message"].Text
        active_id = client.get_node(ua.NodeId(f"{condition_id}.ActiveState.Id", idx))
        assert await active_id.read_value() is True
        # ... and it clears at the first comparison back within the threshold (raised here on the running monitor)
        watch.monitor.threshold = 1e9
        await wait_until(lambda: any(not e["ActiveState/Id"] for e in drift_events.of(condition_id)), 120,
                         what="the surrogate_drift condition's return to normal")
        assert await active_id.read_value() is False
        assert await node("drift").read_value() is False
        assert isinstance(await node("in_envelope").read_value(), bool)
        with pytest.raises(ua.uaerrors.BadNotWritable):  # read-only for every role
            await node("disagreement_threshold").write_value(ua.DataValue(ua.Variant(0.5,
                                                                                     ua.VariantType.Double)))
