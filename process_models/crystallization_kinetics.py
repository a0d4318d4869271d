"""Crystallization kinetics: solubility, supersaturation, growth/dissolution and nucleation rates.

Pure expressions that accept casadi ``SX`` symbols or plain floats (casadi's elementwise functions
return floats for float arguments), so the same code builds the symbolic models and evaluates numbers.
Everything is smooth in the state (no hard max/min), because the moment model is the NMPC's prediction
model: the positive part of the supersaturation is the algebraic softplus

    S+ = (S + sqrt(S^2 + eps^2)) / 2,

whose transition width is ``eps`` (``supersaturation_smoothing``): it is within eps/2 of max(S, 0) everywhere
and within eps^2/(4|S|) of it for |S| >> eps.

Rate laws (SI units; concentrations in kg solute / kg solvent, moments per kg solvent):

* solubility ``c_sat(T) = a0 + a1 T_C + a2 T_C^2`` with T_C = T - 273.15 (polynomial form of the KDP
  correlation, Gunawan et al. 2004, see :mod:`process_models.crystallizer_params`);
* relative supersaturation ``S = (c - c_sat) / c_sat`` (Mullin, *Crystallization*, 4th ed., 2001, §3.12);
* growth ``G0 = k_g exp(-E_g/(R T)) S+^g - k_d (S-)^d`` (power-law growth, Mullin §6.3; dissolution as negative
  growth, first-order by default), and the Abegg-Stevens-Larson size dependence
  ``G(L) = G0 (1 + gamma L)^p`` (Abegg, Stevens & Larson, AIChE J. 14 (1968) 118; p < 1);
* nucleation ``B = exp(-E_b/(R T)) [k_p S+^p + A exp(-B_h / ln^2(1 + S+)) + k_b S+^b (kv mu3)^j]``:
  heterogeneous primary (power law), homogeneous primary (classical nucleation theory form, Mullin §5.1)
  and secondary nucleation proportional to the suspension (crystal volume) density (Gunawan et al. 2004).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import casadi as ca

GAS_CONSTANT = 8.314462618  # J/(mol K)
ZERO_CELSIUS = 273.15  # K

Num = TypeVar("Num", float, ca.SX)


def smooth_positive_part(x: Num, width: float | ca.SX) -> Num:
    """Smooth approximation of max(x, 0): ``(x + sqrt(x^2 + width^2)) / 2`` (> 0, C-infinity)."""
    return 0.5 * (x + ca.sqrt(x * x + width * width))


def solubility(temperature: Num, p: Mapping[str, float | ca.SX]) -> Num:
    """Saturation concentration in kg solute / kg solvent at slurry ``temperature`` in K."""
    t_c = temperature - ZERO_CELSIUS
    return p["solubility_coefficient_0"] + t_c * (p["solubility_coefficient_1"] + t_c * p["solubility_coefficient_2"])


def relative_supersaturation(concentration: Num, temperature: Num, p: Mapping[str, float | ca.SX]) -> Num:
    """``S = (c - c_sat(T)) / c_sat(T)`` (dimensionless); negative when undersaturated."""
    c_sat = solubility(temperature, p)
    return (concentration - c_sat) / c_sat


def _arrhenius(energy: float | ca.SX, temperature: Num) -> Num:
    return ca.exp(-energy / (GAS_CONSTANT * temperature))


def growth_rate(supersaturation: Num, temperature: Num, p: Mapping[str, float | ca.SX]) -> tuple[Num, Num]:
    """Size-independent growth and dissolution rates ``(G_growth >= 0, G_dissolution >= 0)`` in m/s.

    The net rate is ``G_growth - G_dissolution``; the finite-volume scheme upwinds each part in its own
    direction. Both are smooth in S.
    """
    eps = p["supersaturation_smoothing"]
    s_pos = smooth_positive_part(supersaturation, eps)
    s_neg = smooth_positive_part(-supersaturation, eps)
    growth = p["growth_rate_constant"] * _arrhenius(p["growth_activation_energy"], temperature) * s_pos ** p[
        "growth_order"]
    dissolution = p["dissolution_rate_constant"] * s_neg ** p["dissolution_order"]
    return growth, dissolution


def size_dependence(size: Num, p: Mapping[str, float | ca.SX], exponent: float | ca.SX = 1.0) -> Num:
    """Abegg-Stevens-Larson factor ``(1 + gamma L)^p`` multiplying the size-independent rate (L in m)."""
    return (1.0 + p["growth_size_coefficient"] * size) ** exponent


def nucleation_rate(supersaturation: Num, temperature: Num, crystal_volume: Num,
                    p: Mapping[str, float | ca.SX]) -> Num:
    """Total nucleation rate in # per kg solvent per s.

    ``crystal_volume`` is kv*mu3 (m^3 crystals per kg solvent); secondary nucleation k_b S^b (kv mu3)^j.
    """
    eps = p["supersaturation_smoothing"]
    s_pos = smooth_positive_part(supersaturation, eps)
    primary = p["primary_nucleation_rate_constant"] * s_pos ** p["primary_nucleation_order"]
    ln_s = ca.log(1.0 + s_pos)
    homogeneous = p["homogeneous_nucleation_prefactor"] * ca.exp(-p["homogeneous_nucleation_exponent"] / (ln_s * ln_s))
    suspension = smooth_positive_part(crystal_volume, 1e-30)
    secondary = (p["secondary_nucleation_rate_constant"] * s_pos ** p["secondary_nucleation_order"]
                 * suspension ** p["secondary_nucleation_suspension_exponent"])
    return _arrhenius(p["nucleation_activation_energy"], temperature) * (primary + homogeneous + secondary)
