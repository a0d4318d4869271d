"""Small declared models for controller tests (independent of the crystallizer being written elsewhere)."""

from __future__ import annotations

import math

from process_models.declaration import (
    CompiledModel,
    Equations,
    Input,
    InputRole,
    ModelDeclaration,
    Parameter,
    Symbols,
    Variable,
    compile_model,
)


def thermal_tank() -> CompiledModel:
    """First-order jacketed tank: dT/dt = (T_j - T)/tau + (T_amb - T)/tau_loss (Newton cooling; illustrative)."""

    def equations(s: Symbols) -> Equations:
        t = s.x["temperature"]
        return Equations(
            derivatives={"temperature": (s.u["jacket_temperature"] - t) / s.p["time_constant"]
                         + (s.u["ambient_temperature"] - t) / s.p["loss_time_constant"]},
            outputs={"temperature": t, "temperature_celsius": t - 273.15},
        )

    return compile_model(ModelDeclaration(
        name="thermal_tank",
        description="first-order jacketed tank (test model)",
        states=(Variable("temperature", "K", "liquid temperature", lower=200.0, upper=500.0),),
        inputs=(Input("jacket_temperature", "K", "jacket temperature", lower=250.0, upper=420.0, nominal=300.0),
                Input("ambient_temperature", "K", "ambient", role=InputRole.DISTURBANCE, nominal=293.15)),
        parameters=(Parameter("time_constant", "s", 120.0, "jacket time constant", lower=1.0, upper=1e4,
                              source="illustrative"),
                    Parameter("loss_time_constant", "s", 3600.0, "loss time constant", lower=1.0, upper=1e6,
                              source="illustrative")),
        outputs=(Variable("temperature", "K", "liquid temperature"),
                 Variable("temperature_celsius", "degC", "liquid temperature")),
        equations=equations,
    ))


def mini_crystallizer() -> CompiledModel:
    """Moments of a seeded cooling crystallizer with a linear solubility and power-law kinetics (test model).

    Standard method of moments (Randolph & Larson, *Theory of Particulate Processes*, 1988, ch. 4):
    dmu0/dt = B, dmu_k/dt = k G mu_{k-1}; mass balance dc/dt = -rho kv 3 G mu2. Rate laws G = kg S^g,
    B = kb S^b mu3 (secondary); illustrative numbers of KDP-like magnitude, states per kg solvent.
    """

    def equations(s: Symbols) -> Equations:
        c, mu0, mu1, mu2, mu3, mu4 = (s.x[n] for n in ("concentration", "mu0", "mu1", "mu2", "mu3", "mu4"))
        temp = s.u["jacket_temperature"]
        c_sat = s.p["solubility_offset"] + s.p["solubility_slope"] * (temp - 273.15)
        sup = (c - c_sat) / c_sat
        s_pos = 0.5 * (sup + (sup * sup + 1e-8) ** 0.5)
        g = s.p["growth_rate_constant"] * s_pos ** 1.5
        b = s.p["nucleation_rate_constant"] * s_pos ** 2.0 * mu3
        return Equations(
            derivatives={"concentration": -s.p["crystal_density"] * 3 * g * mu2, "mu0": b, "mu1": g * mu0,
                         "mu2": 2 * g * mu1, "mu3": 3 * g * mu2, "mu4": 4 * g * mu3},
            outputs={"solute_concentration": c, "supersaturation": sup, "d43": mu4 / mu3,
                     "number_density": mu0, "cv": (mu2 * mu0 / mu1**2 - 1)},
        )

    return compile_model(ModelDeclaration(
        name="mini_crystallizer",
        description="moments of a seeded cooling crystallizer (test model)",
        states=(Variable("concentration", "kg/kg", "solute concentration", lower=0.0, upper=1.0),
                Variable("mu0", "1/kg", "zeroth moment", lower=0.0),
                Variable("mu1", "m/kg", "first moment", lower=0.0),
                Variable("mu2", "m2/kg", "second moment", lower=0.0),
                Variable("mu3", "m3/kg", "third moment", lower=0.0),
                Variable("mu4", "m4/kg", "fourth moment", lower=0.0)),
        inputs=(Input("jacket_temperature", "K", "slurry temperature (ideal jacket)", lower=273.15, upper=330.0,
                      nominal=313.15),),
        parameters=(Parameter("solubility_offset", "kg/kg", 0.20, "c_sat at 0 degC", source="illustrative"),
                    Parameter("solubility_slope", "kg/kg/K", 0.004, "dc_sat/dT", source="illustrative"),
                    Parameter("growth_rate_constant", "m/s", 1e-6, "kg", lower=0.0, upper=1.0,
                              source="illustrative"),
                    Parameter("nucleation_rate_constant", "1/(m3 s)", 1e10, "kb", lower=0.0, upper=1e20,
                              source="illustrative"),
                    Parameter("crystal_density", "kg/m3", 2338.0, "rho_c", source="KDP density")),
        outputs=(Variable("solute_concentration", "kg/kg", "c"), Variable("supersaturation", "1", "S"),
                 Variable("d43", "m", "volume-weighted mean size"), Variable("number_density", "1/kg", "mu0"),
                 Variable("cv", "1", "squared coefficient of variation of the number distribution")),
        equations=equations,
    ))


def seeded_initial_state(seed_size_m: float = 100e-6, seed_mass_per_kg: float = 0.005,
                         concentration: float = 0.36) -> dict[str, float]:
    """Monodisperse-ish seed (cubes of edge ``seed_size_m``) of ``seed_mass_per_kg`` kg per kg solvent."""
    rho = 2338.0
    n = seed_mass_per_kg / (rho * seed_size_m**3)
    spread = 0.1  # relative std of the seed size
    mu1 = n * seed_size_m
    mu2 = n * seed_size_m**2 * (1 + spread**2)
    mu3 = n * seed_size_m**3 * (1 + 3 * spread**2)
    mu4 = n * seed_size_m**4 * (1 + 6 * spread**2 + 3 * spread**4)
    assert math.isfinite(mu4)
    return {"concentration": concentration, "mu0": n, "mu1": mu1, "mu2": mu2, "mu3": mu3, "mu4": mu4}
