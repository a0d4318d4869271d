"""HIL scenario files: one batch of one unit under one control strategy, with a "true" plant and faults.

Format (TOML; every key below is checked, all errors are reported at once as ``file: key: got …; expected …``,
through the checks campaign files share, :mod:`hil.spec_file`)::

    [scenario]
    name = "nominal_mpc"                 # required
    description = "..."                  # optional
    line = "../pilot_line.toml"          # required: the line config, relative to this file
    unit = "crystallizer"                # required: a unit of that line
    strategy = "mpc"                     # natural_cooling | linear_cooling | mpc | oracle (stepped loop only)
    batch_duration_s = 7200              # plant seconds from StartBatch to StopBatch
    target_d43_um = 400                  # written to control.target_d43
    speed = 200                          # plant seconds per wall second (CLI --speed overrides); default 200
    seed = 1                             # sensor-noise seed of the plant; default 0
    plant_step_s = 1.0                   # virtual PLC step in plant seconds; default 1.0
    sample_interval_s = 10               # timeline sampling period in plant seconds; default 10
    max_supersaturation = 0.05           # constraint band on the TRUE relative supersaturation; default 0.05
    parameter_set = "nominal"            # optional: the set applied before StartBatch (hil.scenario_fit)

    [plant]                              # the true plant: merged over the unit's [model] table
    plant_model = "physics"              # see hil.plants.crystallizer_physics for every name
    growth_rate_factor = 1.2
    nucleation_rate_factor = 1.0
    measurement_delay_s = 20

    [recipe]                             # the baseline recipes' jacket temperatures, degC
    initial_temperature_c = 40           # natural cooling: setpoint steps to final at start;
    final_temperature_c = 25             # linear cooling: ramp from initial to final over the batch

    [control]                            # optional: passed as-is to the twin's [units.<unit>.control] (CLI)

    [[faults]]                           # optional, any number; plant seconds after StartBatch
    kind = "measurement_dropout"         # measurement_dropout (needs tag) | plc_disconnect
    tag = "solute_concentration"
    start_s = 3000
    end_s = 3900

    [fit]                                # optional: the batch runs on a set fitted from another scenario's batch
    batch_of = "commissioning_1_nominal_mpc.toml"                   # (linetwin hil commission; hil.scenario_fit)
    estimate = ["growth_rate_constant"]

The line file's unit is read by :mod:`hil.line_unit` (hil does not import the twin's config loader) for its kind,
``[model]`` table and tags; the plant parameters are checked by building the plant once.
Strategy → the twin's ``control.mode``: natural_cooling and linear_cooling → "auto" (follow the recipe),
mpc and oracle → "mpc" (:attr:`Scenario.mode`). ``oracle`` (the NMPC given the plant's true parameters and state,
:mod:`hil.oracle`) runs only in the stepped loop (:mod:`hil.stepped_batch`): the twin never knows the truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hil.faults import Fault, FaultKind
from hil.line_unit import LineUnit
from hil.plant import make_plant
from hil.plants.parameters import PlantParameterError
from hil.scenario_fit import ScenarioFit, read_fit, read_parameter_set
from hil.spec_file import SpecChecks, SpecFileError, read_spec_file
from plc_adapters.config_issues import is_finite_number
from plc_adapters.tag import Direction

STRATEGIES = ("natural_cooling", "linear_cooling", "mpc", "oracle")
_MODE_BY_STRATEGY = {"natural_cooling": "auto", "linear_cooling": "auto", "mpc": "mpc", "oracle": "mpc"}
_SECTIONS = ("scenario", "plant", "recipe", "control", "faults", "fit")
_SCENARIO_KEYS = ("name", "description", "line", "unit", "strategy", "batch_duration_s", "target_d43_um", "speed",
                  "seed", "plant_step_s", "sample_interval_s", "max_supersaturation", "parameter_set")
_RECIPE_KEYS = ("initial_temperature_c", "final_temperature_c")
_FAULT_KEYS = ("kind", "tag", "start_s", "end_s")


class ScenarioError(SpecFileError):
    """A scenario file is invalid; ``errors`` lists every problem (``FILE: KEY: got …; expected …``)."""

    what = "scenario"


@dataclass(frozen=True, slots=True)
class Recipe:
    """Baseline jacket temperature profile end points, degC."""

    initial_temperature_c: float
    final_temperature_c: float


@dataclass(frozen=True)
class Scenario:
    """A validated scenario (see the module docstring for the meaning of each field)."""

    path: Path
    name: str
    description: str
    line_path: Path
    unit: str
    strategy: str
    batch_duration_s: float
    target_d43_um: float
    speed: float
    seed: int
    plant_step_s: float
    sample_interval_s: float
    max_supersaturation: float
    plant: Mapping[str, Any]
    recipe: Recipe
    control: Mapping[str, Any] = field(default_factory=dict)
    faults: tuple[Fault, ...] = ()
    parameter_set: str | None = None
    """The set applied before StartBatch: "nominal", "latest" or an id (prefix); None: the twin's deployed set."""
    fit: ScenarioFit | None = None
    """How a commissioning fits this batch's set from another scenario's batch (``[fit]``); None: no fit."""

    @property
    def mode(self) -> str:
        """The twin's ``control.mode`` for this strategy ("auto" for the recipes, "mpc")."""
        return _MODE_BY_STRATEGY[self.strategy]

    def control_options(self) -> dict[str, Any]:
        """The unit's ``[units.<unit>.control]`` table for this scenario (recipe, target, batch duration), used by
        the twin on the socket bench and by the stepped loop alike. An MPC (or oracle) scenario falls back to (and
        its AUTO mode follows) linear cooling; ``[control]`` overrides anything."""
        return {
            "strategy": "linear_cooling" if self.strategy in ("mpc", "oracle") else self.strategy,
            "target_d43_um": self.target_d43_um,
            "batch_duration_s": self.batch_duration_s,
            "initial_temperature_c": self.recipe.initial_temperature_c,
            "final_temperature_c": self.recipe.final_temperature_c,
            **dict(self.control),
        }

    def with_strategy(self, strategy: str) -> Scenario:
        """A copy run under ``strategy`` (one of STRATEGIES; ScenarioError otherwise)."""
        if strategy not in STRATEGIES:
            raise ScenarioError([f"{self.path}: strategy: got {strategy!r}; expected one of {', '.join(STRATEGIES)}"])
        return replace(self, strategy=strategy)

    def with_seed(self, seed: int) -> Scenario:
        """A copy with the plant's sensor-noise ``seed`` (an integer >= 0; ScenarioError otherwise)."""
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ScenarioError([f"{self.path}: seed: got {seed!r}; expected an integer >= 0"])
        return replace(self, seed=seed)

    def with_parameter_set(self, parameter_set: str | None) -> Scenario:
        """A copy run on ``parameter_set`` (a full set id once resolved, or a name; None: the twin's deployed set)."""
        return replace(self, parameter_set=parameter_set)

    def with_speed(self, speed: float) -> Scenario:
        """A copy with ``speed`` (the CLI's ``--speed``); ScenarioError unless speed > 0."""
        if not (is_finite_number(speed) and speed > 0):
            raise ScenarioError([f"{self.path}: --speed: got {speed!r}; expected a number > 0"])
        return replace(self, speed=float(speed))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises:
        ScenarioError: with every problem found (unreadable file, TOML syntax, unknown/missing keys, wrong types
            or ranges, unknown unit/tag/fault kind, plant parameters refused by the plant).
    """
    path = Path(path)
    return _Validator(path).scenario(read_spec_file(path, ScenarioError))


class _Validator(SpecChecks):
    def __init__(self, path: Path, fit_allowed: bool = True) -> None:
        super().__init__(path)
        self.fit_allowed = fit_allowed
        """False for the scenario a ``[fit]`` names: a fitted batch's source has no ``[fit]`` of its own."""

    def scenario(self, data: Mapping[str, Any]) -> Scenario:
        h = self.scenario_header(data, _SECTIONS, _SCENARIO_KEYS, STRATEGIES, default_speed=200.0)
        s, name, description, line_path, unit, strategy = h.table, h.name, h.description, h.line_path, h.unit, \
            h.strategy
        speed, seed, plant_step, line_unit = h.speed, h.seed, h.plant_step_s, h.line_unit
        duration = self.number(s, "batch_duration_s", "scenario", low=0.0, low_exclusive=True)
        target = self.number(s, "target_d43_um", "scenario", low=0.0, low_exclusive=True)
        sample = self.number(s, "sample_interval_s", "scenario", 10.0, low=0.0, low_exclusive=True)
        max_s = self.number(s, "max_supersaturation", "scenario", 0.05, low=0.0, low_exclusive=True)
        parameter_set = read_parameter_set(self, s)

        plant = self.table(data, "plant", required=False)
        recipe_table = self.table(data, "recipe")
        self.unknown_keys(recipe_table, "recipe", set(_RECIPE_KEYS))
        recipe = Recipe(self.number(recipe_table, "initial_temperature_c", "recipe"),
                        self.number(recipe_table, "final_temperature_c", "recipe"))
        if recipe.final_temperature_c >= recipe.initial_temperature_c:
            self.add("recipe.final_temperature_c", recipe.final_temperature_c,
                     f"below recipe.initial_temperature_c ({recipe.initial_temperature_c:g}) for a cooling batch")
        control = self.table(data, "control", required=False)
        faults = self.faults(data.get("faults", []), duration, line_unit)
        if line_unit is not None:
            self.plant(line_unit, plant)
        measured = sorted(t.name for t in line_unit.tags if t.direction is Direction.MEASURED) if line_unit else None
        if "fit" in data and not self.fit_allowed:
            self.add("fit", "a [fit] table", "none in the scenario another one's fit.batch_of names (its batch "
                                             "is fitted; it is not fitted itself)")
        fit = read_fit(self, data, measured) if self.fit_allowed else None
        if fit is not None:
            self.fitted_batch(fit, line_path, unit, plant)
        self.raise_if_any(ScenarioError)
        return Scenario(
            path=self.path, name=name, description=description, line_path=line_path, unit=unit, strategy=strategy,
            batch_duration_s=duration, target_d43_um=target, speed=speed, seed=seed, plant_step_s=plant_step,
            sample_interval_s=sample, max_supersaturation=max_s, plant=dict(plant), recipe=recipe,
            control=dict(control), faults=faults, parameter_set=parameter_set, fit=fit,
        )

    def fitted_batch(self, fit: ScenarioFit, line_path: Path, unit: str, plant: Mapping[str, Any]) -> None:
        """``fit.batch_of``: a valid scenario of the same line, unit and plant (the set is fitted for that plant)."""
        if fit.batch_of == self.path.resolve():
            self.add("fit.batch_of", fit.batch_of.name, "another scenario (the batch the set is fitted from)")
            return
        try:
            source = _Validator(fit.batch_of, fit_allowed=False).scenario(read_spec_file(fit.batch_of, ScenarioError))
        except ScenarioError as exc:
            self.add("fit.batch_of", fit.batch_of.name, "a valid scenario (" + "; ".join(exc.errors) + ")")
            return
        differs = [what for what, same in (("line", source.line_path == line_path), ("unit", source.unit == unit),
                                           ("[plant]", dict(source.plant) == dict(plant))) if not same]
        if differs:
            self.add("fit.batch_of", fit.batch_of.name, "a scenario of the same line, unit and [plant] as this one "
                     f"(the plant the set is fitted for); its {', '.join(differs)} differ")

    def plant(self, line_unit: LineUnit, plant: Mapping[str, Any]) -> None:
        try:
            make_plant(line_unit.kind, {**line_unit.model, **plant}, seed=0)
        except PlantParameterError as exc:
            self.add("plant", dict(plant), f"parameters the plant accepts ({exc})")

    def faults(self, value: object, duration: float, line_unit: LineUnit | None) -> tuple[Fault, ...]:
        if not isinstance(value, list):
            self.add("faults", value, "an array of tables [[faults]]")
            return ()
        measured = None
        if line_unit is not None:
            measured = sorted(t.name for t in line_unit.tags if t.direction is Direction.MEASURED)
        out: list[Fault] = []
        kinds = [k.value for k in FaultKind]
        for i, f in enumerate(value):
            where = f"faults[{i}]"
            if not isinstance(f, dict):
                self.add(where, f, "a table")
                continue
            n_errors = len(self.issues)
            self.unknown_keys(f, where, set(_FAULT_KEYS))
            kind = self.choice(f, "kind", where, kinds)
            start = self.number(f, "start_s", where, low=0.0)
            end = self.number(f, "end_s", where, low=0.0, low_exclusive=True)
            if math.isfinite(start) and math.isfinite(end) and end <= start:
                self.add(f"{where}.end_s", end, f"> start_s ({start:g})")
            if math.isfinite(end) and duration > 0 and end > duration:
                self.add(f"{where}.end_s", end, f"<= scenario.batch_duration_s ({duration:g})")
            tag = f.get("tag")
            if kind == FaultKind.MEASUREMENT_DROPOUT.value:
                if not isinstance(tag, str):
                    self.add(f"{where}.tag", tag, "the measured tag that drops out")
                elif measured is not None and tag not in measured:
                    self.add(f"{where}.tag", tag, f"a measured tag of the unit ({', '.join(measured)})")
            elif kind == FaultKind.PLC_DISCONNECT.value and tag is not None:
                self.add(f"{where}.tag", tag, "no tag for plc_disconnect")
            if len(self.issues) == n_errors and kind is not None:
                out.append(Fault(FaultKind(kind), start, end, tag if isinstance(tag, str) else None))
        return tuple(out)
