"""The pooling plan of a ``chromatography_column`` unit: its ``[units.<unit>.control]`` table read and checked once,
and what the twin's pooling loop runs from it (:class:`PoolingPlan`; one :class:`~controllers.chromatography.
pooling_run.PoolingRun` per chromatography run).

The table (every key checked; problems as ``(key, got, expected)``)::

    [units.capture_column.control]
    strategy = "model_based"          # or "threshold": who decides the cuts at start (engineers may switch it)
    target = "cytochrome"             # the product; impurities: the proteins counted against its purity
    impurities = ["ribonuclease", "lysozyme"]
    purity_min = 0.95                 # pool purity spec (fraction), met with probability `confidence`
    confidence = 0.95
    window_start_s = 450.0            # fractionation window, s of run time
    window_end_s = 1000.0
    uv_start_level_mau = 80.0         # the fixed UV thresholds (strategy "threshold", and the model's fallback)
    uv_stop_level_mau = 35.0
    sample_interval_s = 1.0           # the estimator's grid (s); run_time samples are snapped to it
    replan_interval_s = 30.0          # s of run time between two estimates and plans
    purity_margin = 0.003             # the plan aims at purity_min + margin (PoolingLoopOptions)
    update_interval_s = 2.0           # optional: linearised estimate + re-plan this often between full estimates
                                      # (PoolingLoopOptions.update_interval_s; absent: none)
    [units.capture_column.control.method]      # the skid's method: process steps (elution_method_from_table),
    column_diameter_m = 0.0095                 # the case files' step vocabulary; what the skid's PLC runs and
    [[units.capture_column.control.method.steps]]   # the loop's model assumes; the steps cover the window
    name = "load"
    duration_s = 10.0
    inlet = { salt = 50.0, cytochrome = 1.0 }
    [units.capture_column.control.model]       # the fast model's discretisation: polynomial_degree, elements,
                                               # particle_cells (DG; default 3, 2, 3)
    [units.capture_column.control.estimation]  # EstimationSpec fields (what is estimated, priors, sensor noise)

The unit must have the tags ``run_time``, ``outlet_uv_absorbance``, ``outlet_conductivity``, ``cut_start_time`` and
``cut_stop_time`` (:mod:`hil.plants.fractionation` says what the skid does with them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from controllers.chromatography.elution_estimator import EstimationError, EstimationSpec
from controllers.chromatography.pooling_decision import PoolingError, PoolingSpec
from controllers.chromatography.pooling_loop import PoolingLoopOptions
from controllers.plan_registry import ControlOptionIssue, ControlPlanSpec
from process_models.chromatography.elution_method import ElutionMethod, elution_method_from_table
from process_models.chromatography.inlet import InletProgramError

STRATEGIES = ("threshold", "model_based")
RUN_TIME, UV, CONDUCTIVITY = "run_time", "outlet_uv_absorbance", "outlet_conductivity"
CUT_START, CUT_STOP = "cut_start_time", "cut_stop_time"
METHOD_STEP = "method_step"
"""The skid's optional tag of the method step it runs (1 = the method's first step)."""
REQUIRED_TAGS = (RUN_TIME, UV, CONDUCTIVITY, CUT_START, CUT_STOP)
_NUMBERS = {"purity_min": 0.95, "confidence": 0.95, "window_start_s": None, "window_end_s": None,
            "uv_start_level_mau": None, "uv_stop_level_mau": None, "sample_interval_s": 1.0,
            "replan_interval_s": 30.0, "purity_margin": 0.003, "min_pool_duration_s": 0.0}
_KEYS = {"strategy", "target", "impurities", "method", "model", "estimation", "time_scale", "update_interval_s",
         *_NUMBERS}
"""(``time_scale``, which the bench adds to every control table, is not used: the loop follows the PLC's run
time, not a clock.)"""
_MODEL_KEYS = {"polynomial_degree": 3, "elements": 2, "particle_cells": 3}
_ESTIMATION_FIELDS = {f.name: f for f in dataclasses.fields(EstimationSpec)}


@dataclass(frozen=True)
class PoolingPlan:
    """Everything a unit's pooling loop runs (module docstring): the spec, the skid's method, the fast model's
    options, the estimation spec, the loop options (fallback levels, replans), the estimator's grid step (s) and
    the strategy at start."""

    strategy: str
    spec: PoolingSpec
    method: ElutionMethod
    model_options: Mapping[str, Any]
    estimation: EstimationSpec
    loop: PoolingLoopOptions
    sample_interval_s: float

    def times_s(self) -> np.ndarray:
        """The estimator's grid: 0 to the window's end every ``sample_interval_s`` (s)."""
        dt = self.sample_interval_s
        return np.arange(0.0, self.spec.window_end_s + 0.5 * dt, dt)


class _Issues:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.found: list[ControlOptionIssue] = []

    def add(self, key: str, got: object, expected: str) -> None:
        self.found.append((f"{self.prefix}.{key}" if key else self.prefix, got, expected))

    def number(self, table: Mapping[str, Any], key: str, default: float | None) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.add(key, value if key in table else "nothing", "a finite number" + ("" if key in table
                                                                                     else " (required)"))
            return math.nan
        return float(value)


def parse_pooling_options(control: Mapping[str, Any], prefix: str, tags: set[str]
                          ) -> tuple[PoolingPlan | None, list[ControlOptionIssue]]:
    """The :class:`PoolingPlan` of a control table and every problem found (module docstring for the keys)."""
    c = _Issues(prefix)
    for key in sorted(set(control) - _KEYS):
        c.add(key, control[key], f"one of {', '.join(sorted(_KEYS))}")
    strategy = control.get("strategy", "model_based")
    if strategy not in STRATEGIES:
        c.add("strategy", strategy, " | ".join(STRATEGIES))
    for tag in REQUIRED_TAGS:
        if tag not in tags:
            c.add("strategy", strategy, f"a unit with the tag '{tag}' (the pooling loop's {', '.join(REQUIRED_TAGS)})")
    numbers = {k: c.number(control, k, d) for k, d in _NUMBERS.items()}
    update_interval = c.number(control, "update_interval_s", None) if "update_interval_s" in control else None
    target, impurities = control.get("target"), control.get("impurities")
    if not isinstance(target, str) or not target:
        c.add("target", target if "target" in control else "nothing", "the product's component name (required)")
    if not (isinstance(impurities, list) and impurities and all(isinstance(i, str) for i in impurities)):
        c.add("impurities", impurities if "impurities" in control else "nothing",
              "a non-empty list of component names (required)")
    for key in ("sample_interval_s", "replan_interval_s"):
        if math.isfinite(numbers[key]) and numbers[key] <= 0:
            c.add(key, numbers[key], "a number > 0 s")
    method = _sub(c, control, "method", lambda t: elution_method_from_table(t, f"{prefix}.method"),
                  (InletProgramError,))
    end = numbers["window_end_s"]
    if method is not None and method.steps and math.isfinite(end) and method.duration_s < end:
        c.add("method.steps", f"steps ending at {method.duration_s:g} s of run time",
              f"steps that cover the run: to the fractionation window's end (window_end_s = {end:g} s)")
    model = _model_options(c, control.get("model", {}))
    estimation = _sub(c, control, "estimation", _estimation, (EstimationError, TypeError, ValueError))
    if c.found:
        return None, c.found
    assert isinstance(target, str) and isinstance(impurities, list)
    try:
        spec = PoolingSpec(target, tuple(impurities), numbers["purity_min"], numbers["window_start_s"],
                           numbers["window_end_s"], numbers["confidence"], numbers["min_pool_duration_s"])
        loop = PoolingLoopOptions(numbers["uv_start_level_mau"], numbers["uv_stop_level_mau"],
                                  numbers["replan_interval_s"], purity_margin=numbers["purity_margin"],
                                  update_interval_s=update_interval)
    except PoolingError as exc:
        c.add("", dict(control), f"a consistent pooling spec ({exc})")
        return None, c.found
    return PoolingPlan(str(strategy), spec, method or ElutionMethod(), model, estimation or EstimationSpec(), loop,
                       numbers["sample_interval_s"]), []


def _sub(c: _Issues, control: Mapping[str, Any], key: str, build: Any, errors: tuple[type[Exception], ...]) -> Any:
    if key not in control:
        return None
    table = control[key]
    if not isinstance(table, Mapping):
        c.add(key, table, "a table")
        return None
    try:
        return build(table)
    except errors as exc:
        c.add(key, dict(table), f"a valid table ({exc})")
        return None


def _model_options(c: _Issues, table: object) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        c.add("model", table, "a table of the fast model's DG discretisation")
        return {}
    out: dict[str, Any] = {"method": "dg", **_MODEL_KEYS}
    for key, value in table.items():
        if key not in _MODEL_KEYS:
            c.add(f"model.{key}", value, f"one of {', '.join(_MODEL_KEYS)}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            c.add(f"model.{key}", value, "an integer >= 1")
        else:
            out[key] = value
    return out


def _estimation(table: Mapping[str, Any]) -> EstimationSpec:
    unknown = sorted(set(table) - set(_ESTIMATION_FIELDS))
    if unknown:
        raise EstimationError(f"unknown key(s) {unknown}; expected some of {sorted(_ESTIMATION_FIELDS)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return EstimationSpec(**values)


def build_pooling_plan(model: Mapping[str, Any], control: Mapping[str, Any], prefix: str, tags: set[str]
                       ) -> PoolingPlan:
    """The unit's plan; ValueError listing the problems. The fast model's column is the unit's ``[model] case``
    at ``model_options``' discretisation (built by the run, :func:`~controllers.chromatography.pooling_run.
    fast_column`)."""
    plan, issues = parse_pooling_options(control, prefix, tags)
    if plan is None:
        raise ValueError("; ".join(f"{k}: got {g!r}; expected {e}" for k, g, e in issues))
    return on_unit_model(plan, model)


def on_unit_model(plan: PoolingPlan, model: Mapping[str, Any]) -> PoolingPlan:
    """``plan`` with its fast model on the unit's column: the ``[model] case`` at the plan's discretisation."""
    case = model.get("case")
    options = {**plan.model_options, **({"case": case} if case is not None else {})}
    return dataclasses.replace(plan, model_options=options)


def check_pooling_plan(model: Mapping[str, Any], control: Mapping[str, Any], prefix: str, tags: set[str]) -> None:
    """What :func:`build_pooling_plan` would refuse, and the fast model and the method on the unit's column."""
    from controllers.chromatography.pooling_run import fast_column

    plan = build_pooling_plan(model, control, prefix, tags)
    column = fast_column(plan)
    plan.method.program(column.components, plan.spec.window_end_s, porosity=column.spec.flow_porosity)
    missing = sorted(set(plan.spec.components) - set(column.components))
    if missing:
        raise ValueError(f"{prefix}: target/impurities {missing} are not components of the column "
                         f"{list(column.components)}")


POOLING_CONTROL = ControlPlanSpec("chromatography_column", parse_pooling_options, build_pooling_plan,
                                  check_pooling_plan)
"""The chromatography column's control plan (the unit-kind table names it)."""
