"""Online parameters of the crystallizer's estimator: any declared parameter with bounds, its configuration refused
with the key named, the 95 % interval gate that decides whether the NMPC uses the online or the deployed value, and
the what-if profile checked with its key named."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from controllers.batch_control import BatchControl
from controllers.commands import ControlMode
from controllers.crystallization.control_options import REQUIRED_TAGS, parse_options, plan_declaration
from controllers.crystallization.control_plan import build_crystallizer_plan
from controllers.forecasting import ProfileError, check_horizon, parse_profile, prepare_forecast
from controllers.online_parameters import gate, relative_halfwidth
from process_models.forecast import BandCalibration

TAGS = set(REQUIRED_TAGS)
PREFIX = "units.c.control"
SOLUBILITY = "solubility_coefficient_0"
ONLINE = {"online_halfwidth_limit": 0.05,
          "online_parameters": {SOLUBILITY: {"lower": 0.2047, "upper": 0.2127, "initial_std": 0.001,
                                             "random_walk_std": 2e-5}}}
START_TAGS = {"temperature": 40.0, "jacket_temperature": 40.0, "solute_concentration": 352.6,
              "chord_count_rate": 1000.0, "mean_chord_length": 120.0, "jacket_temperature_setpoint": 40.0}


@pytest.fixture(scope="module")
def plan():
    return build_crystallizer_plan({}, ONLINE, PREFIX, TAGS)


def test_a_solubility_offset_joins_the_kinetics_online_with_its_bounds(plan):
    assert plan.estimated_parameters == ("growth_rate_constant", "secondary_nucleation_rate_constant", SOLUBILITY)
    estimator = plan.make_estimator()
    assert estimator.parameter_bounds[SOLUBILITY] == (0.2047, 0.2127)
    assert estimator.parameter_bounds["growth_rate_constant"] == (0.0, 1.0)  # declared bounds without a table
    by_name = {p.name: p for p in plan.online_parameters}
    assert by_name[SOLUBILITY].unit == "kg/kg" and by_name[SOLUBILITY].initial_std == 0.001
    assert by_name["growth_rate_constant"].initial_std == pytest.approx(0.3 * 12.21e-6)


@pytest.mark.parametrize(("table", "key", "expected"), [
    ({SOLUBILITY: {"lower": 0.21}}, f"online_parameters.{SOLUBILITY}", "bounds lower < upper"),
    ({SOLUBILITY: {"lower": 0.21, "upper": 0.20}}, f"online_parameters.{SOLUBILITY}.upper", "a bound above lower"),
    ({SOLUBILITY: {"lower": 0.2, "upper": 0.21, "noise": 1}}, f"online_parameters.{SOLUBILITY}.noise", "one of"),
    ({SOLUBILITY: {"lower": 0.2, "upper": 0.21, "initial_std": -1}}, f"online_parameters.{SOLUBILITY}.initial_std",
     "a number >= 0"),
    ({SOLUBILITY: 0.2}, f"online_parameters.{SOLUBILITY}", "a table {lower, upper"),
    ([SOLUBILITY], "online_parameters", "a table: parameter name"),
])
def test_a_malformed_online_table_is_a_config_issue_naming_its_key(table, key, expected):
    _options, issues = parse_options({"online_parameters": table}, PREFIX, TAGS)
    assert [(k, e[:len(expected)]) for k, _g, e in issues] == [(f"{PREFIX}.{key}", expected)]


@pytest.mark.parametrize(("raw", "message"), [
    ({"online_parameters": {"no_such_constant": {"lower": 0, "upper": 1}}},
     f"{PREFIX}.online_parameters.no_such_constant: got 'an unknown parameter'; expected a parameter of the model"),
    ({"online_parameters": {SOLUBILITY: {"lower": 0.21, "upper": 0.22}}},
     f"{PREFIX}.online_parameters.{SOLUBILITY}: got [0.21, 0.22]; expected bounds containing the deployed "
     "value 0.2087"),
    ({"online_parameters": {"growth_rate_constant": {"lower": -1.0, "upper": 1.0}}},
     f"{PREFIX}.online_parameters.growth_rate_constant: got [-1.0, 1.0]; expected bounds inside the declared [0, 1]"),
    ({"online_halfwidth_limit": 0}, f"{PREFIX}.online_halfwidth_limit: got 0; expected a number > 0"),
])
def test_unknown_parameters_and_bounds_the_model_refuses_are_named(raw, message):
    with pytest.raises(ValueError) as err:
        plan_declaration({}, raw, PREFIX, TAGS)
    assert message in str(err.value)


def test_the_gate_uses_an_online_value_only_while_its_interval_is_narrow():
    assert relative_halfwidth(2.0, 0.1) == pytest.approx(0.098, rel=1e-3)
    assert math.isinf(relative_halfwidth(0.0, 0.1))
    states = gate({"k": 2.0, "b": 1.0}, {"k": 0.1, "b": 0.2}, {"k": 1.5, "b": 1.0}, limit=0.1)
    assert states["k"].in_use and states["k"].source == "online"
    assert not states["b"].in_use and states["b"].source == "deployed" and states["b"].deployed == 1.0


def test_the_nmpc_gets_the_narrow_solubility_but_not_the_wide_kinetics_at_batch_start(plan):
    core = BatchControl(plan, ControlMode.MPC)
    assert core.online_parameter_states() == {}
    core.start(START_TAGS, {"jacket_temperature": 313.15})
    states = core.online_parameter_states()
    assert states[SOLUBILITY].in_use and states[SOLUBILITY].value == pytest.approx(0.2087)
    assert not states["growth_rate_constant"].in_use  # 30 % initial σ: 59 % half-width > 5 %
    assert states["growth_rate_constant"].deployed == pytest.approx(12.21e-6)
    assert core.nmpc_parameters() == {SOLUBILITY: pytest.approx(0.2087)}


def test_without_a_profile_an_mpc_batch_is_forecast_along_the_nmpc_plan(plan):
    core = BatchControl(plan, ControlMode.MPC)
    core.start(START_TAGS, {"jacket_temperature": 313.15})
    core.step_estimator({"jacket_temperature": 313.15}, {})
    result = core.solve(60.0)
    assert result is not None and result.success and core.last_result is result
    forecast = prepare_forecast(core, None, 3600.0)()
    assert forecast.source == "nmpc_plan" and forecast.start_s == pytest.approx(60.0)
    core.start(START_TAGS, {"jacket_temperature": 313.15})  # a new batch has no plan yet
    assert core.last_result is None


def test_profiles_are_checked_with_their_key_named(plan):
    good = parse_profile(json.dumps({"time_s": [0, 3600], "jacket_temperature_setpoint": [40, 25],
                                     "interpolation": "zoh"}), plan)
    assert good.values["jacket_temperature"] == pytest.approx((313.15, 298.15))
    assert good.programmes(600.0)["jacket_temperature"].times_s == (600.0, 4200.0)
    bad = {
        "[1, 2]": ("expected a JSON object", False),
        "{": ("not JSON", False),
        '{"time_s": [0], "jacket_temperature_setpoint": [30], "extra": 1}': ("unknown key(s) ['extra']", False),
        '{"time_s": [0, 0], "jacket_temperature_setpoint": [30, 30]}': ("strictly increasing", False),
        '{"time_s": [0, 1], "jacket_temperature_setpoint": [30]}': ("1 values; expected one per time (2)", False),
        '{"time_s": [0], "jacket_temperature_setpoint": [true]}': ("expected finite numbers", False),
        '{"time_s": [0], "jacket_temperature_setpoint": [45]}': ("expected values in [10, 40] °C", True),
        '{"time_s": [0], "interpolation": "cubic", "jacket_temperature_setpoint": [30]}': ("linear or zoh", False),
    }
    for text, (message, out_of_range) in bad.items():
        with pytest.raises(ProfileError) as err:
            parse_profile(text, plan)
        assert message in str(err.value) and err.value.out_of_range is out_of_range, text
    with pytest.raises(ProfileError, match="0 < horizon_s <= 14400") as err:
        check_horizon(math.inf, 14400.0)
    assert err.value.out_of_range


def test_a_forecast_from_batch_start_follows_the_programme_it_is_given(plan):
    core = BatchControl(plan, ControlMode.AUTO)
    core.start(START_TAGS, {"jacket_temperature": 313.15})
    recipe = prepare_forecast(core, None, 7200.0)()
    assert recipe.source == "recipe" and recipe.times_s[-1] == pytest.approx(7200.0)
    hold = prepare_forecast(core, parse_profile('{"time_s": [0], "jacket_temperature_setpoint": [40]}', plan),
                            7200.0)()
    assert hold.source == "profile"
    assert recipe.mean["yield"][-1] > hold.mean["yield"][-1] + 0.1  # cooling to 25 °C crystallizes, 40 °C does not
    for name in ("d43", "cv", "crystal_count", "yield"):
        assert np.all(recipe.low[name] <= recipe.mean[name] + 1e-12)
        assert np.all(recipe.mean[name] <= recipe.high[name] + 1e-12)
    assert recipe.unit_codes["d43"] == "4H" and 100.0 < recipe.mean["d43"][-1] < 1000.0
    # a band calibration learnt from past batches (forecast_band_scale / _batches): same mean, σ × k, ± Student's t
    calibrated = BatchControl(dataclasses.replace(plan, forecast_band=BandCalibration(0.4, 20)), ControlMode.AUTO)
    calibrated.start(START_TAGS, {"jacket_temperature": 313.15})
    narrow = prepare_forecast(calibrated, None, 7200.0)()
    assert narrow.mean["d43"] == pytest.approx(recipe.mean["d43"])
    assert narrow.std["d43"][-1] == pytest.approx(0.4 * recipe.std["d43"][-1], rel=1e-6)
    half = narrow.high["d43"][-1] - narrow.mean["d43"][-1]
    assert half == pytest.approx(2.085963 * narrow.std["d43"][-1], rel=1e-5)   # t(0.975, 20)
    assert narrow.as_json()["band_scale"] == 0.4 and "learnt from 20 past batches" in narrow.as_json()["band"]


def test_the_forecast_band_keys_are_checked_with_their_key_named():
    options, issues = parse_options({"forecast_band_scale": 0.35, "forecast_band_batches": 20}, PREFIX, TAGS)
    assert not issues and (options.forecast_band_scale, options.forecast_band_batches) == (0.35, 20)
    _options, issues = parse_options({"forecast_band_scale": 0, "forecast_band_batches": 2.5}, PREFIX, TAGS)
    assert sorted(k for k, _g, _e in issues) == [f"{PREFIX}.forecast_band_batches", f"{PREFIX}.forecast_band_scale"]
