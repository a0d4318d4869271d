"""Inlet programs for a chromatography column: sections of constant or linearly changing concentrations.

A section holds ``c_in(t) = concentration + slope * (t - start_time_s)`` for every component from its start until
its end (the next section's start). This is the piecewise-polynomial inlet used by CADET-Core ("INLET" unit
operation with ``PIECEWISE_CUBIC_POLY``, restricted here to degree <= 1) and what a chromatography skid's
method runs: load, wash, step or linear-gradient elution (Guiochon et al., *Fundamentals of Preparative and
Nonlinear Chromatography*, 2006, ch. 2 and 16 on elution modes). Concentrations in mol/m3, times in s.

The simulators integrate section by section, so a step never falls inside an integration interval and a
linear gradient is applied exactly (not sampled).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from process_models.simulator import InputProgram as InputProgram_


class InletProgramError(ValueError):
    """An inlet program is malformed (ordering, sizes, non-finite values)."""


@dataclass(frozen=True)
class InletSection:
    """One section: from ``start_time_s`` (s), concentration per component (mol/m3) and slope (mol/(m3 s))."""

    name: str
    start_time_s: float
    concentration: tuple[float, ...]
    slope: tuple[float, ...] = ()

    def slopes(self) -> tuple[float, ...]:
        return self.slope if self.slope else tuple(0.0 for _ in self.concentration)


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
            if len(s.concentration) != n or (s.slope and len(s.slope) != n):
                raise InletProgramError(
                    f"inlet section '{s.name}': concentration/slope need {n} values (components "
                    f"{list(self.components)}), got {len(s.concentration)}/{len(s.slope)}"
                )
            values = (s.start_time_s, *s.concentration, *s.slopes())
            if not all(math.isfinite(float(v)) for v in values):
                raise InletProgramError(f"inlet section '{s.name}': non-finite time, concentration or slope")
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
        conc = np.array([s.concentration for s in self.sections])  # (n_sec, n_comp)
        slope = np.array([s.slopes() for s in self.sections])
        values = conc[idx] + slope[idx] * (t - starts[idx])[:, None]
        return values[0] if np.ndim(t_s) == 0 else values.T

    def component_function(self, component: str) -> Callable[[float], float]:
        """``t -> c_in`` of one component, for the generic simulator's ``inputs`` mapping."""
        if component not in self.components:
            raise InletProgramError(f"inlet program: unknown component '{component}'; expected {list(self.components)}")
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
