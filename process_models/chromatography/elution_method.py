"""The skid's bind-and-elute method — what its PLC runs and what the pooling decision's model assumes, one
programme for both — and the three ways a run departs from it that an online estimate must absorb (feed titre,
gradient slope, isotherm).

A method is a list of **process steps** in the case files' vocabulary (``steps``: ``name``, ``duration_s``,
``flow_rate_ml_per_min`` or ``flow_rate_m3_per_s`` with the method's ``column_diameter_m``, ``inlet`` by component,
a number or cubic coefficients; parsed by the one step parser,
:func:`process_models.chromatography.inlet.program_from_steps`), e.g. load / wash / elute / strip /
re-equilibration, each at its own flow. A step without a flow runs at the column's declared interstitial velocity.
After the last step the inlet holds the programme's end values at the last step's flow until the run is over.

The older table of fixed keys (a load of ``feed_mol_per_m3`` for ``load_duration_s``, the wash salt for
``wash_duration_s``, then a linear gradient from ``gradient_start_salt_mol_per_m3`` to
``gradient_end_salt_mol_per_m3`` over ``gradient_duration_s`` (s)) stays valid: it is the three steps ``load``,
``wash``, ``elute_gradient`` (:meth:`ElutionMethod.process_steps`). Its defaults are CADET-Core's load-wash-elute
benchmark (``examples/cases/chromatography_sma_load_wash_elute.toml`` for the sources): 10 s load of 1 mM of each
protein at 50 mM salt, wash to 90 s, gradient 100 -> 382 mM over 1410 s.

A run's departure from the method (:class:`MethodDeviation`): ``feed_factors`` scale each protein's feed titre
(a titre the upstream delivered, not the one the batch record states), ``gradient_slope_factor`` scales the
gradient's slope (a buffer-B proportioning error: the end salt becomes ``start + factor * (end - start)``), and
``adsorption_factors`` scale each protein's SMA adsorption rate ``k_a`` (with the fast kinetics of the case this is
the equilibrium constant ``k_a / k_d``; resin lot-to-lot variation shifts retention this way). On a method of
steps, a feed factor scales the protein's inlet in every step and the gradient slope factor scales the salt's
linear, quadratic and cubic coefficients in every step (a step of constant salt keeps its level).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from process_models.chromatography.inlet import (
    STEP_KEYS,
    InletProgram,
    InletProgramError,
    InletSection,
    program_from_steps,
)


@dataclass(frozen=True)
class MethodDeviation:
    """How a run departs from the method: factors (dimensionless, > 0) by protein name, and the gradient slope
    factor."""

    feed_factors: Mapping[str, float] = field(default_factory=dict)
    adsorption_factors: Mapping[str, float] = field(default_factory=dict)
    gradient_slope_factor: float = 1.0

    def __post_init__(self) -> None:
        for table, values in (("feed_factors", self.feed_factors), ("adsorption_factors", self.adsorption_factors)):
            for name, value in values.items():
                if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                    raise InletProgramError(f"method deviation: {table}['{name}'] = {value!r}, expected a number > 0")
        if not (math.isfinite(self.gradient_slope_factor) and self.gradient_slope_factor > 0):
            raise InletProgramError(f"method deviation: gradient_slope_factor = {self.gradient_slope_factor}, "
                                    f"expected > 0")


@dataclass(frozen=True)
class ElutionMethod:
    """The skid's method (module docstring): ``steps`` (process step tables, the case files' vocabulary) with
    ``column_diameter_m`` (m; needed when a step states a flow), or — ``steps`` empty — the load-wash-gradient keys;
    ``salt`` names the salt component; salt concentrations mol/m3 (= mM), durations s."""

    feed_mol_per_m3: Mapping[str, float] = field(default_factory=lambda: {"lysozyme": 1.0, "cytochrome": 1.0,
                                                                           "ribonuclease": 1.0})
    salt: str = "salt"
    load_duration_s: float = 10.0
    wash_duration_s: float = 80.0
    wash_salt_mol_per_m3: float = 50.0
    gradient_start_salt_mol_per_m3: float = 100.0
    gradient_end_salt_mol_per_m3: float = 382.0
    gradient_duration_s: float = 1410.0
    steps: tuple[Mapping[str, Any], ...] = ()
    column_diameter_m: float | None = None

    def process_steps(self) -> tuple[Mapping[str, Any], ...]:
        """The method as step tables: ``steps``, or the load-wash-gradient keys as ``load``, ``wash`` (when
        ``wash_duration_s`` > 0) and ``elute_gradient``."""
        if self.steps:
            return self.steps
        load = {c: float(v) for c, v in self.feed_mol_per_m3.items()}
        load.setdefault(self.salt, self.wash_salt_mol_per_m3)
        out: list[Mapping[str, Any]] = [{"name": "load", "duration_s": self.load_duration_s, "inlet": load}]
        if self.wash_duration_s > 0:
            out.append({"name": "wash", "duration_s": self.wash_duration_s,
                        "inlet": {self.salt: self.wash_salt_mol_per_m3}})
        slope = (self.gradient_end_salt_mol_per_m3 - self.gradient_start_salt_mol_per_m3) / self.gradient_duration_s
        out.append({"name": "elute_gradient", "duration_s": self.gradient_duration_s,
                    "inlet": {self.salt: [self.gradient_start_salt_mol_per_m3, slope]}})
        return tuple(out)

    def step_names(self) -> tuple[str, ...]:
        """The steps' names in order (step 1 first)."""
        return tuple(str(s["name"]) for s in self.process_steps())

    def step_bounds_s(self) -> tuple[tuple[float, float], ...]:
        """``(start, end)`` run time (s) of every step."""
        out, t = [], 0.0
        for step in self.process_steps():
            out.append((t, t + float(step["duration_s"])))
            t += float(step["duration_s"])
        return tuple(out)

    @property
    def duration_s(self) -> float:
        """The run time (s) the steps cover: the end of the last step."""
        return self.step_bounds_s()[-1][1]

    @property
    def elution_start_s(self) -> float:
        """Start of elution, s: the first step named ``elut…`` (``elute``, ``elution``, ``elute_gradient``); without
        one, the end of the last step that feeds a protein (0 when none does)."""
        bounds = self.step_bounds_s()
        steps = self.process_steps()
        for step, (start, _) in zip(steps, bounds, strict=True):
            if str(step["name"]).lower().startswith("elut"):
                return start
        feeding = [end for step, (_, end) in zip(steps, bounds, strict=True)
                   if any(c != self.salt and _nonzero(v) for c, v in dict(step.get("inlet", {})).items())]
        return feeding[-1] if feeding else 0.0

    def program(self, components: Sequence[str], end_s: float, deviation: MethodDeviation | None = None,
                porosity: float | None = None) -> InletProgram:
        """The inlet program from run time 0 to ``end_s`` (s) for the column's ``components`` (salt included), with
        a run's ``deviation`` applied; ``porosity``: the column's interstitial (ED: total) porosity, which a step's
        flow rate needs (``u = Q / (A eps)``). Past the last step the end values are held (at the last step's
        flow). Raises InletProgramError naming a step, or a component the column does not have."""
        dev = deviation if deviation is not None else MethodDeviation()
        named = set(dev.feed_factors) | {self.salt} | (set() if self.steps else set(self.feed_mol_per_m3))
        unknown = sorted(named - set(components))
        if unknown:
            raise InletProgramError(f"elution method: component(s) {unknown} not in the column's {list(components)}")
        steps = self.process_steps()
        flows = ("flow_rate_ml_per_min", "flow_rate_m3_per_s")
        if porosity is None and any(k in step for step in steps for k in flows):
            raise InletProgramError("elution method: a step's flow rate needs the column's interstitial porosity "
                                    "(u = Q / (A eps)); pass the column's porosity")
        nominal = program_from_steps(components, steps, 0.0, self.column_diameter_m, porosity, where="method steps",
                                     diameter_key="'column_diameter_m' in the method")
        return _until(_deviated(nominal, self.salt, dev), float(end_s))


def _nonzero(value: object) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, int | float) and v != 0 for v in values)


def _deviated(program: InletProgram, salt: str, dev: MethodDeviation) -> InletProgram:
    """``program`` with the feed factors on the proteins' coefficients and the slope factor on the salt's
    non-constant coefficients."""
    if not dev.feed_factors and dev.gradient_slope_factor == 1.0:
        return program
    comps = program.components
    scale = [float(dev.feed_factors.get(c, 1.0)) for c in comps]
    slope_scale = [dev.gradient_slope_factor if c == salt else f for c, f in zip(comps, scale, strict=True)]

    def times(values: tuple[float, ...], factors: list[float]) -> tuple[float, ...]:
        return tuple(v * f for v, f in zip(values, factors, strict=True)) if values else values

    sections = tuple(replace(s, concentration=times(s.concentration, scale), slope=times(s.slope, slope_scale),
                             quadratic=times(s.quadratic, slope_scale), cubic=times(s.cubic, slope_scale))
                     for s in program.sections)
    return InletProgram(comps, sections, program.end_time_s)


def _until(program: InletProgram, end_s: float) -> InletProgram:
    """``program`` ending at ``end_s`` (s): cut there, or held at its end values (and last flow) after its end."""
    end = program.end_time_s
    if end_s <= end:
        sections = tuple(s for s in program.sections if s.start_time_s < end_s)
        return InletProgram(program.components, sections, end_s)
    last = program.sections[-1]
    held = InletSection("hold_after_method", end, tuple(float(v) for v in program.concentration_at(end)),
                        interstitial_velocity_m_per_s=last.interstitial_velocity_m_per_s)
    return InletProgram(program.components, (*program.sections, held), end_s)


def adsorption_overrides(nominal: Mapping[str, float], factors: Mapping[str, float]) -> dict[str, float]:
    """Column parameter overrides ``adsorption_rate_<protein>`` = nominal value x factor."""
    out = {}
    for protein, factor in factors.items():
        key = f"adsorption_rate_{protein}"
        if key not in nominal:
            raise InletProgramError(f"method deviation: the column has no parameter '{key}' (an SMA/Langmuir/linear "
                                    f"isotherm of '{protein}')")
        out[key] = float(nominal[key]) * float(factor)
    return out


_METHOD_NUMBERS = ("load_duration_s", "wash_duration_s", "wash_salt_mol_per_m3", "gradient_start_salt_mol_per_m3",
                   "gradient_end_salt_mol_per_m3", "gradient_duration_s")


def _factor_table(table: object, where: str) -> dict[str, float]:
    if not isinstance(table, Mapping):
        raise InletProgramError(f"{where}: expected a table of protein name -> number, got {table!r}")
    out = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InletProgramError(f"{where}.{name}: expected a finite number, got {value!r}")
        out[str(name)] = float(value)
    return out


def elution_method_from_table(table: Mapping[str, object], where: str) -> ElutionMethod:
    """An :class:`ElutionMethod` from a config table: ``steps`` (a list of step tables, the case files'
    ``[[steps]]`` keys), ``column_diameter_m`` (m, > 0; needed when a step states a flow) and ``salt`` (the salt's
    component name); or, instead of ``steps``, the load-wash-gradient keys (``feed_mol_per_m3`` a table by protein,
    durations in s and salts in mol/m3 as the field names say; omitted keys keep the defaults). The steps are
    checked here (keys, durations, flows, names) with the one step parser; their components when the column is
    known (:meth:`ElutionMethod.program`). Raises InletProgramError naming ``where`` and the key."""
    known = {"feed_mol_per_m3", "salt", "steps", "column_diameter_m", *_METHOD_NUMBERS}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InletProgramError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    values: dict[str, object] = {}
    if "salt" in table:
        if not isinstance(table["salt"], str) or not table["salt"]:
            raise InletProgramError(f"{where}.salt: expected the salt's component name, got {table['salt']!r}")
        values["salt"] = table["salt"]
    if "steps" in table:
        return _method_of_steps(table, where, str(values.get("salt", "salt")))
    if "column_diameter_m" in table:
        raise InletProgramError(f"{where}.column_diameter_m: applies to a method of 'steps' (their flow rates)")
    if "feed_mol_per_m3" in table:
        values["feed_mol_per_m3"] = _factor_table(table["feed_mol_per_m3"], f"{where}.feed_mol_per_m3")
    for key in _METHOD_NUMBERS:
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InletProgramError(f"{where}.{key}: expected a finite number >= 0, got {value!r}")
            values[key] = float(value)
    method = ElutionMethod(**values)  # type: ignore[arg-type]
    if not (method.load_duration_s > 0 and method.gradient_duration_s > 0):
        raise InletProgramError(f"{where}: load_duration_s and gradient_duration_s must be > 0")
    return method


def _method_of_steps(table: Mapping[str, object], where: str, salt: str) -> ElutionMethod:
    legacy = sorted(set(table) & {"feed_mol_per_m3", *_METHOD_NUMBERS})
    if legacy:
        raise InletProgramError(f"{where}: {legacy} with 'steps'; expected the method either as steps or as the "
                                f"load/wash/gradient keys, not both")
    diameter = table.get("column_diameter_m")
    if diameter is not None and (isinstance(diameter, bool) or not isinstance(diameter, int | float)
                                 or not math.isfinite(diameter) or diameter <= 0):
        raise InletProgramError(f"{where}.column_diameter_m: expected a number of metres > 0, got {diameter!r}")
    steps = table["steps"]
    if not isinstance(steps, list) or not steps:
        raise InletProgramError(f"{where}.steps: expected a non-empty list of step tables ({list(STEP_KEYS)}), "
                                f"got {steps!r}")
    named = [salt, *(c for s in steps if isinstance(s, Mapping) and isinstance(s.get("inlet"), Mapping)
                     for c in s["inlet"])]
    # the keys, durations, flows and names, before any column is built (a placeholder porosity: only the flows'
    # signs and the diameter's presence matter here)
    program_from_steps(tuple(dict.fromkeys(named)), steps, 0.0, None if diameter is None else float(diameter), 1.0,
                       where=f"{where}.steps", diameter_key="'column_diameter_m' in the method")
    return ElutionMethod(salt=salt, steps=tuple(dict(s) for s in steps),
                         column_diameter_m=None if diameter is None else float(diameter))


def method_deviation_from_table(table: Mapping[str, object], where: str) -> MethodDeviation:
    """A :class:`MethodDeviation` from a config table (``feed_factors`` and ``adsorption_factors`` tables by
    protein, ``gradient_slope_factor``). Raises InletProgramError naming ``where`` and the key."""
    known = {"feed_factors", "adsorption_factors", "gradient_slope_factor"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InletProgramError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    slope = table.get("gradient_slope_factor", 1.0)
    if isinstance(slope, bool) or not isinstance(slope, int | float):
        raise InletProgramError(f"{where}.gradient_slope_factor: expected a number > 0, got {slope!r}")
    return MethodDeviation(feed_factors=_factor_table(table.get("feed_factors", {}), f"{where}.feed_factors"),
                           adsorption_factors=_factor_table(table.get("adsorption_factors", {}),
                                                            f"{where}.adsorption_factors"),
                           gradient_slope_factor=float(slope))
