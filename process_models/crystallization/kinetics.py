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
  correlation, Gunawan et al. 2004, see :mod:`process_models.crystallization.params`);
* relative supersaturation ``S = (c - c_sat) / c_sat`` (Mullin, *Crystallization*, 4th ed., 2001, §3.12);
* growth ``G0 = k_g exp(-E_g/(R T)) S+^g - k_d (S-)^d`` (power-law growth, Mullin §6.3; dissolution as negative
  growth, first-order by default), and the Abegg-Stevens-Larson size dependence
  ``G(L) = G0 (1 + gamma L)^p`` (Abegg, Stevens & Larson, AIChE J. 14 (1968) 118; p < 1);
* nucleation ``B = exp(-E_b/(R T)) [k_p S+^p + A exp(-B_h / ln^2(1 + S+)) + k_b S+^b (kv mu3)^j]``:
  heterogeneous primary (power law), homogeneous primary (classical nucleation theory form, Mullin §5.1)
  and secondary nucleation proportional to the suspension (crystal volume) density (Gunawan et al. 2004).

Seeded-growth relations (recipe design; plain floats/NumPy, not symbolic), after J. W. Mullin and J. Nyvlt,
"Programmed cooling of batch crystallizers", Chem. Eng. Sci. 26 (1971) 369-377: with N seed crystals of size
``L_s`` and mass ``m_s``, no nucleation and a size-independent growth rate, every crystal has the size
``L = L_s + integral G dt`` and the crystal mass is ``m_s (L/L_s)^3``. Hence

* the product size ``L_p = L_s (1 + dm/m_s)^(1/3)`` after ``dm`` kg solute crystallized per kg solvent
  (:func:`seeded_product_size`);
* a constant growth rate ``G = (L_p - L_s)/tau`` over a batch of length ``tau`` needs the concentration to fall
  along the cubic ``c(t) = c0 - m_s [(1 + (L_p/L_s - 1) t/tau)^3 - 1]`` (:func:`constant_growth_concentration`);
  keeping the solution at saturation on that path gives the controlled ("programmed") cooling curve
  ``T(t) = T_sat(c(t))`` (:func:`controlled_cooling_temperature`; Mullin & Nyvlt state it for a linear
  solubility curve, here the solubility polynomial is inverted exactly by :func:`saturation_temperature`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeVar

import casadi as ca
import numpy as np

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
    # the 1e-30 floor keeps exp(-B/ln^2) and its derivatives finite (= 0) where ln(1+S+) underflows to 0
    homogeneous = p["homogeneous_nucleation_prefactor"] * ca.exp(
        -p["homogeneous_nucleation_exponent"] / (ln_s * ln_s + 1e-30))
    suspension = smooth_positive_part(crystal_volume, 1e-30)
    secondary = (p["secondary_nucleation_rate_constant"] * s_pos ** p["secondary_nucleation_order"]
                 * suspension ** p["secondary_nucleation_suspension_exponent"])
    return _arrhenius(p["nucleation_activation_energy"], temperature) * (primary + homogeneous + secondary)


class SolubilityInversionError(ValueError):
    """No temperature in the solubility polynomial's increasing branch gives the requested concentration."""


def saturation_temperature(concentration: float, p: Mapping[str, float]) -> float:
    """Temperature in K at which ``solubility`` equals ``concentration`` (kg/kg solvent).

    Inverts ``a0 + a1 T_C + a2 T_C^2`` on its increasing branch (the root with ``a1 + 2 a2 T_C > 0``); a
    linear curve (``a2 = 0``) needs ``a1 > 0``. Raises :class:`SolubilityInversionError` naming the
    coefficients when no such temperature exists.
    """
    a0, a1, a2 = (float(p[f"solubility_coefficient_{k}"]) for k in range(3))
    c = float(concentration)
    if a2 == 0.0:
        if a1 <= 0.0:
            raise SolubilityInversionError(
                f"saturation_temperature: 'solubility_coefficient_1' = {a1} must be > 0 when "
                f"'solubility_coefficient_2' = 0 (solubility must rise with temperature)")
        return (c - a0) / a1 + ZERO_CELSIUS
    discriminant = a1 * a1 - 4.0 * a2 * (a0 - c)
    if discriminant < 0.0:
        raise SolubilityInversionError(
            f"saturation_temperature: concentration {c} kg/kg is never reached by the solubility polynomial "
            f"(coefficients a0={a0}, a1={a1}, a2={a2})")
    # the increasing-branch root (-a1 + sqrt(D)) / (2 a2), in the form free of cancellation for the sign of a1
    sqrt_d = math.sqrt(discriminant)
    root = 2.0 * (c - a0) / (a1 + sqrt_d) if a1 > 0.0 else (-a1 + sqrt_d) / (2.0 * a2)
    return root + ZERO_CELSIUS


def seeded_product_size(seed_size: float, seed_mass: float, crystallized_mass: float) -> float:
    """Product size ``L_s (1 + dm/m_s)^(1/3)`` (m) of seeds of size ``seed_size`` (m) and mass ``seed_mass``
    after ``crystallized_mass`` grew on them (both kg per kg solvent); no nucleation (Mullin & Nyvlt 1971)."""
    if not (seed_size > 0.0 and seed_mass > 0.0 and crystallized_mass >= 0.0):
        raise ValueError(f"seeded_product_size: need seed_size > 0, seed_mass > 0, crystallized_mass >= 0; got "
                         f"{seed_size}, {seed_mass}, {crystallized_mass}")
    return seed_size * (1.0 + crystallized_mass / seed_mass) ** (1.0 / 3.0)


def constant_growth_concentration(times_s: np.ndarray, batch_time_s: float, initial_concentration: float,
                                  seed_mass: float, seed_size: float, product_size: float) -> np.ndarray:
    """Concentration (kg/kg solvent) at ``times_s`` on the constant-growth path of Mullin & Nyvlt (1971).

    ``c(t) = c0 - m_s [(1 + (L_p/L_s - 1) t/tau)^3 - 1]`` for ``0 <= t <= tau``; held at ``c(tau)`` after.
    """
    if not (batch_time_s > 0.0 and seed_size > 0.0 and product_size >= seed_size and seed_mass > 0.0):
        raise ValueError(f"constant_growth_concentration: need batch_time_s > 0, seed_mass > 0 and "
                         f"product_size >= seed_size > 0; got {batch_time_s}, {seed_mass}, {seed_size}, "
                         f"{product_size}")
    fraction = np.clip(np.asarray(times_s, dtype=float) / batch_time_s, 0.0, 1.0)
    relative_size = 1.0 + (product_size / seed_size - 1.0) * fraction
    return initial_concentration - seed_mass * (relative_size**3 - 1.0)


def controlled_cooling_temperature(times_s: np.ndarray, batch_time_s: float, initial_temperature: float,
                                   final_temperature: float, seed_mass: float, seed_size: float,
                                   p: Mapping[str, float]) -> np.ndarray:
    """Programmed cooling curve T(t) in K (Mullin & Nyvlt 1971) for a seeded batch saturated at
    ``initial_temperature`` and cooled to ``final_temperature`` (K) in ``batch_time_s``: the saturation
    temperature of :func:`constant_growth_concentration`, so that the seeds grow at a constant rate."""
    if not final_temperature < initial_temperature:
        raise ValueError(f"controlled_cooling_temperature: final_temperature {final_temperature} K must be below "
                         f"initial_temperature {initial_temperature} K")
    c0 = float(solubility(float(initial_temperature), p))
    crystallized = c0 - float(solubility(float(final_temperature), p))
    product = seeded_product_size(seed_size, seed_mass, crystallized)
    path = constant_growth_concentration(times_s, batch_time_s, c0, seed_mass, seed_size, product)
    return np.array([saturation_temperature(c, p) for c in path])
