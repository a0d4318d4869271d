"""Batch cooling crystallizer, method of moments (the NMPC/EKF prediction model).

Equations (Randolph & Larson, *Theory of Particulate Processes*, 2nd ed., 1988, ch. 3; Hulburt & Katz,
Chem. Eng. Sci. 19 (1964) 555). With moments per kg solvent ``mu_k = int L^k n(L) dL`` (m^k/kg), growth
``G(L) = G0 (1 + gamma L)`` (size-independent for gamma = 0; the linear ASL case p = 1 keeps the moments
closed) and nuclei born at size ``L_n``:

    d mu_0/dt = B
    d mu_k/dt = k G0 (mu_{k-1} + gamma mu_k) + B L_n^k,        k = 1..4
    d c/dt    = -rho_c kv d mu_3/dt                              (solute balance, kg/kg solvent)
    d T/dt    = (UA/(m cp)) (T_jacket - T) + dT_ad (-d c/dt)     (slurry energy balance; "jacket" mode)

so ``c + rho_c kv mu_3`` is an exact invariant (closed batch, no in/outflow). Dissolution (G0 < 0) is
represented, but the loss of crystals that dissolve completely (the flux G n(0) out of L = 0) is not: the
moment model is valid for dissolution only while no crystal vanishes.

Derived outputs (regularised by tiny constants so they stay smooth when there are no crystals):

* ``d10 = mu1/mu0`` (number-mean size), ``d32 = mu3/mu2`` (Sauter), ``d43 = mu4/mu3`` (volume-weighted), m;
* ``cv = sqrt(mu2 mu0 / mu1^2 - 1)``: the *number-based* coefficient of variation of the size distribution;
* ``yield_fraction = rho_c kv mu3 / (c + rho_c kv mu3)``: fraction of all solute (dissolved + solid, seeds
  included) that is in the crystals.
"""

from __future__ import annotations

from collections.abc import Mapping

import casadi as ca

from process_models.crystallization.kinetics import (
    growth_rate,
    nucleation_rate,
    relative_supersaturation,
    smooth_positive_part,
    solubility,
)
from process_models.crystallization.params import SHARED_PARAMETER_NAMES, kinetic_parameters
from process_models.declaration import (
    Equations,
    Input,
    InputRole,
    ModelDeclaration,
    Parameter,
    Symbols,
    Variable,
)

MOMENT_ORDERS = (0, 1, 2, 3, 4)
_MOMENT_UNITS = ("1/kg", "m/kg", "m2/kg", "m3/kg", "m4/kg")
THERMAL_MODES = ("jacket", "slurry")
# Regularisers of the size ratios (they keep outputs and Jacobians finite with no crystals at all); each is
# < 1e-12 of the moment it guards for any real suspension (mu0 ~ 1e6 /kg, mu2 ~ 1e-2 m2/kg, mu3 ~ 1e-6 m3/kg).
_TINY_COUNT = 1e-6  # #/kg, in mu1/mu0
_TINY_AREA = 1e-18  # m^2/kg, in mu3/mu2
_TINY_VOLUME = 1e-24  # m^3/kg, in mu4/mu3
_TINY_FIRST_MOMENT_SQ = 1e-20  # (m/kg)^2, in mu2 mu0/mu1^2
_CV_SMOOTHING = 1e-8  # width of the smooth positive part of cv^2
_CV_FLOOR = 1e-8  # cv >= 1e-8 keeps d(cv) finite where cv^2 -> 0 (monodisperse or empty)

MOMENT_PARAMETER_NAMES: tuple[str, ...] = tuple(n for n in SHARED_PARAMETER_NAMES if n != "growth_size_exponent")


class CrystallizerOptionError(ValueError):
    """A crystallizer model option is invalid (names the option and what was expected)."""


def check_thermal_mode(thermal_mode: str) -> str:
    if thermal_mode not in THERMAL_MODES:
        raise CrystallizerOptionError(
            f"crystallizer option 'thermal_mode' = {thermal_mode!r}; expected one of {list(THERMAL_MODES)}"
        )
    return thermal_mode


def thermal_variables(thermal_mode: str) -> tuple[tuple[Variable, ...], tuple[Input, ...]]:
    """(temperature states, temperature inputs) for ``thermal_mode``."""
    if check_thermal_mode(thermal_mode) == "jacket":
        return (
            (Variable("temperature", "K", "slurry temperature", lower=250.0, upper=400.0),),
            (Input("jacket_temperature", "K", "jacket (coolant) temperature", InputRole.MANIPULATED,
                   lower=250.0, upper=400.0, nominal=303.15),),
        )
    return (), (Input("slurry_temperature", "K", "slurry temperature (manipulated directly)", InputRole.MANIPULATED,
                      lower=250.0, upper=400.0, nominal=303.15),)


def slurry_temperature(s: Symbols, thermal_mode: str) -> ca.SX:
    return s.x["temperature"] if thermal_mode == "jacket" else s.u["slurry_temperature"]


def temperature_derivative(s: Symbols, concentration_rate: ca.SX) -> ca.SX:
    """Slurry energy balance (jacket mode): first-order lag to the jacket plus heat of crystallization."""
    p = s.p
    return (p["heat_transfer_rate_constant"] * (s.u["jacket_temperature"] - s.x["temperature"])
            - p["crystallization_temperature_rise"] * concentration_rate)


def summary_output_variables() -> tuple[Variable, ...]:
    """Outputs shared by the moment and the finite-volume model (names the controllers rely on)."""
    moments = tuple(Variable(f"mu{k}", unit, f"{k}-th moment of the CSD per kg solvent")
                    for k, unit in zip(MOMENT_ORDERS, _MOMENT_UNITS, strict=True))
    return (
        Variable("solute_concentration", "kg/kg", "dissolved solute per kg solvent"),
        Variable("saturation_concentration", "kg/kg", "solubility at the slurry temperature"),
        Variable("supersaturation", "1", "relative supersaturation (c - c_sat)/c_sat"),
        Variable("temperature", "K", "slurry temperature"),
        *moments,
        Variable("solute_mass_concentration", "kg/m3", "dissolved solute per m3 solvent, c * solvent_density"),
        Variable("crystal_mass", "kg", "crystal mass in the batch, rho kv mu3 * solvent_mass"),
        Variable("d10", "m", "number-mean size mu1/mu0"),
        Variable("d32", "m", "Sauter mean size mu3/mu2"),
        Variable("d43", "m", "volume-weighted mean size mu4/mu3"),
        Variable("cv", "1", "number-based coefficient of variation sqrt(mu2 mu0/mu1^2 - 1)"),
        Variable("yield_fraction", "1", "solid fraction of all solute, rho kv mu3/(c + rho kv mu3)"),
        Variable("growth_rate", "m/s", "net size-independent growth rate G0 (negative: dissolution)"),
        Variable("nucleation_rate", "1/(kg s)", "nucleation rate per kg solvent"),
    )


def summary_outputs(p: Mapping[str, ca.SX], concentration: ca.SX, temperature: ca.SX, moments: list[ca.SX],
                    supersaturation: ca.SX, net_growth: ca.SX, nucleation: ca.SX) -> dict[str, ca.SX]:
    mu0, mu1, mu2, mu3, mu4 = moments
    solid = p["crystal_density"] * p["volume_shape_factor"] * mu3
    cv_squared = mu2 * mu0 / (mu1 * mu1 + _TINY_FIRST_MOMENT_SQ) - 1.0
    out = {
        "solute_concentration": concentration,
        "saturation_concentration": solubility(temperature, p),
        "supersaturation": supersaturation,
        "temperature": temperature,
        "solute_mass_concentration": concentration * p["solvent_density"],
        "crystal_mass": solid * p["solvent_mass"],
        "d10": mu1 / (mu0 + _TINY_COUNT),
        "d32": mu3 / (mu2 + _TINY_AREA),
        "d43": mu4 / (mu3 + _TINY_VOLUME),
        "cv": ca.sqrt(smooth_positive_part(cv_squared, _CV_SMOOTHING) + _CV_FLOOR**2),
        "yield_fraction": solid / (concentration + solid),
        "growth_rate": net_growth,
        "nucleation_rate": nucleation,
    }
    out.update({f"mu{k}": m for k, m in zip(MOMENT_ORDERS, moments, strict=True)})
    return out


def moment_realizability(mu: list[ca.SX]) -> dict[str, ca.SX]:
    """The mean sizes of any size distribution are ordered, d10 ≤ d21 ≤ d32 ≤ d43 (d_k,k-1 = mu_k / mu_k-1): the
    moments are log-convex, ``mu_k-1 mu_k+1 - mu_k^2 ≥ 0`` (Cauchy–Schwarz; the 2 × 2 Hankel minors of the
    Stieltjes moment problem, e.g. Marchisio & Fox, *Computational Models for Polydisperse Particulate and
    Multiphase Systems*, CUP 2013, §3.1). Written as ratios minus one (dimensionless; the first one is the number
    CV squared), each ≥ 0 for a realizable set of moments. The moment ODE keeps them; an EKF correction need not."""
    names = {1: "d21_over_d10_minus_1", 2: "d32_over_d21_minus_1", 3: "d43_over_d32_minus_1"}
    return {name: mu[k - 1] * mu[k + 1] / (mu[k] ** 2) - 1.0 for k, name in names.items()}


def crystallizer_moments_model(parameters: Mapping[str, float] | None = None, *, thermal_mode: str = "jacket",
                               parameter_set: str = "kdp_water") -> ModelDeclaration:
    """Method-of-moments batch cooling crystallizer.

    ``parameters`` override the defaults of ``parameter_set`` (names in
    :data:`MOMENT_PARAMETER_NAMES` plus ``nucleus_size``). ``thermal_mode="jacket"``: state
    ``temperature`` follows input ``jacket_temperature``; ``"slurry"``: input ``slurry_temperature`` is the
    slurry temperature itself (no energy balance).
    """
    check_thermal_mode(thermal_mode)
    overrides = dict(parameters or {})
    nucleus_size = float(overrides.pop("nucleus_size", 0.0))
    if not 0.0 <= nucleus_size <= 1e-3:
        raise CrystallizerOptionError(f"crystallizer parameter 'nucleus_size' = {nucleus_size} m; expected [0, 1e-3]")
    params = kinetic_parameters(parameter_set, MOMENT_PARAMETER_NAMES, overrides) + (
        Parameter("nucleus_size", "m", nucleus_size, "size at which nuclei are born", 0.0, 1e-3,
                  "0 = nuclei born at L = 0, the continuous PBE boundary (as in the finite-volume model)"),
    )
    t_states, t_inputs = thermal_variables(thermal_mode)
    moment_states = tuple(Variable(f"mu{k}", unit, f"{k}-th moment of the CSD per kg solvent", lower=0.0)
                          for k, unit in zip(MOMENT_ORDERS, _MOMENT_UNITS, strict=True))

    def equations(s: Symbols) -> Equations:
        p = s.p
        c = s.x["solute_concentration"]
        temperature = slurry_temperature(s, thermal_mode)
        mu = [s.x[f"mu{k}"] for k in MOMENT_ORDERS]
        sup = relative_supersaturation(c, temperature, p)
        growth, dissolution = growth_rate(sup, temperature, p)
        g0 = growth - dissolution
        birth = nucleation_rate(sup, temperature, p["volume_shape_factor"] * mu[3], p)
        gamma, ln = p["growth_size_coefficient"], p["nucleus_size"]
        dmu = [birth] + [k * g0 * (mu[k - 1] + gamma * mu[k]) + birth * ln**k for k in MOMENT_ORDERS[1:]]
        dc = -p["crystal_density"] * p["volume_shape_factor"] * dmu[3]
        derivatives = {"solute_concentration": dc, **{f"mu{k}": dmu[k] for k in MOMENT_ORDERS}}
        if thermal_mode == "jacket":
            derivatives["temperature"] = temperature_derivative(s, dc)
        return Equations(derivatives, summary_outputs(p, c, temperature, mu, sup, g0, birth),
                         state_constraints=moment_realizability(mu))

    return ModelDeclaration(
        name="crystallizer_moments",
        description="batch cooling crystallizer, method of moments (mu0..mu4), solute and slurry energy balance",
        states=(Variable("solute_concentration", "kg/kg", "dissolved solute per kg solvent", lower=0.0),
                *moment_states, *t_states),
        inputs=t_inputs,
        parameters=params,
        outputs=summary_output_variables(),
        equations=equations,
        reference="Randolph & Larson 1988 (moment equations); kinetics: see process_models.crystallization.params",
    )
