"""Inlet programs for a chromatography column: sections (process steps) of polynomial inlet concentrations.

A section holds ``c_in(t) = concentration + slope tau + quadratic tau^2 + cubic tau^3`` with
``tau = t - start_time_s`` for every component from its start until its end (the next section's start). This is
the piecewise-cubic inlet of CADET-Core ("INLET" unit operation, ``PIECEWISE_CUBIC_POLY``: CONST_COEFF,
LIN_COEFF, QUAD_COEFF, CUBE_COEFF per section) and what a chromatography skid's method runs: load, wash, step or
gradient elution, strip, re-equilibration (Guiochon et al., *Fundamentals of Preparative and Nonlinear
Chromatography*, 2006, ch. 2 and 16 on elution modes). A section may also change the flow: its
``interstitial_velocity_m_per_s`` replaces the column's declared velocity while it runs (a process step's
volumetric flow rate ``Q`` gives ``u = Q / (A eps)`` with the column cross-section ``A = pi d^2 / 4`` and the
interstitial porosity ``eps`` (ED: the total porosity); see :func:`interstitial_velocity`). Concentrations in
mol/m3, times in s, velocities in m/s.

The simulators integrate section by section, so a step never falls inside an integration interval and a
gradient is applied exactly (not sampled).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from process_models.simulator import InputProgram as InputProgram_


class InletProgramError(ValueError):
    """An inlet program is malformed (ordering, sizes, non-finite values)."""


def interstitial_velocity(flow_rate_m3_per_s: float, column_diameter_m: float, porosity: float) -> float:
    """Interstitial velocity ``u = Q / (A eps)`` (m/s) of a volumetric flow ``Q`` (m3/s) through a packed bed of
    diameter ``d`` (m), cross-section ``A = pi d^2 / 4``, with interstitial porosity ``eps`` (ED: total porosity;
    Guiochon et al. 2006, ch. 2.1; CADET-Core's ``CROSS_SECTION_AREA`` convention)."""
    area = math.pi * column_diameter_m ** 2 / 4.0
    return float(flow_rate_m3_per_s) / (area * porosity)


@dataclass(frozen=True)
class InletSection:
    """One section (process step): from ``start_time_s`` (s), per component the concentration (mol/m3) and the
    polynomial coefficients in ``tau = t - start_time_s``: ``slope`` (mol/(m3 s)), ``quadratic`` (mol/(m3 s2)),
    ``cubic`` (mol/(m3 s3)); empty tuples are zero. ``interstitial_velocity_m_per_s``: the velocity while this
    section runs (None: the column's declared velocity)."""

    name: str
    start_time_s: float
    concentration: tuple[float, ...]
    slope: tuple[float, ...] = ()
    quadratic: tuple[float, ...] = ()
    cubic: tuple[float, ...] = ()
    interstitial_velocity_m_per_s: float | None = None

    def slopes(self) -> tuple[float, ...]:
        return self.slope if self.slope else tuple(0.0 for _ in self.concentration)

    def coefficients(self) -> np.ndarray:
        """``(4, n_components)``: constant, linear, quadratic and cubic coefficients."""
        zero = tuple(0.0 for _ in self.concentration)
        return np.array([self.concentration, self.slope or zero, self.quadratic or zero, self.cubic or zero],
                        dtype=float)


@dataclass(frozen=True)
class InletProgram:
    """Ordered sections ending at ``end_time_s`` (s); ``components`` names the concentration entries."""

    components: tuple[str, ...]
    sections: tuple[InletSection, ...]
    end_time_s: float

    def __post_init__(self) -> None:
        n = len(self.components)
        if not self.sections:
            raise InletProgramError("inlet program: at least one section expected")
        previous = -math.inf
        for s in self.sections:
            if len(s.concentration) != n or any(c and len(c) != n for c in (s.slope, s.quadratic, s.cubic)):
                raise InletProgramError(
                    f"inlet section '{s.name}': concentration/slope/quadratic/cubic need {n} values (components "
                    f"{list(self.components)}), got {len(s.concentration)}/{len(s.slope)}/{len(s.quadratic)}/"
                    f"{len(s.cubic)}"
                )
            values = (s.start_time_s, *s.concentration, *s.slopes(), *s.quadratic, *s.cubic)
            if not all(math.isfinite(float(v)) for v in values):
                raise InletProgramError(f"inlet section '{s.name}': non-finite time or polynomial coefficient")
            u = s.interstitial_velocity_m_per_s
            if u is not None and not (math.isfinite(u) and u > 0):
                raise InletProgramError(f"inlet section '{s.name}': interstitial_velocity_m_per_s = {u}, expected a "
                                        "finite value > 0 m/s")
            if s.start_time_s <= previous:
                raise InletProgramError(
                    f"inlet section '{s.name}': start_time_s = {s.start_time_s} s must be after the previous "
                    f"section's start ({previous} s)"
                )
            previous = s.start_time_s
        if not self.end_time_s > previous:
            raise InletProgramError(
                f"inlet program: end_time_s = {self.end_time_s} s must be after the last section start ({previous} s)"
            )

    @property
    def start_time_s(self) -> float:
        return float(self.sections[0].start_time_s)

    def section_bounds(self) -> list[tuple[InletSection, float, float]]:
        """``(section, start_s, end_s)`` for every section."""
        ends = [s.start_time_s for s in self.sections[1:]] + [self.end_time_s]
        return [(s, float(s.start_time_s), float(e)) for s, e in zip(self.sections, ends, strict=True)]

    def concentration_at(self, t_s: float | np.ndarray) -> np.ndarray:
        """Inlet concentrations (mol/m3) at time(s) ``t_s``: shape ``(n_components,)`` or ``(n_components, n)``.

        Right-continuous at section boundaries (the new section's value applies at its start).
        """
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        starts = np.array([s.start_time_s for s in self.sections])
        idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(self.sections) - 1)
        coeff = np.array([s.coefficients() for s in self.sections])  # (n_sec, 4, n_comp)
        tau = (t - starts[idx])[:, None]
        c = coeff[idx]
        values = c[:, 0] + tau * (c[:, 1] + tau * (c[:, 2] + tau * c[:, 3]))
        return values[0] if np.ndim(t_s) == 0 else values.T

    @property
    def changes_flow(self) -> bool:
        """True when a section sets its own interstitial velocity (only the section-wise simulator handles it)."""
        return any(s.interstitial_velocity_m_per_s is not None for s in self.sections)

    def velocity_at(self, t_s: np.ndarray, declared_m_per_s: float) -> np.ndarray:
        """Interstitial velocity (m/s) at times ``t_s``: the section's, else ``declared_m_per_s``."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        starts = np.array([s.start_time_s for s in self.sections])
        idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(self.sections) - 1)
        per_section = np.array([declared_m_per_s if s.interstitial_velocity_m_per_s is None
                                else s.interstitial_velocity_m_per_s for s in self.sections])
        return per_section[idx]

    def component_function(self, component: str) -> Callable[[float], float]:
        """``t -> c_in`` of one component, for the generic simulator's ``inputs`` mapping."""
        if component not in self.components:
            raise InletProgramError(f"inlet program: unknown component '{component}'; expected {list(self.components)}")
        if self.changes_flow:
            raise InletProgramError("inlet program: its steps change the flow rate, which the generic simulator "
                                    "cannot apply (the velocity is a parameter there); use the section-wise "
                                    "simulator (process_models.chromatography.column.simulate_column)")
        i = self.components.index(component)
        return lambda t: float(self.concentration_at(float(t))[i])

    def switching_times(self) -> list[float]:
        """Section starts after the first (where the inlet may jump)."""
        return [float(s.start_time_s) for s in self.sections[1:]]


def load_wash_elute(components: Sequence[str], load_concentration: Mapping[str, float], load_duration_s: float,
                    wash_duration_s: float, elution_end_s: float,
                    salt_component: str | None = None, wash_salt_mol_per_m3: float = 0.0,
                    elution_salt_start_mol_per_m3: float = 0.0, elution_salt_end_mol_per_m3: float | None = None,
                    gradient_duration_s: float | None = None) -> InletProgram:
    """A load–wash–elute method.

    * load: ``load_concentration`` (mol/m3, by component; omitted components are 0) for ``load_duration_s``;
    * wash: only salt at ``wash_salt_mol_per_m3`` for ``wash_duration_s``;
    * elute: a **step** to ``elution_salt_start_mol_per_m3`` (``elution_salt_end_mol_per_m3`` None), or a **linear
      gradient** from start to end salt over ``gradient_duration_s`` (default: the whole elution), then holding
      the end value until ``elution_end_s`` (absolute time, s).

    The salt is ``salt_component`` (for ion exchange; its load concentration defaults to the wash salt).
    """
    comps = tuple(components)
    unknown = sorted(set(load_concentration) - set(comps))
    if unknown:
        raise InletProgramError(f"load_wash_elute: unknown component(s) {unknown} in load_concentration; "
                                f"expected {list(comps)}")
    if salt_component is not None and salt_component not in comps:
        raise InletProgramError(f"load_wash_elute: salt_component '{salt_component}' not in {list(comps)}")
    if load_duration_s <= 0 or wash_duration_s < 0:
        raise InletProgramError("load_wash_elute: load_duration_s must be > 0 and wash_duration_s >= 0")
    elute_start = load_duration_s + wash_duration_s
    if not elution_end_s > elute_start:
        raise InletProgramError(f"load_wash_elute: elution_end_s = {elution_end_s} s must be after load + wash "
                                f"({elute_start} s)")

    def vector(values: Mapping[str, float]) -> tuple[float, ...]:
        return tuple(float(values.get(c, 0.0)) for c in comps)

    load = dict(load_concentration)
    if salt_component is not None and salt_component not in load:
        load[salt_component] = wash_salt_mol_per_m3
    sections = [InletSection("load", 0.0, vector(load))]
    wash = {salt_component: wash_salt_mol_per_m3} if salt_component else {}
    if wash_duration_s > 0:
        sections.append(InletSection("wash", float(load_duration_s), vector(wash)))
    start = {salt_component: elution_salt_start_mol_per_m3} if salt_component else {}
    if elution_salt_end_mol_per_m3 is None or salt_component is None:
        sections.append(InletSection("elute", float(elute_start), vector(start)))
    else:
        duration = float(gradient_duration_s if gradient_duration_s is not None else elution_end_s - elute_start)
        if duration <= 0 or elute_start + duration > elution_end_s:
            raise InletProgramError("load_wash_elute: gradient_duration_s must be > 0 and end by elution_end_s")
        slope = (elution_salt_end_mol_per_m3 - elution_salt_start_mol_per_m3) / duration
        sections.append(InletSection("elute_gradient", float(elute_start), vector(start),
                                     vector({salt_component: slope})))
        if elute_start + duration < elution_end_s:
            sections.append(InletSection("elute_hold", float(elute_start + duration),
                                         vector({salt_component: elution_salt_end_mol_per_m3})))
    return InletProgram(comps, tuple(sections), float(elution_end_s))


def inlet_program_from_inputs(components: Sequence[str], inputs: Mapping[str, float | InputProgram_],
                              start_time_s: float, end_time_s: float) -> InletProgram:
    """Sections from the generic per-input description ``inlet_concentration_<component>`` -> a number or a
    :class:`process_models.simulator.InputProgram` (``"zoh"``: steps, ``"linear"``: ramps between knots).

    Every knot of every component inside ``(start, end)`` starts a section; inside a section each component is
    constant or linear, so the result is exact. A jump in a ``"linear"`` program is written as two knots a short
    time apart (e.g. 1e-6 s), which becomes a short ramp section.
    """
    comps = tuple(components)
    names = [f"inlet_concentration_{c}" for c in comps]
    missing = [n for n in names if n not in inputs]
    unknown = sorted(set(inputs) - set(names))
    if missing or unknown:
        raise InletProgramError(f"inlet inputs: missing {missing}, unknown {unknown}; expected {names}")
    knots = {float(start_time_s)}
    for spec in inputs.values():
        if isinstance(spec, InputProgram_):
            knots.update(t for t in spec.times_s if start_time_s < t < end_time_s)
    starts = sorted(knots)
    ends = starts[1:] + [float(end_time_s)]
    sections = []
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        conc, slope = [], []
        for name in names:
            spec = inputs[name]
            if isinstance(spec, InputProgram_):
                va = spec.at(a)
                if spec.interpolation == "linear":
                    slope.append((spec.at(b) - va) / (b - a))
                else:
                    slope.append(0.0)
                conc.append(va)
            else:
                try:
                    conc.append(float(spec))
                except (TypeError, ValueError) as exc:
                    raise InletProgramError(f"inlet input '{name}': expected a number or an InputProgram, "
                                            f"got {spec!r}") from exc
                slope.append(0.0)
        sections.append(InletSection(f"section_{k}", a, tuple(conc), tuple(slope)))
    return InletProgram(comps, tuple(sections), float(end_time_s))


STEP_KEYS = ("name", "duration_s", "flow_rate_m3_per_s", "flow_rate_ml_per_min", "inlet")
"""The keys of one process step (a case file's ``[[steps]]``, a skid method's ``steps``)."""
ML_PER_MIN = 1e-6 / 60.0
"""m3/s per mL/min."""


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def program_from_steps(components: Sequence[str], steps: Sequence[Mapping[str, Any]], start_time_s: float,
                       column_diameter_m: float | None = None, porosity: float | None = None,
                       where: str = "[[steps]]", diameter_key: str = "'column_diameter_m' in [model]") -> InletProgram:
    """An inlet program from a process-step list (a case file's ``[[steps]]`` or a line config's), one section per
    step, in order from ``start_time_s`` (s)::

        [[steps]]
        name = "load"                  # unique
        duration_s = 10.0              # > 0
        flow_rate_ml_per_min = 1.0     # or flow_rate_m3_per_s; optional (default: the declared velocity);
                                       # needs the column's column_diameter_m
        inlet = { salt = 50.0, protein = 1.0 }   # mol/m3; a number, or [c0, c1, c2, c3] polynomial coefficients
                                                 # in tau = t - step start (mol/m3, /s, /s2, /s3); unnamed: 0

    A step change is simply the next step. ``porosity``: interstitial (ED: total) porosity for ``u = Q / (A eps)``.
    Errors name the step (number and name) and the key; ``diameter_key`` says where the column diameter a flow rate
    needs is stated (a case file's ``[model]``, a skid method's table).
    """
    comps = tuple(components)
    if not isinstance(steps, Sequence) or isinstance(steps, str) or not steps:
        raise InletProgramError(f"{where}: expected a non-empty list of step tables ([[steps]]), got {steps!r}")
    sections: list[InletSection] = []
    t = float(start_time_s)
    seen: set[str] = set()
    for k, step in enumerate(steps, start=1):
        label = f"{where} step {k}"
        if not isinstance(step, Mapping):
            raise InletProgramError(f"{label}: expected a table, got {step!r}")
        name = step.get("name")
        if not isinstance(name, str) or not name:
            raise InletProgramError(f"{label}: 'name' expected a non-empty string, got {name!r}")
        label = f"{where} step {k} ('{name}')"
        if name in seen:
            raise InletProgramError(f"{label}: 'name' repeats an earlier step's name; step names must be unique")
        seen.add(name)
        unknown = sorted(set(step) - set(STEP_KEYS))
        if unknown:
            raise InletProgramError(f"{label}: unknown key(s) {unknown}; expected some of {list(STEP_KEYS)}")
        duration = step.get("duration_s")
        if not _finite_number(duration) or not duration > 0:
            raise InletProgramError(f"{label}: 'duration_s' expected a number of seconds > 0, got {duration!r}")
        velocity = _step_velocity(step, label, column_diameter_m, porosity, diameter_key)
        coeff = np.zeros((4, len(comps)))
        inlet = step.get("inlet", {})
        if not isinstance(inlet, Mapping):
            raise InletProgramError(f"{label}: 'inlet' expected a table component -> mol/m3, got {inlet!r}")
        for comp, value in inlet.items():
            if comp not in comps:
                raise InletProgramError(f"{label}: 'inlet' names unknown component '{comp}'; expected some of "
                                        f"{list(comps)}")
            values = [value] if _finite_number(value) else value
            if (not isinstance(values, list) or not 1 <= len(values) <= 4
                    or not all(_finite_number(v) for v in values)):
                raise InletProgramError(f"{label}: inlet '{comp}' expected a number (mol/m3) or a list of 1-4 "
                                        f"polynomial coefficients [c0, c1, c2, c3], got {value!r}")
            coeff[:len(values), comps.index(comp)] = values
        sections.append(InletSection(name, t, tuple(coeff[0]), tuple(coeff[1]), tuple(coeff[2]), tuple(coeff[3]),
                                     velocity))
        t += float(duration)
    return InletProgram(comps, tuple(sections), t)


def _step_velocity(step: Mapping[str, Any], label: str, column_diameter_m: float | None,
                   porosity: float | None, diameter_key: str) -> float | None:
    given = [k for k in ("flow_rate_m3_per_s", "flow_rate_ml_per_min") if k in step]
    if not given:
        return None
    if len(given) > 1:
        raise InletProgramError(f"{label}: give one of 'flow_rate_m3_per_s' and 'flow_rate_ml_per_min', not both")
    flow = step[given[0]]
    if not _finite_number(flow) or not flow > 0:
        raise InletProgramError(f"{label}: '{given[0]}' expected a number > 0, got {flow!r}")
    if column_diameter_m is None or porosity is None:
        raise InletProgramError(f"{label}: '{given[0]}' needs the column's {diameter_key} (the interstitial "
                                "velocity is Q / (A eps))")
    q = float(flow) * (ML_PER_MIN if given[0] == "flow_rate_ml_per_min" else 1.0)
    return interstitial_velocity(q, column_diameter_m, porosity)
