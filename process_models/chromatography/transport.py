"""Column transport models and their spatial discretisation, written as one casadi right-hand side.

Models (all with axial dispersion and Danckwerts inlet/outlet conditions, interstitial velocity ``u > 0``):

* **Equilibrium-dispersive / lumped rate (ED)**, Guiochon et al., *Fundamentals of Preparative and Nonlinear
  Chromatography*, 2nd ed. 2006, ch. 2.2; CADET-Core docs "Lumped rate model without pores":
  ``dc/dt + F_t dq/dt = -u dc/dz + D_ax d2c/dz2`` with ``F_t = (1 - eps_t)/eps_t`` (total porosity ``eps_t``).
* **Lumped rate model with pores (LRMP)**, CADET-Core docs "Lumped rate model with pores":
  ``dc/dt = -u dc/dz + D_ax d2c/dz2 - (1-eps_c)/eps_c * 3/r_p * k_f (c - c_p)``,
  ``dc_p/dt + (1-eps_p)/eps_p dq/dt = 3/(r_p eps_p) k_f (c - c_p)``.
* **General rate model (GRM)**, Guiochon et al. 2006, ch. 2.2.4; CADET-Core docs "General rate model":
  bulk as LRMP with ``c_p(r_p)`` at the particle surface; in the (spherical) particle
  ``dc_p/dt + (1-eps_p)/eps_p dq/dt = D_p / r^2 d/dr (r^2 dc_p/dr)``, ``dc_p/dr(0) = 0``,
  ``eps_p D_p dc_p/dr(r_p) = k_f (c - c_p(r_p))`` (film and pore diffusion).

Discretisation (a cell-centred finite-volume method, the scheme family CADET-Core's FV discretisation uses, so
that results can be compared at matched resolution):

* axial: ``axial_cells`` equal cells; convective face values by upwind (``weno_order = 1``) or WENO with k = 2
  (``weno_order = 2``, third order; G.-S. Jiang, C.-W. Shu, J. Comput. Phys. 126 (1996) 202, and C.-W. Shu,
  ICASE report 97-65 (1997): stencil values ``(c_i + c_i+1)/2`` and ``(3 c_i - c_i-1)/2``, ideal weights 2/3 and 1/3,
  smoothness ``(c_i+1 - c_i)^2`` and ``(c_i - c_i-1)^2``, ``alpha = d / (eps + beta)^2``) or WENO with k = 3
  (``weno_order = 3``, fifth order; Jiang & Shu 1996 eqs. 2.7–2.10 and 3.1–3.3: the three third-order stencil
  values, ideal weights 1/10, 6/10, 3/10 and the smoothness indicators ``13/12 (2nd difference)^2 + 1/4 (1st
  difference)^2``; CADET-Core's ``WENO_ORDER`` 1 / 2 / 3 has the same meaning); near the column ends the order is
  lowered stencil by stencil (WENO5 -> WENO3 -> upwind; CADET's ``BOUNDARY_MODEL = 0``); the inlet face carries
  ``u c_in`` (Danckwerts), dispersive flux is zero on both column ends; dispersion by central differences;
* particle (GRM): ``particle_cells`` spherical shells equidistant in radius, diffusive flux between shell centres;
  on the outer face the film and the outer half shell act in series,
  ``j = (c - c_p,outer) / (1/k_f + (dr/2) / (eps_p D_p))`` (the surface concentration eliminated by flux
  continuity); LRMP is one well-mixed pore phase with ``j = k_f (c - c_p)``.

``Discretisation(method="dg")`` replaces both by the high-order operators of
:mod:`process_models.chromatography.spectral` (DG spectral elements along the column, orthogonal collocation in the
GRM particle); the states keep their names, one per axial node (``elements * (polynomial_degree + 1)``) and per
particle collocation point; binding and isotherms are the same pointwise terms.

Binding is ``kinetic`` (bound concentrations are states) or ``rapid_equilibrium``: for an explicit ``q*(c)``
(linear, Langmuir) without bound states, ``(I + F dq*/dc) dc/dt = transport``; for SMA (implicit ``q*``) the bound
concentrations stay states, held at equilibrium by the differentiated equilibrium relation with a drift correction
of time constant :data:`EQUILIBRIUM_RELAXATION_S` (see :mod:`process_models.chromatography.isotherms`).

States, one vector per quantity and component: ``bulk_concentration_<comp>[cell]``,
``pore_concentration_<comp>[cell*shells + shell]`` (shell 0 innermost), ``bound_concentration_<comp>`` laid out like
the pore (ED: like the bulk). Units mol/m3 (liquid) and mol/m3 solid (bound). Cell 0 is at the inlet.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import casadi as ca
import numpy as np

from process_models.chromatography.detectors import (
    DetectorSpec,
    detector_outputs,
    detector_parameters,
    detector_variables,
)
from process_models.chromatography.isotherms import AnyIsotherm, StericMassActionIsotherm, check_component_names
from process_models.chromatography.spectral import dg_axial_transport, particle_collocation
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

EQUILIBRIUM_RELAXATION_S = 1e-3
"""Drift-correction time constant (s) of rapid-equilibrium SMA: the equilibrium residual ``g`` obeys
``dg/dt = -g / tau`` (Baumgarte stabilisation). Short against every transport time of a column (cell residence
times are >= 0.1 s in the shipped cases), so it only removes the integrator's drift; BDF takes the stiff mode in
its stride."""


class TransportModel(str, Enum):
    EQUILIBRIUM_DISPERSIVE = "equilibrium_dispersive"
    LUMPED_RATE_WITH_PORES = "lumped_rate_with_pores"
    GENERAL_RATE = "general_rate"


class BindingMode(str, Enum):
    KINETIC = "kinetic"
    RAPID_EQUILIBRIUM = "rapid_equilibrium"


class ColumnError(DeclarationError):
    """A column specification or discretisation is inconsistent."""


@dataclass(frozen=True)
class ColumnSpec:
    """Physical column. SI units. Per-component tuples follow ``components``.

    ``column_porosity``: interstitial porosity eps_c (LRMP, GRM). ``total_porosity``: eps_t (ED only).
    ``particle_porosity`` eps_p, ``particle_radius_m`` r_p, ``film_diffusion_m_per_s`` k_f (LRMP, GRM),
    ``pore_diffusion_m2_per_s`` D_p (GRM). ``detector``: UV / conductivity / viscosity constants for the
    measured outputs (see :mod:`process_models.chromatography.detectors`).
    """

    transport: TransportModel
    components: tuple[str, ...]
    length_m: float
    interstitial_velocity_m_per_s: float
    axial_dispersion_m2_per_s: float
    column_porosity: float = 0.0
    total_porosity: float = 0.0
    particle_porosity: float = 0.0
    particle_radius_m: float = 0.0
    film_diffusion_m_per_s: tuple[float, ...] = ()
    pore_diffusion_m2_per_s: tuple[float, ...] = ()
    binding: BindingMode = BindingMode.KINETIC
    detector: DetectorSpec = DetectorSpec()
    column_diameter_m: float | None = None
    """Packed-bed diameter (m): with a volumetric flow rate it gives the interstitial velocity (process steps)."""

    @property
    def flow_porosity(self) -> float:
        """The porosity the interstitial velocity refers to: eps_c (LRMP, GRM) or eps_t (ED)."""
        if TransportModel(self.transport) is TransportModel.EQUILIBRIUM_DISPERSIVE:
            return float(self.total_porosity)
        return float(self.column_porosity)

    def check(self) -> None:
        check_component_names(self.components)
        self.detector.check(self.components)
        t = TransportModel(self.transport)
        d = self.column_diameter_m
        if d is not None and not (isinstance(d, int | float) and math.isfinite(d) and d > 0):
            raise ColumnError(f"column: 'column_diameter_m' = {d!r}, expected a finite value > 0 m")
        positive = {"length_m": self.length_m, "interstitial_velocity_m_per_s": self.interstitial_velocity_m_per_s}
        if t is TransportModel.EQUILIBRIUM_DISPERSIVE:
            fractions = {"total_porosity": self.total_porosity}
        else:
            fractions = {"column_porosity": self.column_porosity, "particle_porosity": self.particle_porosity}
            positive["particle_radius_m"] = self.particle_radius_m
        for key, v in positive.items():
            if not (math.isfinite(v) and v > 0):
                raise ColumnError(f"column ({t.value}): '{key}' = {v}, expected a finite value > 0")
        for key, v in fractions.items():
            if not (0 < v < 1):
                raise ColumnError(f"column ({t.value}): '{key}' = {v}, expected 0 < value < 1")
        if not (math.isfinite(self.axial_dispersion_m2_per_s) and self.axial_dispersion_m2_per_s >= 0):
            raise ColumnError(f"column: 'axial_dispersion_m2_per_s' = {self.axial_dispersion_m2_per_s}, expected >= 0")
        needs = []
        if t is not TransportModel.EQUILIBRIUM_DISPERSIVE:
            needs.append(("film_diffusion_m_per_s", self.film_diffusion_m_per_s))
        if t is TransportModel.GENERAL_RATE:
            needs.append(("pore_diffusion_m2_per_s", self.pore_diffusion_m2_per_s))
        for key, vals in needs:
            if len(vals) != len(self.components) or not all(math.isfinite(v) and v > 0 for v in vals):
                raise ColumnError(f"column ({t.value}): '{key}' needs one finite value > 0 per component "
                                  f"{list(self.components)}, got {list(vals)}")


class SpatialMethod(str, Enum):
    FINITE_VOLUME = "fv"
    DISCONTINUOUS_GALERKIN = "dg"


@dataclass(frozen=True)
class Discretisation:
    """``method`` "fv" (finite volumes: ``axial_cells`` >= 3, ``particle_cells`` GRM shells, ``weno_order`` 1
    (upwind), 2 (WENO k=2, third order) or 3 (WENO k=3, fifth order; needs ``axial_cells`` >= 5)) or "dg"
    (:mod:`process_models.chromatography.spectral`: ``elements`` >= 1 of
    ``polynomial_degree`` >= 1 along the column, ``particle_cells`` = interior collocation points in the GRM
    particle)."""

    axial_cells: int = 50
    particle_cells: int = 4
    weno_order: int = 2
    weno_epsilon: float = 1e-10
    method: str = "fv"
    polynomial_degree: int = 4
    elements: int = 8

    @property
    def dg(self) -> bool:
        return SpatialMethod(self.method) is SpatialMethod.DISCONTINUOUS_GALERKIN

    @property
    def axial_points(self) -> int:
        """Axial unknowns per component: cells (FV) or ``elements * (polynomial_degree + 1)`` nodes (DG)."""
        return int(self.elements) * (int(self.polynomial_degree) + 1) if self.dg else int(self.axial_cells)

    def check(self, transport: TransportModel) -> None:
        if self.method not in [m.value for m in SpatialMethod]:
            raise ColumnError(f"discretisation: 'method' = {self.method!r}, expected one of "
                              f"{[m.value for m in SpatialMethod]}")
        if self.dg:
            for key, low in (("polynomial_degree", 1), ("elements", 1)):
                v = getattr(self, key)
                if isinstance(v, bool) or not isinstance(v, int | float) or int(v) != v or v < low:
                    raise ColumnError(f"discretisation: '{key}' = {v}, expected an integer >= {low}")
            if transport is TransportModel.GENERAL_RATE and (int(self.particle_cells) != self.particle_cells
                                                             or self.particle_cells < 1):
                raise ColumnError(f"discretisation: 'particle_cells' = {self.particle_cells}, expected an integer "
                                  ">= 1 (interior collocation points)")
            return
        if int(self.axial_cells) != self.axial_cells or self.axial_cells < 3:
            raise ColumnError(f"discretisation: 'axial_cells' = {self.axial_cells}, expected an integer >= 3")
        if transport is TransportModel.GENERAL_RATE and (int(self.particle_cells) != self.particle_cells
                                                         or self.particle_cells < 1):
            raise ColumnError(f"discretisation: 'particle_cells' = {self.particle_cells}, expected an integer >= 1")
        if self.weno_order not in (1, 2, 3):
            raise ColumnError(f"discretisation: 'weno_order' = {self.weno_order}, expected 1 (upwind), 2 (WENO3) or "
                              "3 (WENO5)")
        if self.weno_order == 3 and self.axial_cells < 5:
            raise ColumnError(f"discretisation: 'axial_cells' = {self.axial_cells}, expected >= 5 with weno_order = 3 "
                              "(the WENO5 stencil spans five cells)")
        if not self.weno_epsilon > 0:
            raise ColumnError(f"discretisation: 'weno_epsilon' = {self.weno_epsilon}, expected > 0")


@dataclass(frozen=True)
class ColumnLayout:
    """Sizes of the discretised model (derived from spec + discretisation)."""

    transport: TransportModel
    components: tuple[str, ...]
    axial_cells: int
    shells: int                 # 0 for ED, 1 for LRMP, particle_cells for GRM
    kinetic: bool
    state_sizes: dict[str, int] = field(default_factory=dict)
    bound_states: bool = True
    """Bound concentrations are states: kinetic binding, or rapid equilibrium of an isotherm with implicit q*."""

    @property
    def implicit_equilibrium(self) -> bool:
        """Rapid equilibrium held on bound states (SMA): the start must be at equilibrium."""
        return self.bound_states and not self.kinetic

    @property
    def ncomp(self) -> int:
        return len(self.components)


def column_layout(spec: ColumnSpec, disc: Discretisation, isotherm: AnyIsotherm | None = None) -> ColumnLayout:
    """Sizes of the discretised model. ``isotherm`` is needed with rapid-equilibrium binding (whether bound states
    exist depends on it)."""
    t = TransportModel(spec.transport)
    shells = {TransportModel.EQUILIBRIUM_DISPERSIVE: 0, TransportModel.LUMPED_RATE_WITH_PORES: 1,
              TransportModel.GENERAL_RATE: int(disc.particle_cells)}[t]
    kinetic = BindingMode(spec.binding) is BindingMode.KINETIC
    if not kinetic and isotherm is None:
        raise ColumnError("column_layout: rapid_equilibrium binding needs the isotherm (an implicit q*(c) keeps "
                          "bound states)")
    bound_states = kinetic or not type(isotherm).explicit_equilibrium
    n = disc.axial_points
    sizes: dict[str, int] = {}
    for c in spec.components:
        sizes[f"bulk_concentration_{c}"] = n
        if shells:
            sizes[f"pore_concentration_{c}"] = n * shells
        if bound_states:
            sizes[f"bound_concentration_{c}"] = n * max(shells, 1)
    return ColumnLayout(t, tuple(spec.components), n, shells, kinetic, sizes, bound_states)


# ----------------------------------------------------------------------------------------------
# Discretised operators (vectorised over cells)
# ----------------------------------------------------------------------------------------------
def _weno2_face_values(c: ca.SX, eps: float) -> ca.SX:
    """Right-face values of cells 1..n-2 (interior) for u > 0 by WENO k=2 (Jiang & Shu 1996)."""
    cm, c0, cp = c[:-2], c[1:-1], c[2:]
    beta0 = (cp - c0) ** 2
    beta1 = (c0 - cm) ** 2
    alpha0 = (2.0 / 3.0) / (eps + beta0) ** 2
    alpha1 = (1.0 / 3.0) / (eps + beta1) ** 2
    return (alpha0 * 0.5 * (c0 + cp) + alpha1 * 0.5 * (3.0 * c0 - cm)) / (alpha0 + alpha1)


def _weno3_face_values(c: ca.SX, eps: float) -> ca.SX:
    """Right-face values of cells 2..n-3 for u > 0 by WENO k=3 (fifth order; Jiang & Shu 1996, eqs. 2.7-2.10
    and 3.1-3.3; ideal weights 1/10, 6/10, 3/10)."""
    cmm, cm, c0, cp, cpp = c[:-4], c[1:-3], c[2:-2], c[3:-1], c[4:]
    q0 = (2.0 * cmm - 7.0 * cm + 11.0 * c0) / 6.0
    q1 = (-cm + 5.0 * c0 + 2.0 * cp) / 6.0
    q2 = (2.0 * c0 + 5.0 * cp - cpp) / 6.0
    beta0 = 13.0 / 12.0 * (cmm - 2.0 * cm + c0) ** 2 + 0.25 * (cmm - 4.0 * cm + 3.0 * c0) ** 2
    beta1 = 13.0 / 12.0 * (cm - 2.0 * c0 + cp) ** 2 + 0.25 * (cm - cp) ** 2
    beta2 = 13.0 / 12.0 * (c0 - 2.0 * cp + cpp) ** 2 + 0.25 * (3.0 * c0 - 4.0 * cp + cpp) ** 2
    alpha0 = 0.1 / (eps + beta0) ** 2
    alpha1 = 0.6 / (eps + beta1) ** 2
    alpha2 = 0.3 / (eps + beta2) ** 2
    return (alpha0 * q0 + alpha1 * q1 + alpha2 * q2) / (alpha0 + alpha1 + alpha2)


def axial_transport(c: ca.SX, c_in: ca.SX, velocity: ca.SX, dispersion: ca.SX, cell_length: ca.SX,
                    disc: Discretisation) -> ca.SX:
    """``-u dc/dz + D_ax d2c/dz2`` per cell (mol/(m3 s)) with Danckwerts boundaries, FV form."""
    n = c.numel()
    if disc.weno_order == 3:
        weno3 = _weno2_face_values(c, disc.weno_epsilon)  # faces of cells 1..n-2
        faces = ca.vertcat(c_in, c[0], weno3[0], _weno3_face_values(c, disc.weno_epsilon), weno3[n - 3], c[n - 1])
    elif disc.weno_order == 2:
        faces = ca.vertcat(c_in, c[0], _weno2_face_values(c, disc.weno_epsilon), c[n - 1])
    else:
        faces = ca.vertcat(c_in, c)
    convection = -velocity / cell_length * (faces[1:] - faces[:-1])
    flux = ca.vertcat(0, dispersion * (c[1:] - c[:-1]) / cell_length, 0)
    return convection + (flux[1:] - flux[:-1]) / cell_length


def shell_geometry(shells: int) -> tuple[np.ndarray, np.ndarray]:
    """Dimensionless (r / r_p) face radii (shells + 1) and ``3 / (r_out^3 - r_in^3)`` per shell."""
    faces = np.linspace(0.0, 1.0, shells + 1)
    volume_factor = 3.0 / (faces[1:] ** 3 - faces[:-1] ** 3)
    return faces, volume_factor


# ----------------------------------------------------------------------------------------------
# Declaration
# ----------------------------------------------------------------------------------------------
def _column_parameters(spec: ColumnSpec) -> list[Parameter]:
    t = TransportModel(spec.transport)
    src = "case file; model equations: Guiochon et al. 2006 ch. 2, CADET-Core docs (unit operation models)"
    out = [
        Parameter("column_length", "m", float(spec.length_m), "packed bed length", lower=1e-300, source=src),
        Parameter("interstitial_velocity", "m/s", float(spec.interstitial_velocity_m_per_s),
                  "interstitial (ED: chromatographic) velocity", lower=1e-300, source=src),
        Parameter("axial_dispersion", "m2/s", float(spec.axial_dispersion_m2_per_s), "axial dispersion coefficient",
                  lower=0.0, source=src),
    ]
    if t is TransportModel.EQUILIBRIUM_DISPERSIVE:
        out.append(Parameter("total_porosity", "1", float(spec.total_porosity), "total porosity eps_t",
                             lower=1e-9, upper=1 - 1e-9, source=src))
        return out
    out += [
        Parameter("column_porosity", "1", float(spec.column_porosity), "interstitial porosity eps_c",
                  lower=1e-9, upper=1 - 1e-9, source=src),
        Parameter("particle_porosity", "1", float(spec.particle_porosity), "particle porosity eps_p",
                  lower=1e-9, upper=1 - 1e-9, source=src),
        Parameter("particle_radius", "m", float(spec.particle_radius_m), "particle radius r_p", lower=1e-300,
                  source=src),
    ]
    for comp, kf in zip(spec.components, spec.film_diffusion_m_per_s, strict=True):
        out.append(Parameter(f"film_diffusion_{comp}", "m/s", float(kf), f"film mass transfer coefficient of {comp}",
                             lower=1e-300, source=src))
    if t is TransportModel.GENERAL_RATE:
        for comp, dp in zip(spec.components, spec.pore_diffusion_m2_per_s, strict=True):
            out.append(Parameter(f"pore_diffusion_{comp}", "m2/s", float(dp), f"pore diffusion coefficient of {comp}",
                                 lower=1e-300, source=src))
    return out


def _shell_indices(cells: int, shells: int, shell: int) -> list[int]:
    return [cell * shells + shell for cell in range(cells)]


def _split_shells(vector: ca.SX, cells: int, shells: int) -> list[ca.SX]:
    """``[cell*shells + shell]`` -> one vector over cells per shell."""
    return [vector[_shell_indices(cells, shells, j)] for j in range(shells)]


def _join_shells(parts: Sequence[ca.SX], cells: int) -> ca.SX:
    shells = len(parts)
    out = ca.SX.zeros(cells * shells)
    for j, part in enumerate(parts):
        out[_shell_indices(cells, shells, j)] = part
    return out


def column_declaration(spec: ColumnSpec, isotherm: AnyIsotherm, disc: Discretisation,
                       name: str = "chromatography_column", description: str = "") -> ModelDeclaration:
    """The discretised column as a :class:`ModelDeclaration` (states, inputs, parameters, outputs, equations).

    Inputs: ``inlet_concentration_<component>`` (mol/m3). Outputs: ``outlet_concentration_<component>`` (mol/m3,
    the last axial cell). Parameters: column/transport parameters plus the isotherm's (see the modules).
    """
    if not re.fullmatch(r"[A-Za-z](?:_?[A-Za-z0-9])*", name):
        raise ColumnError(f"model name {name!r}: expected a letter, then letters, digits and single underscores")
    spec.check()
    t = TransportModel(spec.transport)
    disc.check(t)
    layout = column_layout(spec, disc, isotherm)
    comps = layout.components
    nc = layout.ncomp
    n = layout.axial_cells
    _, radial_laplacian, surface_row = particle_collocation(max(layout.shells, 1))
    iso_params = isotherm.parameters(comps)
    implicit: StericMassActionIsotherm | None = None  # rapid equilibrium held on bound states
    if layout.implicit_equilibrium:
        if not isinstance(isotherm, StericMassActionIsotherm):
            raise ColumnError(f"rapid_equilibrium binding: no implicit-equilibrium form for the {isotherm.kind} "
                              "isotherm")
        isotherm.check_rapid_equilibrium(comps)
        implicit = isotherm
    elif not layout.kinetic:
        probe = [ca.SX.sym("c") for _ in comps]
        isotherm.rapid_equilibrium_derivatives(probe, probe, ca.SX(1.0), {p.name: ca.SX(p.value) for p in iso_params},
                                               comps)  # raises for isotherms without explicit q*(c)
    with_pressure = t is not TransportModel.EQUILIBRIUM_DISPERSIVE
    parameters = tuple(_column_parameters(spec)) + iso_params + tuple(detector_parameters(spec.detector, comps))
    states: list[Variable] = []
    for c in comps:
        states.append(Variable(f"bulk_concentration_{c}", "mol/m3", f"interstitial liquid concentration of {c} per "
                               "axial cell (cell 0 at the inlet)", size=n))
        if layout.shells:
            states.append(Variable(f"pore_concentration_{c}", "mol/m3", f"pore liquid concentration of {c} "
                                   "[cell*shells + shell], shell 0 innermost", size=n * layout.shells))
        if layout.bound_states:
            states.append(Variable(f"bound_concentration_{c}", "mol/m3", f"bound concentration of {c} per m3 solid "
                                   "(layout as the pore; ED: as the bulk)", size=n * max(layout.shells, 1)))
    inputs = tuple(Input(f"inlet_concentration_{c}", "mol/m3", f"inlet concentration of {c}",
                         role=InputRole.MANIPULATED, lower=0.0) for c in comps)
    outputs = tuple(Variable(f"outlet_concentration_{c}", "mol/m3", f"outlet concentration of {c}")
                    for c in comps) + detector_variables(with_pressure)
    faces, volume_factor = shell_geometry(max(layout.shells, 1))

    def equations(s: Symbols) -> Equations:
        p = s.p
        h = p["column_length"] / n
        bulk = [s.x[f"bulk_concentration_{c}"] for c in comps]
        if disc.dg:
            transport = [dg_axial_transport(bulk[k], s.u[f"inlet_concentration_{c}"], p["interstitial_velocity"],
                                            p["axial_dispersion"], p["column_length"], int(disc.polynomial_degree),
                                            int(disc.elements)) for k, c in enumerate(comps)]
        else:
            transport = [axial_transport(bulk[k], s.u[f"inlet_concentration_{c}"], p["interstitial_velocity"],
                                         p["axial_dispersion"], h, disc) for k, c in enumerate(comps)]
        derivs: dict[str, ca.SX] = {}
        if t is TransportModel.EQUILIBRIUM_DISPERSIVE:
            phase_ratio = (1.0 - p["total_porosity"]) / p["total_porosity"]
            if layout.kinetic:
                bound = [s.x[f"bound_concentration_{c}"] for c in comps]
                rates = isotherm.binding_rates(bulk, bound, p, comps)
                derivs.update({f"bound_concentration_{c}": rates[k] for k, c in enumerate(comps)})
                dbulk = [transport[k] - phase_ratio * rates[k] for k in range(nc)]
            elif implicit is not None:
                bound = [s.x[f"bound_concentration_{c}"] for c in comps]
                dbulk, dbound = implicit.rapid_equilibrium_rates(bulk, bound, transport, phase_ratio, p, comps,
                                                                 EQUILIBRIUM_RELAXATION_S)
                derivs.update({f"bound_concentration_{c}": dbound[k] for k, c in enumerate(comps)})
            else:
                dbulk = isotherm.rapid_equilibrium_derivatives(bulk, transport, phase_ratio, p, comps)
            derivs.update({f"bulk_concentration_{c}": dbulk[k] for k, c in enumerate(comps)})
            return Equations(derivs, _outlets(bulk, comps, n, p, with_pressure))

        shells = layout.shells
        by_comp = [_split_shells(s.x[f"pore_concentration_{c}"], n, shells) for c in comps]
        pore = [[by_comp[k][j] for k in range(nc)] for j in range(shells)]  # [shell][comp]
        eps_c, eps_p, radius = p["column_porosity"], p["particle_porosity"], p["particle_radius"]
        surface: list[ca.SX] = []
        if t is TransportModel.GENERAL_RATE and disc.dg:
            # collocation: eps_p D_p (2/r_p) (row . [c_interior; c_s]) = k_f (c - c_s), solved for c_s
            for k, c in enumerate(comps):
                grad_factor = 2.0 * eps_p * p[f"pore_diffusion_{c}"] / radius
                interior_part = sum(float(surface_row[j]) * pore[j][k] for j in range(shells))
                surface.append((p[f"film_diffusion_{c}"] * bulk[k] - grad_factor * interior_part)
                               / (p[f"film_diffusion_{c}"] + grad_factor * float(surface_row[shells])))
            film = [p[f"film_diffusion_{c}"] * (bulk[k] - surface[k]) for k, c in enumerate(comps)]
        elif t is TransportModel.GENERAL_RATE:
            # surface concentration eliminated by flux continuity over the outer half shell:
            # k_f (c - c_s) = eps_p D_p (c_s - c_outer) / (dr / 2)  ->  series resistance 1/k_f + dr / (2 eps_p D_p)
            half_shell = radius / shells / 2.0
            film = [(bulk[k] - pore[shells - 1][k])
                    / (1.0 / p[f"film_diffusion_{c}"] + half_shell / (eps_p * p[f"pore_diffusion_{c}"]))
                    for k, c in enumerate(comps)]
        else:
            film = [p[f"film_diffusion_{c}"] * (bulk[k] - pore[shells - 1][k]) for k, c in enumerate(comps)]
        for k, c in enumerate(comps):
            derivs[f"bulk_concentration_{c}"] = transport[k] - (1.0 - eps_c) / eps_c * 3.0 / radius * film[k]
        dr = radius / shells
        particle_transport: list[list[ca.SX]] = []
        for j in range(shells):
            row = []
            for k, c in enumerate(comps):
                if surface:
                    values = [pore[i][k] for i in range(shells)] + [surface[k]]
                    row.append(p[f"pore_diffusion_{c}"] / radius ** 2
                               * sum(float(radial_laplacian[j, i]) * values[i] for i in range(shells + 1)))
                    continue
                if j == shells - 1:
                    outer = faces[j + 1] ** 2 * film[k] / eps_p / radius
                else:
                    outer = faces[j + 1] ** 2 * p[f"pore_diffusion_{c}"] * (pore[j + 1][k] - pore[j][k]) / dr / radius
                inner = 0.0
                if j > 0:
                    inner = faces[j] ** 2 * p[f"pore_diffusion_{c}"] * (pore[j][k] - pore[j - 1][k]) / dr / radius
                row.append(volume_factor[j] * (outer - inner))
            particle_transport.append(row)
        phase_ratio = (1.0 - eps_p) / eps_p
        if layout.kinetic:
            bound_by_comp = [_split_shells(s.x[f"bound_concentration_{c}"], n, shells) for c in comps]
            rates = [isotherm.binding_rates(pore[j], [bound_by_comp[k][j] for k in range(nc)], p, comps)
                     for j in range(shells)]
            for k, c in enumerate(comps):
                derivs[f"bound_concentration_{c}"] = _join_shells([rates[j][k] for j in range(shells)], n)
            dpore = [[particle_transport[j][k] - phase_ratio * rates[j][k] for k in range(nc)] for j in range(shells)]
        elif implicit is not None:
            bound_by_comp = [_split_shells(s.x[f"bound_concentration_{c}"], n, shells) for c in comps]
            pairs = [implicit.rapid_equilibrium_rates(pore[j], [bound_by_comp[k][j] for k in range(nc)],
                                                      particle_transport[j], phase_ratio, p, comps,
                                                      EQUILIBRIUM_RELAXATION_S) for j in range(shells)]
            for k, c in enumerate(comps):
                derivs[f"bound_concentration_{c}"] = _join_shells([pairs[j][1][k] for j in range(shells)], n)
            dpore = [pairs[j][0] for j in range(shells)]
        else:
            dpore = [isotherm.rapid_equilibrium_derivatives(pore[j], particle_transport[j], phase_ratio, p, comps)
                     for j in range(shells)]
        for k, c in enumerate(comps):
            derivs[f"pore_concentration_{c}"] = _join_shells([dpore[j][k] for j in range(shells)], n)
        return Equations(derivs, _outlets(bulk, comps, n, p, with_pressure))

    return ModelDeclaration(
        name=name,
        description=description or f"{t.value} chromatography column, {isotherm.kind} isotherm "
                                   f"({BindingMode(spec.binding).value}), "
                                   + (f"DG degree {disc.polynomial_degree} x {disc.elements} elements" if disc.dg
                                      else f"{n} axial cells")
                                   + (f", {layout.shells} particle {'collocation points' if disc.dg else 'shells'}"
                                      if t is TransportModel.GENERAL_RATE else ""),
        states=tuple(states),
        inputs=inputs,
        parameters=parameters,
        outputs=outputs,
        equations=equations,
        reference="Guiochon et al., Fundamentals of Preparative and Nonlinear Chromatography, 2006; "
                  "CADET-Core documentation, unit operation and binding models",
    )


def _outlets(bulk: Sequence[ca.SX], comps: Sequence[str], n: int, p: Mapping[str, ca.SX],
             with_pressure: bool) -> dict[str, ca.SX]:
    outlet = [bulk[k][n - 1] for k in range(len(comps))]
    out = {f"outlet_concentration_{c}": outlet[k] for k, c in enumerate(comps)}
    out.update(detector_outputs(outlet, p, comps, with_pressure))
    return out


def column_initial_state(spec: ColumnSpec, isotherm: AnyIsotherm, disc: Discretisation,
                         liquid: Sequence[float], bound: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    """Uniform initial state: ``liquid`` (mol/m3, per component) in bulk and pores; ``bound`` (mol/m3 solid,
    default: in equilibrium with ``liquid``) where bound states exist."""
    layout = column_layout(spec, disc, isotherm)
    nc = layout.ncomp
    if len(liquid) != nc or (bound is not None and len(bound) != nc):
        raise ColumnError(f"initial state: liquid/bound need {nc} values (components {list(layout.components)})")
    q: list[float] | None = None
    if layout.bound_states:
        q = list(bound) if bound is not None else isotherm.equilibrium_bound([float(v) for v in liquid],
                                                                            layout.components)
    out: dict[str, np.ndarray] = {}
    for k, c in enumerate(layout.components):
        for name, size in layout.state_sizes.items():
            if name == f"bulk_concentration_{c}" or name == f"pore_concentration_{c}":
                out[name] = np.full(size, float(liquid[k]))
            elif name == f"bound_concentration_{c}" and q is not None:
                out[name] = np.full(size, float(q[k]))
    return out


def cell_major_order(layout: ColumnLayout, state_slices: Mapping[str, slice]) -> np.ndarray:
    """Permutation of the flat state vector that groups every axial cell's unknowns (bulk, then per shell pore and
    bound of every component) together: ``x[order]`` has a block-banded Jacobian, which keeps the sparse LU of the
    implicit integrator cheap (the declaration keeps one named vector per quantity and component)."""
    comps, n, shells = layout.components, layout.axial_cells, layout.shells
    order: list[int] = []
    for cell in range(n):
        order += [state_slices[f"bulk_concentration_{c}"].start + cell for c in comps]
        if not shells and layout.bound_states:
            order += [state_slices[f"bound_concentration_{c}"].start + cell for c in comps]
        for j in range(shells):
            for c in comps:
                order.append(state_slices[f"pore_concentration_{c}"].start + cell * shells + j)
                if layout.bound_states:
                    order.append(state_slices[f"bound_concentration_{c}"].start + cell * shells + j)
    return np.asarray(order, dtype=int)
