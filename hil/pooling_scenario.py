"""HIL pooling scenarios: one chromatography run on the skid's physics plant, pooled by the twin over real sockets.

Format (TOML; every key checked, all errors at once as ``FILE: KEY: got …; expected …`` through :mod:`hil.spec_file`)::

    [scenario]
    name = "pooling_feed_titre_model_based"   # required
    description = "..."
    line = "../pilot_line.toml"       # required: the line config, relative to this file
    unit = "capture_column"           # required: a chromatography_column unit of that line
    strategy = "model_based"          # threshold | model_based (the twin's control.strategy)
    speed = 50                        # plant seconds per wall second; default 50
    seed = 1                          # the plant's sensor noise; default 0
    plant_step_s = 1.0                # the virtual PLC's step, plant s; default 1.0

    [plant]                           # the TRUE plant, merged over the unit's [model] (hil.plants.column_physics)
    [plant.deviation]                 # the run's departure from the method: feed_factors, adsorption_factors,
    feed_factors = { cytochrome = 0.7 }   # gradient_slope_factor (process_models.chromatography.elution_method)

    [control]                         # the twin's [units.<unit>.control] pooling table (controllers.chromatography.
                                      # pooling_plan); its [control.method] is also the method the plant runs:
    [control.method]                  # process steps in the case files' vocabulary (elution_method), e.g.
    column_diameter_m = 0.009537      # needed by a step's flow rate
    [[control.method.steps]]
    name = "load"
    duration_s = 10.0
    inlet = { salt = 50.0, cytochrome = 1.0 }

The plant is the physics column (``plant_model = "physics"``) running the control table's method (its steps'
inlets and flows, publishing the step it runs) with the scenario's deviation
(:meth:`PoolingScenario.plant_parameters`); the twin knows the method, not the deviation.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.line_unit import LineUnit, read_line_unit
from hil.plant import make_plant
from hil.plants.parameters import PlantParameterError
from hil.spec_file import SpecChecks, SpecFileError, read_spec_file

if TYPE_CHECKING:  # the pooling plan (the column model's imports) is imported when a scenario is validated,
    # not with this module: `hil run` asks is_pooling_scenario of every scenario file
    from controllers.chromatography.pooling_plan import PoolingPlan

_SECTIONS = ("scenario", "plant", "control")
_SCENARIO_KEYS = ("name", "description", "line", "unit", "strategy", "speed", "seed", "plant_step_s")
KIND = "chromatography_column"


class PoolingScenarioError(SpecFileError):
    """A pooling scenario file is invalid; ``errors`` lists every problem."""

    what = "pooling scenario"


@dataclass(frozen=True)
class PoolingScenario:
    """A validated pooling scenario (module docstring)."""

    path: Path
    name: str
    description: str
    line_path: Path
    unit: str
    strategy: str
    speed: float
    seed: int
    plant_step_s: float
    plant: Mapping[str, Any]
    control: Mapping[str, Any]
    plan: PoolingPlan = field(repr=False)
    model: Mapping[str, Any] = field(default_factory=dict)

    def control_options(self) -> dict[str, Any]:
        """The twin's ``[units.<unit>.control]`` table: the scenario's, with its strategy."""
        return {**dict(self.control), "strategy": self.strategy}

    def plant_parameters(self) -> dict[str, Any]:
        """The true plant's parameters: the unit's ``[model]``, the physics plant running the control table's
        method, and the scenario's ``[plant]`` over them."""
        method = self.control.get("method", {})
        return {**dict(self.model), "plant_model": "physics", "method": dict(method), **dict(self.plant)}

    @property
    def run_end_s(self) -> float:
        """Run time (s) at which the run is over: the fractionation window's end."""
        return self.plan.spec.window_end_s


def is_pooling_scenario(path: Path) -> bool:
    """Whether ``path`` names a pooling scenario (its unit is a chromatography column of its line); False when it
    cannot tell (the crystallizer scenario loader then reports the file's problems)."""
    try:
        data = tomllib.loads(path.read_text())
        s = data.get("scenario", {})
        line = read_line_unit((path.parent / str(s["line"])).resolve(), str(s["unit"]))
    except Exception:  # noqa: BLE001 - not readable as a pooling scenario: the other loader says why
        return False
    return line.kind == KIND


def load_pooling_scenario(path: str | Path) -> PoolingScenario:
    """Read and validate a pooling scenario file.

    Raises:
        PoolingScenarioError: with every problem found (file, TOML, unknown/missing keys, the unit not a
            chromatography column of the line, a control table the pooling plan refuses, a plant the plant
            refuses).
    """
    path = Path(path)
    return _PoolingValidator(path).scenario(read_spec_file(path, PoolingScenarioError))


class _PoolingValidator(SpecChecks):
    def scenario(self, data: Mapping[str, Any]) -> PoolingScenario:
        from controllers.chromatography.pooling_plan import STRATEGIES, on_unit_model, parse_pooling_options

        h = self.scenario_header(data, _SECTIONS, _SCENARIO_KEYS, STRATEGIES, default_speed=50.0)
        name, description, line_path, unit, strategy = h.name, h.description, h.line_path, h.unit, h.strategy
        speed, seed, plant_step, line_unit = h.speed, h.seed, h.plant_step_s, h.line_unit
        if line_unit is not None and line_unit.kind != KIND:
            self.add("scenario.unit", unit, f"a {KIND} unit (it is a {line_unit.kind})")
            line_unit = None
        plant = self.table(data, "plant", required=False)
        control = self.table(data, "control")
        plan = None
        if line_unit is not None:
            tags = {t.name for t in line_unit.tags}
            plan, issues = parse_pooling_options({**control, "strategy": strategy or "model_based"}, "control", tags)
            for key, got, expected in issues:
                self.add(key, got, expected)
            plan = on_unit_model(plan, line_unit.model) if plan is not None else None
            self.pooling_plant(line_unit, plant, control)
        self.raise_if_any(PoolingScenarioError)
        assert plan is not None and line_unit is not None
        return PoolingScenario(self.path, name, description, line_path, unit, strategy, speed, seed, plant_step,
                               dict(plant), dict(control), plan, dict(line_unit.model))

    def pooling_plant(self, line_unit: LineUnit, plant: Mapping[str, Any], control: Mapping[str, Any]) -> None:
        method = control.get("method", {})
        try:
            make_plant(line_unit.kind, {**line_unit.model, "plant_model": "physics",
                                        "method": dict(method) if isinstance(method, Mapping) else method,
                                        **plant}, seed=0)
        except PlantParameterError as exc:
            self.add("plant", dict(plant), f"parameters the physics column accepts ({exc})")
