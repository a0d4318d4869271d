"""The crystallizer's estimator and forecast objects on the live pilot line, over real sockets: a viewer may call
Forecast (and gets a 95 % band that also lands on the forecast nodes), a bad profile or horizon is refused with its
Bad code and changes nothing, every call is audited; the estimator's online parameters, states and innovations are
published with units and historized."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua

from tests.conftest import wait_until
from tests.security_helpers import OPERATOR, add_user, client_as
from tests.twin_server.line_fixture import NAMESPACE, live_pilot_line
from tests.twin_server.test_control_loop import controlled_line, start_batch, wait_for_good_measurements
from twin_server.audit import AuditEntry, AuditOutcome
from twin_server.security.roles import Role

UNIT = "pilot_line.crystallizer"
QUANTITIES = ("d43", "cv", "crystal_count", "yield")
SOLUBILITY = "solubility_coefficient_0"


async def _property(node, name: str):
    for child in await node.get_children(refs=ua.ObjectIds.HasProperty):
        if (await child.read_browse_name()).Name == name:
            return await child.read_value()
    return None


async def _good_crystallizer(line) -> None:
    adapter = line.twin.runtime.adapters["crystallizer"]
    await wait_until(lambda: len(adapter.last_samples) > 0 and all(s.quality.is_good for s in
                                                                   adapter.last_samples.values()),
                     timeout_s=30, what="Good crystallizer tags")


async def test_a_viewer_forecasts_and_bad_profiles_are_refused_with_their_codes():
    audited: list[AuditEntry] = []
    viewer = add_user("viewer", Role.VIEWER, "viewer-test-password")
    async with live_pilot_line(scan_period_s=0.1, speed=20.0) as line, \
            client_as(line.url, OPERATOR) as operator, client_as(line.url, viewer) as client:
        line.twin.audit.sinks.append(audited.append)
        idx = await client.get_namespace_index(NAMESPACE)
        forecast = client.get_node(ua.NodeId(f"{UNIT}.forecast", idx))
        method = ua.NodeId(f"{UNIT}.forecast.Forecast", idx)

        def call(profile: str, horizon_s: float):
            return forecast.call_method(method, ua.Variant(profile, ua.VariantType.String),
                                        ua.Variant(horizon_s, ua.VariantType.Double))

        since = datetime.now(UTC) - timedelta(seconds=1)
        with pytest.raises(ua.uaerrors.BadInvalidState):  # no batch: no estimate to start from
            await call("", 3600.0)
        await _good_crystallizer(line)
        await operator.get_node(ua.NodeId(f"{UNIT}.control", idx)).call_method(
            ua.NodeId(f"{UNIT}.control.StartBatch", idx))

        # empty profile in MANUAL mode: the last setpoint held
        result = json.loads(await call("", 3600.0))
        assert result["source"] == "hold"
        assert result["time_s"][0] == 0.0 and result["time_s"][-1] == pytest.approx(3600.0)
        for q in QUANTITIES:
            band = result["quantities"][q]
            assert len(band["mean"]) == len(result["time_s"])
            assert all(lo <= m <= hi for lo, m, hi in zip(band["low"], band["mean"], band["high"], strict=True)), q
        d43 = result["quantities"]["d43"]
        assert d43["unit"] == "4H" and 100.0 < d43["mean"][-1] < 1000.0 and d43["high"][-1] > d43["low"][-1]

        # a client's programme: cool from 40 to 25 °C over the hour
        profile = json.dumps({"time_s": [0, 3600], "jacket_temperature_setpoint": [40.0, 25.0]})
        cooled = json.loads(await call(profile, 3600.0))
        assert cooled["source"] == "profile"
        assert cooled["quantities"]["yield"]["mean"][-1] > result["quantities"]["yield"]["mean"][-1] + 0.05
        nodes = {name: client.get_node(ua.NodeId(f"{UNIT}.forecast.{name}", idx))
                 for name in ("time_s", "d43", "d43_low", "d43_high", "d43_end", "d43_end_high", "source")}
        assert await nodes["source"].read_value() == "profile"
        assert len(await nodes["d43"].read_value()) == len(cooled["time_s"])
        assert await nodes["d43_end"].read_value() == pytest.approx(cooled["quantities"]["d43"]["mean"][-1])
        assert (await _property(nodes["d43_high"], "EngineeringUnits")).DisplayName.Text == "µm"

        async def end_values_historized() -> bool:
            history = await nodes["d43_end_high"].read_raw_history(since, datetime.now(UTC), return_bounds=False)
            return len(history) >= 2  # the two forecasts' horizon-end upper bounds

        await wait_until(end_values_historized, timeout_s=30, what="the forecasts' end values in the history")

        refused = {
            "not json": ua.uaerrors.BadInvalidArgument,
            json.dumps({"time_s": [0, 60]}): ua.uaerrors.BadInvalidArgument,  # no programme for the setpoint
            json.dumps({"time_s": [60, 0], "jacket_temperature_setpoint": [30, 30]}): ua.uaerrors.BadInvalidArgument,
            json.dumps({"time_s": [0], "jacket_temperature_setpoint": [80.0]}): ua.uaerrors.BadOutOfRange,
        }
        for bad, error in refused.items():
            with pytest.raises(error):
                await call(bad, 3600.0)
        for horizon in (0.0, -5.0, float("nan"), 1e9):
            with pytest.raises(ua.uaerrors.BadOutOfRange):
                await call("", horizon)
        with pytest.raises(ua.uaerrors.BadInvalidArgument):  # horizon of the wrong type: the Call checks
            await forecast.call_method(method, ua.Variant("", ua.VariantType.String),
                                       ua.Variant("3600", ua.VariantType.String))
        assert await nodes["source"].read_value() == "profile", "a refused call must change nothing"

        calls = [e for e in audited if e.action == "call" and e.node == f"{UNIT}.forecast.Forecast"]
        assert [e.outcome for e in calls[:3]] == [AuditOutcome.REFUSED, AuditOutcome.ACCEPTED, AuditOutcome.ACCEPTED]
        assert calls[0].status == "BadInvalidState"
        assert all(e.user == "viewer" for e in calls)
        assert sum(e.outcome is AuditOutcome.REFUSED for e in calls) == 1 + len(refused) + 5
        assert any(e.status == "BadOutOfRange" and "jacket_temperature_setpoint" in e.reason for e in calls)


async def test_online_parameters_states_and_innovations_are_published_with_units_and_historized():
    online = {"online_halfwidth_limit": 0.05,
              "online_parameters": {SOLUBILITY: {"lower": 0.2047, "upper": 0.2127, "initial_std": 0.001}}}
    async with controlled_line(**online) as (twin, _bench, client, idx):
        def node(name: str):
            return client.get_node(ua.NodeId(f"{UNIT}.estimator.{name}", idx))

        growth, solubility = node("parameter_growth_rate_constant"), node(f"parameter_{SOLUBILITY}")
        assert (await growth.read_data_value(raise_on_bad_status=False)).StatusCode.value == \
            ua.StatusCodes.BadWaitingForInitialData
        eu = await _property(growth, "EngineeringUnits")
        assert eu.DisplayName.Text == "m/s" and eu.UnitId != -1  # MTS
        assert (await _property(growth, "EURange")).High == 1.0  # no table: the declared bounds
        bounds = await _property(solubility, "EURange")
        assert (bounds.Low, bounds.High) == (0.2047, 0.2127)
        kg_per_kg = await _property(solubility, "EngineeringUnits")
        assert kg_per_kg.DisplayName.Text == "kg/kg" and kg_per_kg.UnitId == -1  # no UNECE code: the text
        assert await node("online_halfwidth_limit").read_value() == pytest.approx(0.05)

        await wait_for_good_measurements(twin)
        since = datetime.now(UTC) - timedelta(seconds=1)
        await start_batch(client, idx)
        # the solubility offset is known to 1 % (95 %): the NMPC uses it online; the kinetics start 59 % wide: deployed
        assert await node(f"parameter_{SOLUBILITY}_source").read_value() == "online"
        assert await node("parameter_growth_rate_constant_source").read_value() == "deployed"
        assert await node("parameter_growth_rate_constant_deployed").read_value() == pytest.approx(12.21e-6)
        assert await node(f"parameter_{SOLUBILITY}_relative_halfwidth").read_value() < 0.05

        async def innovations() -> bool:
            dv = await node("innovation_temperature").read_data_value(raise_on_bad_status=False)
            return dv.StatusCode.is_good()

        await wait_until(innovations, timeout_s=30, what="an estimator step with a temperature innovation")
        assert (await node("innovation_temperature_std").read_value()) > 0.0
        assert (await node("state_temperature").read_value()) > 273.15

        async def history(name: str) -> list[ua.DataValue]:
            return await node(name).read_raw_history(since, datetime.now(UTC), return_bounds=False)

        async def steps_historized() -> bool:
            return all([len(await history(n)) >= 3 for n in ("state_mu3", f"parameter_{SOLUBILITY}",
                                                              "innovation_solute_concentration")])

        await wait_until(steps_historized, timeout_s=60, what="estimator trajectories in the history")
        values = await history(f"parameter_{SOLUBILITY}")
        assert all(dv.StatusCode.is_good() and 0.2047 <= dv.Value.Value <= 0.2127 for dv in values)
