"""Adsorption isotherms for chromatography columns: linear, multi-component Langmuir, steric mass action.

Each isotherm gives, for one particle (or, in the equilibrium-dispersive model, stationary) phase:

* ``binding_rates(liquid, bound, p)``: the kinetic form ``dq_i/dt`` (used with ``binding = "kinetic"``);
* ``rapid_equilibrium_derivatives(liquid, transport, phase_ratio, p)``: ``dc_i/dt`` when ``q = q*(c)`` holds at
  every instant (``binding = "rapid_equilibrium"``), i.e. the solution of ``(I + F dq*/dc) dc/dt = transport``
  with ``F = (1 - eps) / eps`` the phase ratio, for the isotherms with an explicit ``q*(c)``
  (``explicit_equilibrium = True``: linear, Langmuir);
* ``rapid_equilibrium_rates(liquid, bound, transport, phase_ratio, p)``: ``(dc_i/dt, dq_i/dt)`` for an isotherm whose
  ``q*(c)`` is implicit (``explicit_equilibrium = False``: SMA). The bound concentrations stay states and the
  equilibrium ``g(c, q) = 0`` is imposed in differentiated form (see :class:`StericMassActionIsotherm`).

``liquid`` and ``bound`` are lists (one entry per component) of casadi column vectors over all cells/shells, so the
expressions are built once per model, not once per cell. Concentrations are in mol/m3 (= mM): ``liquid`` per
volume of (pore) liquid, ``bound`` per volume of solid skeleton, as in CADET's model equations.

Sources (equations only):

* Linear and multi-component Langmuir: G. Guiochon, A. Felinger, D. G. Shirazi, A. M. Katti, *Fundamentals of
  Preparative and Nonlinear Chromatography*, 2nd ed., Elsevier 2006, ch. 3 (competitive Langmuir
  ``q_i = q_s,i K_i c_i / (1 + sum_j K_j c_j)``); kinetic form as in the CADET-Core documentation, "Binding models:
  Multi Component Langmuir" (``dq_i/dt = k_a,i c_i q_max,i (1 - sum_j q_j / q_max,j) - k_d,i q_i``).
* Steric mass action: C. A. Brooks, S. M. Cramer, "Steric mass-action ion exchange: displacement profiles and
  induced salt gradients", AIChE J. 38 (1992) 1969-1978; kinetic form with reference concentrations as in the
  CADET-Core documentation, "Binding models: Steric Mass Action":
  ``dq_i/dt = k_a,i c_i (qbar_0 / q_ref)^nu_i - k_d,i q_i (c_0 / c_ref)^nu_i`` with
  ``qbar_0 = Lambda - sum_j (nu_j + sigma_j) q_j`` and bound salt ``q_0 = Lambda - sum_j nu_j q_j``
  (component 0 is the salt).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import casadi as ca
import numpy as np

from process_models.declaration import DeclarationError, Parameter

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class IsothermError(DeclarationError):
    """An isotherm was given inconsistent or out-of-range values."""


def check_component_names(components: Sequence[str]) -> tuple[str, ...]:
    """Component names become parts of parameter/output names: lower-case identifiers, unique, at least one."""
    names = tuple(components)
    if not names:
        raise IsothermError("components: at least one component name expected")
    for n in names:
        if not isinstance(n, str) or not _NAME.match(n):
            raise IsothermError(f"components: {n!r} is not a lower-case identifier (letters, digits, '_')")
    if len(set(names)) != len(names):
        raise IsothermError(f"components: duplicate names in {list(names)}")
    return names


def _per_component(kind: str, field_name: str, values: Sequence[float], components: Sequence[str],
                   minimum: float = 0.0) -> tuple[float, ...]:
    vals = tuple(float(v) for v in values)
    if len(vals) != len(components):
        raise IsothermError(
            f"{kind} isotherm: '{field_name}' needs one value per component {list(components)}, got {len(vals)}"
        )
    for comp, v in zip(components, vals, strict=True):
        if not math.isfinite(v) or v < minimum:
            raise IsothermError(f"{kind} isotherm: '{field_name}' of '{comp}' = {v}, "
                                f"expected a finite value >= {minimum}")
    return vals


class Isotherm(Protocol):
    """What a transport model needs from an isotherm."""

    kind: str
    explicit_equilibrium: ClassVar[bool]
    """True when ``q*(c)`` is explicit (rapid equilibrium without bound states)."""

    def parameters(self, components: Sequence[str]) -> tuple[Parameter, ...]:
        """Declared parameters (defaults = this isotherm's values), named ``<quantity>_<component>``."""
        ...

    def binding_rates(self, liquid: Sequence[ca.SX], bound: Sequence[ca.SX], p: Mapping[str, ca.SX],
                      components: Sequence[str]) -> list[ca.SX]:
        """``dq_i/dt`` in mol/(m3 solid s) for every component."""
        ...

    def rapid_equilibrium_derivatives(self, liquid: Sequence[ca.SX], transport: Sequence[ca.SX], phase_ratio: ca.SX,
                                      p: Mapping[str, ca.SX], components: Sequence[str]) -> list[ca.SX]:
        """``dc_i/dt`` (mol/(m3 s)) with the bound phase always at equilibrium."""
        ...

    def equilibrium_bound(self, liquid: Sequence[float], components: Sequence[str]) -> list[float]:
        """Bound concentrations (mol/m3 solid) in equilibrium with ``liquid`` (default parameters)."""
        ...


# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinearIsotherm:
    """Linear isotherm ``q_i = H_i c_i`` with ``H_i = k_a,i / k_d,i`` (Guiochon et al. 2006, ch. 3).

    ``adsorption_rate_per_s`` (k_a, 1/s) and ``desorption_rate_per_s`` (k_d, 1/s), one per component.
    Kinetic form: ``dq_i/dt = k_a,i c_i - k_d,i q_i``.
    """

    adsorption_rate_per_s: tuple[float, ...]
    desorption_rate_per_s: tuple[float, ...]
    kind: str = "linear"
    explicit_equilibrium: ClassVar[bool] = True

    def check(self, components: Sequence[str]) -> None:
        _per_component("linear", "adsorption_rate_per_s", self.adsorption_rate_per_s, components)
        kd = _per_component("linear", "desorption_rate_per_s", self.desorption_rate_per_s, components)
        if any(v <= 0 for v in kd):
            raise IsothermError("linear isotherm: 'desorption_rate_per_s' must be > 0 for every component")

    def parameters(self, components: Sequence[str]) -> tuple[Parameter, ...]:
        self.check(components)
        src = "Guiochon et al. 2006, ch. 3 (linear isotherm); value from the case file"
        out = []
        for comp, ka, kd in zip(components, self.adsorption_rate_per_s, self.desorption_rate_per_s, strict=True):
            out.append(Parameter(f"adsorption_rate_{comp}", "1/s", ka, f"linear adsorption rate of {comp}",
                                 lower=0.0, source=src))
            out.append(Parameter(f"desorption_rate_{comp}", "1/s", kd, f"linear desorption rate of {comp}",
                                 lower=1e-300, source=src))
        return tuple(out)

    def binding_rates(self, liquid: Sequence[ca.SX], bound: Sequence[ca.SX], p: Mapping[str, ca.SX],
                      components: Sequence[str]) -> list[ca.SX]:
        return [p[f"adsorption_rate_{c}"] * liquid[i] - p[f"desorption_rate_{c}"] * bound[i]
                for i, c in enumerate(components)]

    def rapid_equilibrium_derivatives(self, liquid: Sequence[ca.SX], transport: Sequence[ca.SX], phase_ratio: ca.SX,
                                      p: Mapping[str, ca.SX], components: Sequence[str]) -> list[ca.SX]:
        return [transport[i] / (1.0 + phase_ratio * p[f"adsorption_rate_{c}"] / p[f"desorption_rate_{c}"])
                for i, c in enumerate(components)]

    def equilibrium_bound(self, liquid: Sequence[float], components: Sequence[str]) -> list[float]:
        return [ka / kd * c for c, ka, kd in zip(liquid, self.adsorption_rate_per_s, self.desorption_rate_per_s,
                                                 strict=True)]


# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LangmuirIsotherm:
    """Competitive (multi-component) Langmuir isotherm.

    ``adsorption_rate_m3_per_mol_s`` (k_a), ``desorption_rate_per_s`` (k_d), ``capacity_mol_per_m3`` (q_max,
    per m3 solid), one per component. Equilibrium ``q_i = q_max,i K_i c_i / (1 + sum_j K_j c_j)``, ``K = k_a/k_d``.
    Kinetic: ``dq_i/dt = k_a,i c_i q_max,i (1 - sum_j q_j/q_max,j) - k_d,i q_i`` (CADET docs form).
    """

    adsorption_rate_m3_per_mol_s: tuple[float, ...]
    desorption_rate_per_s: tuple[float, ...]
    capacity_mol_per_m3: tuple[float, ...]
    kind: str = "langmuir"
    explicit_equilibrium: ClassVar[bool] = True

    def check(self, components: Sequence[str]) -> None:
        _per_component("langmuir", "adsorption_rate_m3_per_mol_s", self.adsorption_rate_m3_per_mol_s, components)
        kd = _per_component("langmuir", "desorption_rate_per_s", self.desorption_rate_per_s, components)
        qm = _per_component("langmuir", "capacity_mol_per_m3", self.capacity_mol_per_m3, components)
        if any(v <= 0 for v in kd) or any(v <= 0 for v in qm):
            raise IsothermError("langmuir isotherm: 'desorption_rate_per_s' and 'capacity_mol_per_m3' must be > 0")

    def parameters(self, components: Sequence[str]) -> tuple[Parameter, ...]:
        self.check(components)
        src = "Guiochon et al. 2006, ch. 3 (competitive Langmuir); value from the case file"
        out = []
        for i, comp in enumerate(components):
            out.append(Parameter(f"adsorption_rate_{comp}", "m3/(mol*s)", self.adsorption_rate_m3_per_mol_s[i],
                                 f"Langmuir adsorption rate of {comp}", lower=0.0, source=src))
            out.append(Parameter(f"desorption_rate_{comp}", "1/s", self.desorption_rate_per_s[i],
                                 f"Langmuir desorption rate of {comp}", lower=1e-300, source=src))
            out.append(Parameter(f"capacity_{comp}", "mol/m3", self.capacity_mol_per_m3[i],
                                 f"Langmuir saturation capacity of {comp} (per m3 solid)", lower=1e-300, source=src))
        return tuple(out)

    def binding_rates(self, liquid: Sequence[ca.SX], bound: Sequence[ca.SX], p: Mapping[str, ca.SX],
                      components: Sequence[str]) -> list[ca.SX]:
        free = 1.0 - sum(bound[j] / p[f"capacity_{c}"] for j, c in enumerate(components))
        return [p[f"adsorption_rate_{c}"] * liquid[i] * p[f"capacity_{c}"] * free
                - p[f"desorption_rate_{c}"] * bound[i] for i, c in enumerate(components)]

    def rapid_equilibrium_derivatives(self, liquid: Sequence[ca.SX], transport: Sequence[ca.SX], phase_ratio: ca.SX,
                                      p: Mapping[str, ca.SX], components: Sequence[str]) -> list[ca.SX]:
        # dq*/dc = diag(a) - w K^T with a_i = F q_i K_i / S, w_i = F q_i K_i c_i / S^2, S = 1 + sum K_j c_j;
        # (I + F dq*/dc) = D - w K^T is inverted exactly with the Sherman-Morrison formula, cell by cell
        # (vectorised over cells, no symbolic matrix solve).
        n = len(components)
        k = [p[f"adsorption_rate_{c}"] / p[f"desorption_rate_{c}"] for c in components]
        qm = [p[f"capacity_{c}"] for c in components]
        s = 1.0 + sum(k[j] * liquid[j] for j in range(n))
        diag = [1.0 + phase_ratio * qm[i] * k[i] / s for i in range(n)]
        w = [phase_ratio * qm[i] * k[i] * liquid[i] / s**2 for i in range(n)]
        d_inv_r = [transport[i] / diag[i] for i in range(n)]
        d_inv_w = [w[i] / diag[i] for i in range(n)]
        kt_d_inv_r = sum(k[j] * d_inv_r[j] for j in range(n))
        kt_d_inv_w = sum(k[j] * d_inv_w[j] for j in range(n))
        factor = kt_d_inv_r / (1.0 - kt_d_inv_w)
        return [d_inv_r[i] + d_inv_w[i] * factor for i in range(n)]

    def equilibrium_bound(self, liquid: Sequence[float], components: Sequence[str]) -> list[float]:
        k = [a / d for a, d in zip(self.adsorption_rate_m3_per_mol_s, self.desorption_rate_per_s, strict=True)]
        s = 1.0 + sum(kj * cj for kj, cj in zip(k, liquid, strict=True))
        return [qm * kj * cj / s for qm, kj, cj in zip(self.capacity_mol_per_m3, k, liquid, strict=True)]


# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StericMassActionIsotherm:
    """Steric mass action (Brooks & Cramer 1992) for ion exchange; component 0 is the salt (counter-ion).

    Per component (the salt's entries are ignored): ``characteristic_charge`` (nu, -), ``steric_factor``
    (sigma, -), ``adsorption_rate`` (k_a) and ``desorption_rate`` (k_d) in the units implied by the reference
    concentrations. ``ionic_capacity_mol_per_m3`` (Lambda, per m3 solid). ``reference_liquid_mol_per_m3`` (c_ref)
    and ``reference_solid_mol_per_m3`` (q_ref) scale the salt and free-site terms (1 = unscaled, the classic form).

    **Rapid equilibrium** (``binding = "rapid_equilibrium"``; CADET-Core docs, "Steric Mass Action", ``IS_KINETIC =
    0``): only ``K_i = k_a,i / k_d,i`` matters and ``q*(c)`` is implicit (the free sites ``qbar_0`` depend on ``q``),
    so the bound concentrations stay states and the equilibrium is imposed as the algebraic relation, per protein,

        ``g_i(c, q) = q_i - f_i(c, q) = 0``,  ``f_i = K_i c_i (qbar_0 / q_ref)^nu_i (c_ref / c_0)^nu_i``

    (SMA's ``k_a,i c_i (qbar_0/q_ref)^nu_i - k_d,i q_i (c_0/c_ref)^nu_i = 0`` divided by ``k_d,i (c_0/c_ref)^nu_i``:
    ``g`` is in mol/m3 solid, scaled like ``q``, and finite for every ``c_i``, ``q_i`` >= 0), differentiated once
    (index reduction) with a Baumgarte drift correction, ``dg_i/dt = -g_i / tau``
    (J. Baumgarte, Comput. Methods Appl. Mech. Eng. 1 (1972) 1), together with the mass balances
    ``dc_i/dt + F dq_i/dt = T_i`` and the bound salt ``q_0 = Lambda - sum_j nu_j q_j`` (``dq_0/dt = -sum_j nu_j
    dq_j/dt``, as in the kinetic form). Eliminating ``dc`` leaves, per cell, for the proteins' ``dq``::

        (1 + F e_i) dq_i + nu_i f_i sum_j b_j dq_j = e_i T_i - nu_i f_i T_0 / c_0 - g_i / tau
        e_i = df_i/dc_i = K_i (qbar_0 c_ref / (q_ref c_0))^nu_i,  b_j = F nu_j / c_0 + (nu_j + sigma_j) / qbar_0

    a diagonal plus a rank-one matrix with positive entries, solved exactly by the Sherman-Morrison formula
    (denominator ``1 + sum_j b_j nu_j f_j / (1 + F e_j) >= 1``: never singular), vectorised over all cells like the
    Langmuir case — no symbolic linear solve, no Newton iteration inside the right-hand side, and the model stays
    an ODE for the same BDF integrator (an earlier attempt as an index-1 DAE was dropped). Why this form: the ODE
    code (FV, DG, the generic simulator, CADET-matched tolerances) is reused unchanged; ``g`` decays at ``1/tau``
    from any drift the integrator leaves, and a consistent start (``equilibrium_bound``) gives ``g = 0`` at t = 0.
    The salt must stay > 0 (``q*`` is singular at ``c_0 = 0``), and a run must start at equilibrium:
    :func:`process_models.chromatography.rapid_equilibrium.rapid_equilibrium_start_problems` checks both.
    Large kinetic rates approach the same solution (tested).
    """

    characteristic_charge: tuple[float, ...]
    steric_factor: tuple[float, ...]
    adsorption_rate: tuple[float, ...]
    desorption_rate: tuple[float, ...]
    ionic_capacity_mol_per_m3: float
    reference_liquid_mol_per_m3: float = 1.0
    reference_solid_mol_per_m3: float = 1.0
    kind: str = "sma"
    explicit_equilibrium: ClassVar[bool] = False

    def check(self, components: Sequence[str]) -> None:
        if len(components) < 2:
            raise IsothermError("sma isotherm: needs the salt (first component) and at least one protein")
        _per_component("sma", "characteristic_charge", self.characteristic_charge, components)
        _per_component("sma", "steric_factor", self.steric_factor, components)
        _per_component("sma", "adsorption_rate", self.adsorption_rate, components)
        _per_component("sma", "desorption_rate", self.desorption_rate, components)
        for name in ("ionic_capacity_mol_per_m3", "reference_liquid_mol_per_m3", "reference_solid_mol_per_m3"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v <= 0:
                raise IsothermError(f"sma isotherm: '{name}' = {v}, expected a finite value > 0")

    def check_rapid_equilibrium(self, components: Sequence[str]) -> None:
        """Rapid equilibrium needs ``K_i = k_a,i / k_d,i`` finite: ``desorption_rate`` > 0 for every protein."""
        self.check(components)
        zero = [c for c, kd in zip(components[1:], self.desorption_rate[1:], strict=True) if not kd > 0]
        if zero:
            raise IsothermError(f"sma isotherm: 'desorption_rate' of {zero} = 0; rapid_equilibrium binding needs "
                                "k_d > 0 (K = k_a / k_d) for every protein")

    def parameters(self, components: Sequence[str]) -> tuple[Parameter, ...]:
        self.check(components)
        src = "Brooks & Cramer, AIChE J. 38 (1992) 1969 (SMA); value from the case file"
        out = [
            Parameter("ionic_capacity", "mol/m3", float(self.ionic_capacity_mol_per_m3),
                      "SMA ionic capacity Lambda (per m3 solid)", lower=1e-300, source=src),
            Parameter("reference_liquid_concentration", "mol/m3", float(self.reference_liquid_mol_per_m3),
                      "SMA reference liquid-phase salt concentration", lower=1e-300, source=src),
            Parameter("reference_solid_concentration", "mol/m3", float(self.reference_solid_mol_per_m3),
                      "SMA reference solid-phase concentration", lower=1e-300, source=src),
        ]
        for i, comp in enumerate(components[1:], start=1):
            out += [
                Parameter(f"characteristic_charge_{comp}", "1", self.characteristic_charge[i],
                          f"SMA characteristic charge of {comp}", lower=0.0, source=src),
                Parameter(f"steric_factor_{comp}", "1", self.steric_factor[i], f"SMA steric factor of {comp}",
                          lower=0.0, source=src),
                Parameter(f"adsorption_rate_{comp}", "m3/(mol*s)", self.adsorption_rate[i],
                          f"SMA adsorption rate of {comp}", lower=0.0, source=src),
                Parameter(f"desorption_rate_{comp}", "m3/(mol*s)", self.desorption_rate[i],
                          f"SMA desorption rate of {comp}", lower=0.0, source=src),
            ]
        return tuple(out)

    def binding_rates(self, liquid: Sequence[ca.SX], bound: Sequence[ca.SX], p: Mapping[str, ca.SX],
                      components: Sequence[str]) -> list[ca.SX]:
        proteins = list(enumerate(components))[1:]
        lam = p["ionic_capacity"]
        c_ref = p["reference_liquid_concentration"]
        q_ref = p["reference_solid_concentration"]
        free_sites = lam - sum((p[f"characteristic_charge_{c}"] + p[f"steric_factor_{c}"]) * bound[i]
                               for i, c in proteins)
        # fmax(., 0) keeps fractional powers real if a tiny negative value appears inside a Newton iteration
        free_scaled = ca.fmax(free_sites, 0.0) / q_ref
        salt_scaled = ca.fmax(liquid[0], 0.0) / c_ref
        rates: list[ca.SX] = [ca.SX(0)]
        for i, c in proteins:
            nu = p[f"characteristic_charge_{c}"]
            rates.append(p[f"adsorption_rate_{c}"] * liquid[i] * free_scaled**nu
                         - p[f"desorption_rate_{c}"] * bound[i] * salt_scaled**nu)
        rates[0] = -sum(p[f"characteristic_charge_{c}"] * rates[i] for i, c in proteins)
        return rates

    def _equilibrium_terms(self, liquid: Sequence[ca.SX], bound: Sequence[ca.SX], p: Mapping[str, ca.SX],
                           components: Sequence[str]) -> tuple[ca.SX, ca.SX, list[ca.SX], list[ca.SX]]:
        """``(c_0, qbar_0, e, f)`` of the rapid-equilibrium form (salt and free sites floored at tiny positive
        values so that powers and quotients stay finite; the start check keeps the salt > 0)."""
        proteins = list(enumerate(components))[1:]
        c_ref = p["reference_liquid_concentration"]
        q_ref = p["reference_solid_concentration"]
        salt = ca.fmax(liquid[0], 1e-12 * c_ref)
        free = ca.fmax(p["ionic_capacity"] - sum((p[f"characteristic_charge_{c}"] + p[f"steric_factor_{c}"])
                                                 * bound[i] for i, c in proteins), 1e-12 * p["ionic_capacity"])
        ratio = free * c_ref / (q_ref * salt)
        e = [p[f"adsorption_rate_{c}"] / p[f"desorption_rate_{c}"] * ratio ** p[f"characteristic_charge_{c}"]
             for _, c in proteins]
        f = [e[k] * liquid[i] for k, (i, _) in enumerate(proteins)]
        return salt, free, e, f

    def equilibrium_residual(self, liquid: Sequence[ca.SX], bound: Sequence[ca.SX], p: Mapping[str, ca.SX],
                             components: Sequence[str]) -> list[ca.SX]:
        """``g_i = q_i - f_i(c, q)`` (mol/m3 solid) for every protein (component 1 on): zero at equilibrium."""
        _, _, _, f = self._equilibrium_terms(liquid, bound, p, components)
        return [bound[i] - f[i - 1] for i in range(1, len(components))]

    def rapid_equilibrium_rates(self, liquid: Sequence[ca.SX], bound: Sequence[ca.SX], transport: Sequence[ca.SX],
                                phase_ratio: ca.SX, p: Mapping[str, ca.SX], components: Sequence[str],
                                relaxation_time_s: float) -> tuple[list[ca.SX], list[ca.SX]]:
        """``(dc/dt, dq/dt)`` per component (mol/(m3 s), mol/(m3 solid s)) with the bound phase held at equilibrium
        (class docstring: the differentiated equilibrium with drift correction ``-g / relaxation_time_s``, solved
        by Sherman-Morrison)."""
        proteins = list(enumerate(components))[1:]
        salt, free, e, f = self._equilibrium_terms(liquid, bound, p, components)
        nu = [p[f"characteristic_charge_{c}"] for _, c in proteins]
        sigma = [p[f"steric_factor_{c}"] for _, c in proteins]
        g = [bound[i] - f[k] for k, (i, _) in enumerate(proteins)]
        diag = [1.0 + phase_ratio * ek for ek in e]
        w = [nu[k] * f[k] for k in range(len(proteins))]
        b = [phase_ratio * nu[k] / salt + (nu[k] + sigma[k]) / free for k in range(len(proteins))]
        r = [e[k] * transport[i] - w[k] * transport[0] / salt - g[k] / relaxation_time_s
             for k, (i, _) in enumerate(proteins)]
        d_inv_r = [r[k] / diag[k] for k in range(len(proteins))]
        d_inv_w = [w[k] / diag[k] for k in range(len(proteins))]
        factor = (sum(b[k] * d_inv_r[k] for k in range(len(proteins)))
                  / (1.0 + sum(b[k] * d_inv_w[k] for k in range(len(proteins)))))
        dq_proteins = [d_inv_r[k] - d_inv_w[k] * factor for k in range(len(proteins))]
        dq = [-sum(nu[k] * dq_proteins[k] for k in range(len(proteins)))] + dq_proteins
        dc = [transport[i] - phase_ratio * dq[i] for i in range(len(components))]
        return dc, dq

    def rapid_equilibrium_derivatives(self, liquid: Sequence[ca.SX], transport: Sequence[ca.SX], phase_ratio: ca.SX,
                                      p: Mapping[str, ca.SX], components: Sequence[str]) -> list[ca.SX]:
        raise IsothermError("sma isotherm: q*(c) is implicit, there is no bound-state-free rapid equilibrium; the "
                            "column keeps bound states and uses rapid_equilibrium_rates")

    def equilibrium_bound(self, liquid: Sequence[float], components: Sequence[str]) -> list[float]:
        """Bound concentrations (mol/m3 solid, salt first) in equilibrium with ``liquid`` (default parameters):
        protein-free liquid -> salt bound = Lambda, proteins 0; otherwise :func:`sma_equilibrium_bound`."""
        if all(v == 0 for v in liquid[1:]):
            return [float(self.ionic_capacity_mol_per_m3)] + [0.0] * (len(liquid) - 1)
        values = {p.name: p.value for p in self.parameters(components)}
        bound = sma_equilibrium_bound([np.asarray([float(v)]) for v in liquid], values, components)
        return [float(q[0]) for q in bound]


def sma_equilibrium_bound(liquid: Sequence[np.ndarray], values: Mapping[str, float],
                          components: Sequence[str]) -> list[np.ndarray]:
    """Bound concentrations (mol/m3 solid; salt's ``q_0 = Lambda - sum nu_i q_i`` first) in SMA equilibrium with
    ``liquid`` (one array per component, any shape; mol/m3) for the parameter ``values`` (declared names).

    With ``s = qbar_0`` the proteins' equilibrium gives ``q_i = K_i c_i (s c_ref / (q_ref c_0))^nu_i``, so
    ``h(s) = s + sum_i (nu_i + sigma_i) q_i(s) - Lambda = 0``: increasing in ``s`` with ``h(0) <= 0 <= h(Lambda)``,
    one root, found by bisection on ``[0, Lambda]`` to machine precision (vectorised over cells)."""
    proteins = list(enumerate(components))[1:]
    salt = np.asarray(liquid[0], dtype=float)
    if np.any(~np.isfinite(salt)) or np.any(salt <= 0):
        raise IsothermError(f"sma isotherm: the equilibrium needs a salt concentration '{components[0]}' > 0 "
                            f"(q* is singular at c_0 = 0), got min {float(np.min(salt)):g} mol/m3")
    lam = float(values["ionic_capacity"])
    scale = float(values["reference_liquid_concentration"]) / float(values["reference_solid_concentration"])
    k = {c: values[f"adsorption_rate_{c}"] / values[f"desorption_rate_{c}"] for _, c in proteins}

    def protein_bound(s: np.ndarray) -> list[np.ndarray]:
        return [k[c] * np.maximum(np.asarray(liquid[i], dtype=float), 0.0)
                * (s * scale / salt) ** values[f"characteristic_charge_{c}"] for i, c in proteins]

    low, high = np.zeros_like(salt), np.full_like(salt, lam)
    for _ in range(200):
        mid = 0.5 * (low + high)
        h = mid - lam + sum((values[f"characteristic_charge_{c}"] + values[f"steric_factor_{c}"]) * q
                            for (_, c), q in zip(proteins, protein_bound(mid), strict=True))
        low, high = np.where(h < 0, mid, low), np.where(h < 0, high, mid)
        if np.all(high - low <= 4 * np.finfo(float).eps * lam):
            break
    q = protein_bound(0.5 * (low + high))
    q_salt = lam - sum(values[f"characteristic_charge_{c}"] * qi for (_, c), qi in zip(proteins, q, strict=True))
    return [q_salt, *q]


AnyIsotherm = LinearIsotherm | LangmuirIsotherm | StericMassActionIsotherm


def isotherm_from_mapping(table: Mapping[str, object], components: Sequence[str]) -> AnyIsotherm:
    """Build an isotherm from a case-file table ``{kind = "linear" | "langmuir" | "sma", ...}``."""
    kind = table.get("kind")
    fields: dict[str, tuple[type, ...]] = {
        "linear": (LinearIsotherm,),
        "langmuir": (LangmuirIsotherm,),
        "sma": (StericMassActionIsotherm,),
    }
    if kind not in fields:
        raise IsothermError(f"isotherm.kind = {kind!r}; expected one of {sorted(fields)}")
    cls = fields[str(kind)][0]
    args = {k: v for k, v in table.items() if k != "kind"}
    allowed = [f for f in cls.__dataclass_fields__ if f != "kind"]
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise IsothermError(f"isotherm ({kind}): unknown key(s) {unknown}; expected {allowed}")
    try:
        iso = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    except TypeError as exc:
        raise IsothermError(f"isotherm ({kind}): {exc}; expected keys {allowed}") from exc
    iso.check(components)
    return iso
