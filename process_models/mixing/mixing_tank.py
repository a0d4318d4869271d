"""Jacketed stirred mixing/feed tank, declared once (:func:`mixing_tank_model`).

Model (SI inside: m, m3/s, kg/m3, K, W), one liquid phase of constant density and heat capacity.
The balances are the standard stirred-tank models of Seborg, Edgar, Mellichamp & Doyle, *Process
Dynamics and Control*, 4th ed., Wiley 2016, ch. 2 (blending and stirred-tank heating systems):

* Volume (mass) balance, with the outlet either a gravity-drained valve (Torricelli,
  ``F_out = Cv sqrt(h)``; Bird, Stewart & Lightfoot, *Transport Phenomena*, 2nd ed., 2002) or an
  imposed pump flow (option ``outlet = "pump"``, then ``outlet_flow`` is an input)::

      A dh/dt = F_in - F_out

* Solute balance. With ``concentration_compartments = N > 1`` the liquid is split into N equal
  compartments in series (tanks-in-series residence-time model of non-ideal blending; Levenspiel,
  *Chemical Reaction Engineering*, 3rd ed., Wiley 1999, ch. 14). With V_k = V/N and the flow leaving
  compartment k, F_k = F_in - k (F_in - F_out)/N, the balance d(V_k c_k)/dt = F_{k-1} c_{k-1} - F_k c_k
  reads::

      V_k dc_k/dt = F_{k-1} (c_{k-1} - c_k),   c_0 = c_feed, F_0 = F_in

  (N = 1 gives the well-mixed tank ``V dc/dt = F_in (c_feed - c)``; total solute is conserved exactly).

* Energy balance (liquid enthalpy cp T, reference 0 K), jacket heat flow U A (T_j - T) and agitator
  shaft power dissipated in the liquid::

      rho cp V dT/dt = rho cp F_in (T_feed - T) + U A (T_j - T) + P_agitator

* Jacket temperature follows its setpoint (temperature control unit) as a first-order lag::

      tau_j dT_j/dt = T_j,sp - T_j

* Agitator power from the power number in the fully turbulent regime (Paul, Atiemo-Obeng & Kresta,
  *Handbook of Industrial Mixing*, Wiley 2004, ch. 6)::

      P = Np rho |N|^3 D^5      (N in revolutions per second)

Stated simplifications: jacket area and power number do not depend on the level; below the
``minimum_mixing_volume`` the solute and energy balances use that volume so that they stay finite
(the level itself stays exact); the valve flow is ``Cv h / sqrt(max(h, 1 mm))``, i.e. exactly
``Cv sqrt(h)`` above 1 mm of liquid and linear below, so the Jacobian stays finite when the tank
runs dry. These match the HIL plant (``hil/plants/mixing_tank.py``) parameter for parameter.

Options (the keys of ``[units.<unit>.model]`` in a line config; units in the names):
``tank_cross_section_m2``, ``outlet_valve_coefficient_m2_5_per_s``,
``overall_heat_transfer_coefficient_w_per_m2_k``, ``jacket_area_m2``, ``impeller_diameter_m``,
``power_number``, ``liquid_density_kg_per_m3``, ``liquid_heat_capacity_j_per_kg_k``,
``jacket_time_constant_s``, ``minimum_mixing_volume_m3`` (parameters), ``feed_concentration_kg_per_m3``
and ``feed_temperature_c`` (nominal values of the disturbance inputs), plus the structural options
``outlet`` (``"valve"`` | ``"pump"``), ``concentration_compartments`` (int >= 1) and
``inventory_totals`` (bool: add cumulative fed/drained liquid, solute and energy states for balance
checks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import casadi as ca

from process_models.declaration import (
    DeclarationError,
    Equations,
    Input,
    InputRole,
    ModelDeclaration,
    Parameter,
    Symbols,
    Variable,
)
from process_models.model_keys import ModelKey

KIND = "mixing_tank"
KELVIN_OFFSET = 273.15
LEVEL_REGULARISATION_M = 1e-3

_DEMO = "demo line examples/pilot_line.toml ([units.feed_tank.model])"


@dataclass(frozen=True, slots=True)
class _ParameterOption:
    key: str           # option key in a line config (unit in the name)
    parameter: Parameter


# Defaults: geometry, valve, U, jacket area and feed from the demo line; impeller and power number
# as the HIL plant (six-blade Rushton turbine, Np ~ 5 turbulent, Paul et al. 2004, ch. 6); water
# properties near 20-40 degC (density 1000 kg/m3, cp 4180 J/(kg K): NIST Chemistry WebBook, water).
_PARAMETER_OPTIONS: tuple[_ParameterOption, ...] = (
    _ParameterOption("tank_cross_section_m2", Parameter(
        "tank_cross_section", "m2", 1.0, "tank cross-section (vertical cylinder)", lower=1e-6, source=_DEMO)),
    _ParameterOption("outlet_valve_coefficient_m2_5_per_s", Parameter(
        "outlet_valve_coefficient", "m^2.5/s", 0.0008, "outlet valve coefficient Cv in F_out = Cv sqrt(h)",
        lower=0.0, source=_DEMO)),
    _ParameterOption("overall_heat_transfer_coefficient_w_per_m2_k", Parameter(
        "overall_heat_transfer_coefficient", "W/(m2 K)", 450.0, "overall jacket-to-liquid heat transfer coefficient",
        lower=0.0, source=_DEMO + "; typical of water/water jacketed agitated vessels (Perry's Chemical "
        "Engineers' Handbook, 8th ed., 2008, sec. 11)")),
    _ParameterOption("jacket_area_m2", Parameter(
        "jacket_area", "m2", 4.0, "jacket heat transfer area", lower=0.0, source=_DEMO)),
    _ParameterOption("impeller_diameter_m", Parameter(
        "impeller_diameter", "m", 0.35, "impeller diameter", lower=1e-6,
        source="HIL plant default (D/T ~ 0.3 for a 1.13 m vessel; Paul et al. 2004, ch. 6)")),
    _ParameterOption("power_number", Parameter(
        "power_number", "1", 5.0, "impeller power number (turbulent regime)", lower=0.0,
        source="Rushton turbine, Np ~ 5, Paul, Atiemo-Obeng & Kresta, Handbook of Industrial Mixing, 2004, ch. 6")),
    _ParameterOption("liquid_density_kg_per_m3", Parameter(
        "liquid_density", "kg/m3", 1000.0, "liquid density", lower=1e-6, source="water, NIST Chemistry WebBook")),
    _ParameterOption("liquid_heat_capacity_j_per_kg_k", Parameter(
        "liquid_heat_capacity", "J/(kg K)", 4180.0, "liquid specific heat capacity", lower=1e-6,
        source="water near 20-40 degC, NIST Chemistry WebBook")),
    _ParameterOption("jacket_time_constant_s", Parameter(
        "jacket_time_constant", "s", 60.0, "first-order lag of the jacket temperature behind its setpoint",
        lower=1e-6, source="assumed temperature-control-unit response (as the HIL plant)")),
    _ParameterOption("minimum_mixing_volume_m3", Parameter(
        "minimum_mixing_volume", "m3", 0.01, "volume floor of the solute/energy balances near empty",
        lower=1e-9, source="numerical floor (as the HIL plant)")),
)

_NOMINAL_FEED = {"feed_concentration_kg_per_m3": 120.0, "feed_temperature_c": 20.0}   # demo line
_STRUCTURE_DEFAULTS: dict[str, Any] = {"outlet": "valve", "concentration_compartments": 1, "inventory_totals": False}


def option_keys() -> tuple[str, ...]:
    """Every key :func:`mixing_tank_model` accepts."""
    return tuple(o.key for o in _PARAMETER_OPTIONS) + tuple(_NOMINAL_FEED) + tuple(_STRUCTURE_DEFAULTS)


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DeclarationError(f"{KIND}: option '{key}' must be a finite number, got {value!r}")
    return float(value)


def mixing_tank_model(**options: Any) -> ModelDeclaration:
    """Declare the jacketed mixing tank; ``options`` are the line-config keys listed in the module docstring."""
    allowed = option_keys()
    unknown = sorted(k for k in options if k not in allowed)
    if unknown:
        raise DeclarationError(f"{KIND}: unknown option(s) {unknown}; expected any of {list(allowed)}")
    outlet = options.get("outlet", _STRUCTURE_DEFAULTS["outlet"])
    if outlet not in ("valve", "pump"):
        raise DeclarationError(f"{KIND}: option 'outlet' must be 'valve' or 'pump', got {outlet!r}")
    compartments = options.get("concentration_compartments", 1)
    if isinstance(compartments, bool) or not isinstance(compartments, int) or compartments < 1:
        raise DeclarationError(
            f"{KIND}: option 'concentration_compartments' must be an integer >= 1, got {compartments!r}"
        )
    totals = options.get("inventory_totals", False)
    if not isinstance(totals, bool):
        raise DeclarationError(f"{KIND}: option 'inventory_totals' must be true or false, got {totals!r}")

    parameters = []
    for opt in _PARAMETER_OPTIONS:
        p = opt.parameter
        if opt.key in options:
            value = _number(opt.key, options[opt.key])
            if not (p.lower <= value <= p.upper):
                raise DeclarationError(f"{KIND}: option '{opt.key}' = {value} outside [{p.lower}, {p.upper}] {p.unit}")
            p = Parameter(p.name, p.unit, value, p.description, p.lower, p.upper, source="line/case configuration")
        if outlet == "pump" and p.name == "outlet_valve_coefficient":
            continue
        parameters.append(p)
    feed_c = _number("feed_concentration_kg_per_m3",
                     options.get("feed_concentration_kg_per_m3", _NOMINAL_FEED["feed_concentration_kg_per_m3"]))
    feed_t = _number("feed_temperature_c", options.get("feed_temperature_c", _NOMINAL_FEED["feed_temperature_c"]))
    if feed_c < 0:
        raise DeclarationError(f"{KIND}: option 'feed_concentration_kg_per_m3' must be >= 0, got {feed_c}")
    if feed_t + KELVIN_OFFSET <= 0:
        raise DeclarationError(f"{KIND}: option 'feed_temperature_c' must be above -273.15, got {feed_t}")

    n = compartments
    states = [
        Variable("level", "m", "liquid level above the tank bottom", lower=0.0),
        Variable("concentration", "kg/m3",
                 "solute concentration" if n == 1 else "solute concentration per compartment (inlet first)",
                 lower=0.0, size=n),
        Variable("temperature", "K", "liquid temperature", lower=0.0),
        Variable("jacket_temperature", "K", "jacket temperature", lower=0.0),
    ]
    if totals:
        states += [
            Variable("liquid_fed", "m3", "cumulative liquid volume fed"),
            Variable("liquid_drained", "m3", "cumulative liquid volume drained"),
            Variable("solute_fed", "kg", "cumulative solute fed"),
            Variable("solute_drained", "kg", "cumulative solute drained"),
            Variable("energy_added", "J", "cumulative enthalpy in minus out plus jacket heat and shaft work"),
        ]
    inputs = [
        Input("inlet_flow", "m3/s", "feed (inlet) volumetric flow", InputRole.MANIPULATED, lower=0.0,
              nominal=0.0008),
        Input("jacket_temperature_setpoint", "K", "jacket temperature setpoint (TCU supply)",
              InputRole.MANIPULATED, lower=0.0, nominal=feed_t + KELVIN_OFFSET),
        Input("agitator_speed", "1/s", "agitator speed (revolutions per second)", InputRole.MANIPULATED,
              lower=0.0, nominal=2.5),
    ]
    if outlet == "pump":
        inputs.append(Input("outlet_flow", "m3/s", "outlet pump flow", InputRole.MANIPULATED, lower=0.0,
                            nominal=0.0008))
    inputs += [
        Input("feed_concentration", "kg/m3", "solute concentration of the feed", InputRole.DISTURBANCE,
              lower=0.0, nominal=feed_c),
        Input("feed_temperature", "K", "feed temperature", InputRole.DISTURBANCE, lower=0.0,
              nominal=feed_t + KELVIN_OFFSET),
    ]
    outputs = (
        Variable("outlet_flow" if outlet == "valve" else "drained_flow", "m3/s", "outlet volumetric flow"),
        Variable("outlet_concentration", "kg/m3", "solute concentration leaving the tank"),
        Variable("agitator_power", "W", "agitator shaft power"),
        Variable("jacket_heat_flow", "W", "heat flow from the jacket into the liquid, U A (T_j - T)"),
        Variable("feed_heat_flow", "W", "sensible heat brought by the feed relative to the liquid, "
                                         "rho cp F_in (T_feed - T)"),
        Variable("liquid_volume", "m3", "liquid volume"),
        Variable("solute_mass", "kg", "solute held in the tank"),
    )

    def equations(s: Symbols) -> Equations:
        return _equations(s, outlet, n, totals)

    return ModelDeclaration(
        name=KIND,
        description="Jacketed stirred mixing tank: level, solute and energy balances, jacket lag, agitator power",
        states=tuple(states),
        inputs=tuple(inputs),
        parameters=tuple(parameters),
        outputs=outputs,
        equations=equations,
        reference="Seborg, Edgar, Mellichamp & Doyle, Process Dynamics and Control, 4th ed., 2016, ch. 2; "
                  "Paul, Atiemo-Obeng & Kresta, Handbook of Industrial Mixing, 2004, ch. 6; "
                  "Levenspiel, Chemical Reaction Engineering, 3rd ed., 1999, ch. 14",
    )


def _equations(s: Symbols, outlet: str, n: int, totals: bool) -> Equations:
    h = s.x["level"]
    c = s.x["concentration"]
    temp = s.x["temperature"]
    temp_j = s.x["jacket_temperature"]
    area = s.p["tank_cross_section"]
    rho = s.p["liquid_density"]
    cp = s.p["liquid_heat_capacity"]
    f_in = s.u["inlet_flow"]
    if outlet == "valve":
        h_pos = ca.fmax(h, 0.0)
        f_out = s.p["outlet_valve_coefficient"] * h_pos / ca.sqrt(ca.fmax(h_pos, LEVEL_REGULARISATION_M))
    else:
        f_out = s.u["outlet_flow"]
    volume = area * h
    v_mix = ca.fmax(volume, s.p["minimum_mixing_volume"])
    v_k = v_mix / n

    dc = []
    upstream = s.u["feed_concentration"]
    for k in range(n):
        f_upstream = f_in - k * (f_in - f_out) / n
        dc.append(f_upstream * (upstream - c[k]) / v_k)
        upstream = c[k]
    c_out = c[n - 1]

    speed = s.u["agitator_speed"]
    power = s.p["power_number"] * rho * ca.fabs(speed) ** 3 * s.p["impeller_diameter"] ** 5
    q_jacket = s.p["overall_heat_transfer_coefficient"] * s.p["jacket_area"] * (temp_j - temp)
    q_feed = rho * cp * f_in * (s.u["feed_temperature"] - temp)
    derivatives: dict[str, ca.SX] = {
        "level": (f_in - f_out) / area,
        "concentration": ca.vertcat(*dc),
        "temperature": (q_feed + q_jacket + power) / (rho * cp * v_mix),
        "jacket_temperature": (s.u["jacket_temperature_setpoint"] - temp_j) / s.p["jacket_time_constant"],
    }
    if totals:
        derivatives.update({
            "liquid_fed": f_in,
            "liquid_drained": f_out,
            "solute_fed": f_in * s.u["feed_concentration"],
            "solute_drained": f_out * c_out,
            "energy_added": rho * cp * (f_in * s.u["feed_temperature"] - f_out * temp) + q_jacket + power,
        })
    outputs = {
        "outlet_flow" if outlet == "valve" else "drained_flow": f_out,
        "outlet_concentration": c_out,
        "agitator_power": power,
        "jacket_heat_flow": q_jacket,
        "feed_heat_flow": q_feed,
        "liquid_volume": volume,
        "solute_mass": volume * ca.sum1(c) / n,
    }
    return Equations(derivatives=derivatives, outputs=outputs)


def mixing_tank_steady_state(parameters: Mapping[str, float], inlet_flow: float, jacket_temperature_setpoint: float,
                             agitator_speed: float, feed_concentration: float, feed_temperature: float,
                             concentration_compartments: int = 1) -> dict[str, float | list[float]]:
    """Analytic steady state of the valve-outlet tank (SI), from the declared parameter values by name.

    ``h = (F_in/Cv)^2``, ``c = c_feed``, ``T_j = T_j,sp`` and, from the energy balance,
    ``T = (rho cp F T_feed + U A T_j + P) / (rho cp F + U A)``.
    """
    cv = parameters["outlet_valve_coefficient"]
    if cv <= 0 or inlet_flow <= 0:
        raise ValueError("steady state needs outlet_valve_coefficient > 0 and inlet_flow > 0")
    rho, cp = parameters["liquid_density"], parameters["liquid_heat_capacity"]
    ua = parameters["overall_heat_transfer_coefficient"] * parameters["jacket_area"]
    power = parameters["power_number"] * rho * abs(agitator_speed) ** 3 * parameters["impeller_diameter"] ** 5
    temp = (rho * cp * inlet_flow * feed_temperature + ua * jacket_temperature_setpoint + power) / (
        rho * cp * inlet_flow + ua)
    conc: float | list[float] = (feed_concentration if concentration_compartments == 1
                                 else [feed_concentration] * concentration_compartments)
    return {
        "level": (inlet_flow / cv) ** 2,
        "concentration": conc,
        "temperature": temp,
        "jacket_temperature": jacket_temperature_setpoint,
    }


def mixing_tank_from_options(options: Mapping[str, Any]) -> ModelDeclaration:
    """Unit-kind factory (:mod:`process_models.registry`): :func:`mixing_tank_model` from a ``[model]`` table."""
    return mixing_tank_model(**options)




def model_keys() -> tuple[ModelKey, ...]:
    """The ``[model]`` keys of :func:`mixing_tank_model` with units and defaults (from the declared parameters)."""
    params = tuple(ModelKey(o.key, o.parameter.unit, f"{o.parameter.value:g}",
                            f"{o.parameter.description} ({o.parameter.source})") for o in _PARAMETER_OPTIONS)
    feed = (ModelKey("feed_concentration_kg_per_m3", "kg/m3", f"{_NOMINAL_FEED['feed_concentration_kg_per_m3']:g}",
                     "nominal solute concentration of the feed (disturbance input)"),
            ModelKey("feed_temperature_c", "°C", f"{_NOMINAL_FEED['feed_temperature_c']:g}",
                     "nominal feed temperature (disturbance input)"))
    structure = (ModelKey("outlet", "", '"valve"', 'valve (gravity drained, F = Cv sqrt(h)) | pump (outlet_flow is '
                          'an input)'),
                 ModelKey("concentration_compartments", "", "1", "compartments in series of the solute balance "
                          "(tanks-in-series blending, Levenspiel 1999 ch. 14)"),
                 ModelKey("inventory_totals", "", "false", "add cumulative fed/drained liquid, solute and energy "
                          "states (balance checks)"))
    return params + feed + structure
