"""The jacketed mixing tank closes its balances and reproduces analytic residence-time distributions."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from process_models.declaration import DeclarationError, compile_model
from process_models.mixing.mixing_tank import mixing_tank_model, mixing_tank_steady_state
from process_models.mixing.rtd import (
    axial_dispersion_model,
    dispersion_moments,
    moments_from_response,
    tanks_in_series_e_curve,
    tanks_in_series_moments,
)
from process_models.simulator import InputProgram, simulate

PILOT_LINE = Path(__file__).resolve().parents[3] / "examples" / "pilot_line.toml"
FEED = 8e-4                  # m3/s -> level (F/Cv)^2 = 1 m with the default valve
OPERATING = {"inlet_flow": FEED, "jacket_temperature_setpoint": 333.15, "agitator_speed": 4.0,
             "feed_concentration": 120.0, "feed_temperature": 293.15}


def _terms(model, x, u, p):
    y = model.unpack_outputs(np.asarray(model.output(x, u, p, 0.0)).ravel())
    return float(y["feed_heat_flow"][0]), float(y["jacket_heat_flow"][0]), float(y["agitator_power"][0])


def test_energy_balance_closes_at_the_analytic_steady_state():
    decl = mixing_tank_model()
    model = compile_model(decl)
    ss = mixing_tank_steady_state(decl.parameter_values(), **OPERATING)
    x = model.pack_states(ss)
    u = model.pack_inputs(OPERATING)
    p = model.pack_parameters()
    feed, jacket, power = _terms(model, x, u, p)
    assert power > 1000.0 and jacket > 1000.0 and feed < 0.0     # all three terms matter here
    assert abs(feed + jacket + power) <= 1e-8 * max(abs(feed), abs(jacket), abs(power))
    xdot = np.asarray(model.rhs(x, u, p, 0.0)).ravel()
    assert np.max(np.abs(xdot)) < 1e-12


def test_simulation_settles_on_the_analytic_steady_state():
    decl = mixing_tank_model()
    model = compile_model(decl)
    ss = mixing_tank_steady_state(decl.parameter_values(), **OPERATING)
    start = {"level": 0.4, "concentration": 20.0, "temperature": 290.0, "jacket_temperature": 290.0}
    res = simulate(model, start, np.linspace(0.0, 60 * 3600.0, 61), OPERATING)
    final = res.final_state()
    for name in ("level", "concentration", "temperature", "jacket_temperature"):
        assert final[name] == pytest.approx(ss[name], rel=1e-6), name
    feed, jacket, power = res.output("feed_heat_flow")[-1], res.output("jacket_heat_flow")[-1], \
        res.output("agitator_power")[-1]
    assert abs(feed + jacket + power) <= 1e-6 * abs(jacket)


def test_liquid_solute_and_energy_are_conserved_during_transients():
    decl = mixing_tank_model(inventory_totals=True, concentration_compartments=3)
    model = compile_model(decl)
    p = decl.parameter_values()
    rho, cp, area = p["liquid_density"], p["liquid_heat_capacity"], p["tank_cross_section"]
    start = {"level": 0.6, "concentration": [50.0, 80.0, 100.0], "temperature": 300.0, "jacket_temperature": 310.0,
             "liquid_fed": 0.0, "liquid_drained": 0.0, "solute_fed": 0.0, "solute_drained": 0.0, "energy_added": 0.0}
    inputs = {
        "inlet_flow": InputProgram((0.0, 900.0, 2400.0), (1.2e-3, 0.2e-3, 0.9e-3)),
        "jacket_temperature_setpoint": InputProgram((0.0, 1800.0), (340.0, 290.0), "linear"),
        "agitator_speed": 3.0,
        "feed_concentration": lambda t: 120.0 + 20.0 * math.sin(t / 300.0),
        "feed_temperature": 295.0,
    }
    res = simulate(model, start, np.linspace(0.0, 3600.0, 121), inputs, rtol=1e-9)  # balances to 1e-6 need it
    volume = area * res.state("level")
    assert volume - volume[0] == pytest.approx(res.state("liquid_fed") - res.state("liquid_drained"), abs=1e-9)
    solute = res.output("solute_mass")
    assert solute - solute[0] == pytest.approx(res.state("solute_fed") - res.state("solute_drained"),
                                               abs=1e-6 * solute[0])
    enthalpy = rho * cp * volume * res.state("temperature")
    assert enthalpy - enthalpy[0] == pytest.approx(res.state("energy_added"), abs=1e-7 * enthalpy[0])
    assert np.ptp(volume) > 0.3       # the check covered a real transient


def test_pump_outlet_takes_the_outflow_as_an_input():
    model = compile_model(mixing_tank_model(outlet="pump"))
    inputs = dict(OPERATING, outlet_flow=5e-4)
    res = simulate(model, {"level": 1.0, "concentration": 120.0, "temperature": 300.0, "jacket_temperature": 300.0},
                   [0.0, 600.0], inputs)
    assert res.state("level")[-1] == pytest.approx(1.0 + (FEED - 5e-4) * 600.0, rel=1e-9)
    assert "outlet_valve_coefficient" not in model.parameter_names


def test_agitator_power_follows_the_power_number_correlation():
    decl = mixing_tank_model(power_number=1.27, impeller_diameter_m=0.5)
    model = compile_model(decl)
    res = simulate(model, mixing_tank_steady_state(decl.parameter_values(), **OPERATING), [0.0, 10.0], OPERATING)
    assert res.output("agitator_power")[0] == pytest.approx(1.27 * 1000.0 * 4.0**3 * 0.5**5, rel=1e-12)


def test_line_config_model_keys_build_the_model():
    raw = tomllib.loads(PILOT_LINE.read_text())["units"]["feed_tank"]["model"]
    decl = mixing_tank_model(**raw)
    values = decl.parameter_values()
    assert values["outlet_valve_coefficient"] == raw["outlet_valve_coefficient_m2_5_per_s"]
    nominal = {i.name: i.nominal for i in decl.inputs}
    assert nominal["feed_temperature"] == pytest.approx(raw["feed_temperature_c"] + 273.15)
    assert nominal["feed_concentration"] == raw["feed_concentration_kg_per_m3"]


@pytest.mark.parametrize(("options", "match"), [
    ({"tank_diameter_m": 1.0}, r"unknown option\(s\) \['tank_diameter_m'\]"),
    ({"jacket_area_m2": "big"}, "'jacket_area_m2' must be a finite number"),
    ({"tank_cross_section_m2": -1.0}, "'tank_cross_section_m2' = -1.0 outside"),
    ({"outlet": "weir"}, "'outlet' must be 'valve' or 'pump'"),
    ({"concentration_compartments": 0}, "'concentration_compartments' must be an integer >= 1"),
])
def test_bad_options_are_refused_naming_the_key(options, match):
    with pytest.raises(DeclarationError, match=match):
        mixing_tank_model(**options)


@pytest.mark.parametrize("n_tanks", [1, 4])
def test_pulse_response_has_tanks_in_series_mean_and_variance(n_tanks):
    decl = mixing_tank_model(concentration_compartments=n_tanks)
    model = compile_model(decl)
    ss = mixing_tank_steady_state(decl.parameter_values(), FEED, 300.0, 2.0, 0.0, 300.0, n_tanks)
    tau = ss["level"] * decl.parameter_values()["tank_cross_section"] / FEED
    t = np.linspace(0.0, 20.0 * tau, 4001)
    width = t[1]                                  # a rectangular pulse one output interval wide, unit mass
    inputs = {"inlet_flow": FEED, "jacket_temperature_setpoint": 300.0, "agitator_speed": 2.0,
              "feed_concentration": InputProgram((0.0, width), (1.0 / (FEED * width), 0.0)),
              "feed_temperature": 300.0}
    res = simulate(model, ss, t, inputs)
    c_out = res.output("outlet_concentration")
    assert np.trapezoid(c_out * FEED, t) == pytest.approx(1.0, rel=1e-4)    # all tracer leaves
    mean, variance = moments_from_response(t, c_out)
    mean -= width / 2.0                           # moments of the rectangular input pulse subtract
    variance -= width**2 / 12.0
    expected_mean, expected_variance = tanks_in_series_moments(tau, n_tanks)
    assert mean == pytest.approx(expected_mean, rel=2e-4)
    assert variance == pytest.approx(expected_variance, rel=2e-4)
    e_analytic = tanks_in_series_e_curve(t[1:] - width / 2.0, tau, n_tanks)   # E delayed by half the pulse
    assert c_out[1:] * FEED == pytest.approx(e_analytic, abs=1e-3 * e_analytic.max())


def test_closed_vessel_dispersion_moments_match_levenspiel():
    peclet, tau, volume = 10.0, 100.0, 0.1
    model = compile_model(axial_dispersion_model(n_cells=100, volume_m3=volume, peclet_number=peclet))
    flow = volume / tau
    t = np.linspace(0.0, 10.0 * tau, 2001)
    width = t[1]
    res = simulate(model, {"tracer_concentration": 0.0}, t,
                   {"flow": flow, "inlet_tracer_concentration": InputProgram((0.0, width), (1.0 / width, 0.0))})
    mean, variance = moments_from_response(t, res.output("outlet_tracer_concentration"))
    mean -= width / 2.0
    variance -= width**2 / 12.0
    expected_mean, expected_variance = dispersion_moments(tau, peclet, "closed")
    assert mean == pytest.approx(expected_mean, rel=1e-3)
    assert variance == pytest.approx(expected_variance, rel=2e-3)
    assert expected_variance / tau**2 == pytest.approx(2 / peclet - 2 / peclet**2 * (1 - math.exp(-peclet)))


def test_dispersion_model_refuses_grids_too_coarse_for_central_convection():
    with pytest.raises(DeclarationError, match="cell Peclet < 2"):
        axial_dispersion_model(n_cells=10, peclet_number=50.0)


def test_tanks_in_series_e_curve_is_a_distribution():
    t = np.linspace(0.0, 30.0, 30001)
    e = tanks_in_series_e_curve(t, 2.0, 3)
    assert np.trapezoid(e, t) == pytest.approx(1.0, rel=1e-6)
    assert np.trapezoid(t * e, t) == pytest.approx(2.0, rel=1e-6)
