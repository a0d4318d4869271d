"""HIL scenario files: one batch of one unit under one control strategy, with a "true" plant and faults.

Format (TOML; every key below is checked, all errors are reported at once as ``file: key: got …, expected …``)::

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

The line file is read here with ``tomllib`` only for the unit's kind, ``[model]`` table and tag directions (hil
does not import the twin's config loader); the plant parameters are checked by building the plant once.
Strategy → the twin's ``control.mode``: natural_cooling and linear_cooling → "auto" (follow the recipe),
mpc and oracle → "mpc" (:attr:`Scenario.mode`). ``oracle`` (the NMPC given the plant's true parameters and state,
:mod:`hil.oracle`) runs only in the stepped loop (:mod:`hil.stepped_batch`): the twin never knows the truth.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hil.faults import Fault, FaultKind
from hil.plant import make_plant
from hil.plants.parameters import PlantParameterError

STRATEGIES = ("natural_cooling", "linear_cooling", "mpc", "oracle")
_MODE_BY_STRATEGY = {"natural_cooling": "auto", "linear_cooling": "auto", "mpc": "mpc", "oracle": "mpc"}
_SECTIONS = ("scenario", "plant", "recipe", "control", "faults")
_SCENARIO_KEYS = ("name", "description", "line", "unit", "strategy", "batch_duration_s", "target_d43_um", "speed",
                  "seed", "plant_step_s", "sample_interval_s", "max_supersaturation")
_RECIPE_KEYS = ("initial_temperature_c", "final_temperature_c")
_FAULT_KEYS = ("kind", "tag", "start_s", "end_s")


class ScenarioError(ValueError):
    """A scenario file is invalid; ``errors`` lists every problem (file, key, got, expected)."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("invalid scenario:\n  " + "\n  ".join(errors))


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
            raise ScenarioError([f"{self.path}: strategy: got {strategy!r}, expected one of {', '.join(STRATEGIES)}"])
        return replace(self, strategy=strategy)

    def with_seed(self, seed: int) -> Scenario:
        """A copy with the plant's sensor-noise ``seed`` (an integer >= 0; ScenarioError otherwise)."""
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ScenarioError([f"{self.path}: seed: got {seed!r}, expected an integer >= 0"])
        return replace(self, seed=seed)

    def with_speed(self, speed: float) -> Scenario:
        """A copy with ``speed`` (the CLI's ``--speed``); ScenarioError unless speed > 0."""
        if not (_is_number(speed) and speed > 0):
            raise ScenarioError([f"{self.path}: --speed: got {speed!r}, expected a number > 0"])
        return replace(self, speed=float(speed))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises:
        ScenarioError: with every problem found (unreadable file, TOML syntax, unknown/missing keys, wrong types
            or ranges, unknown unit/tag/fault kind, plant parameters refused by the plant).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{path}: TOML syntax: {exc}"]) from None
    return _Validator(path).scenario(data)


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


class _Validator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []

    def error(self, key: str, got: object, expected: str) -> None:
        self.errors.append(f"{self.path}: {key}: got {got!r}, expected {expected}")

    def unknown_keys(self, where: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key, value in table.items():
            if key not in allowed:
                self.errors.append(f"{self.path}: {f'{where}.{key}' if where else key}: got {value!r} (unknown key), "
                                   f"expected one of {', '.join(allowed)}")

    def table(self, data: Mapping[str, Any], key: str, required: bool) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                self.error(key, None, "a table")
            return {}
        if not isinstance(value, dict):
            self.error(key, value, "a table")
            return {}
        return value

    def string(self, table: Mapping[str, Any], where: str, key: str, default: str | None = None,
               choices: tuple[str, ...] | None = None) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or not value:
            self.error(f"{where}.{key}", value, "a non-empty string" if choices is None else f"one of {choices}")
            return ""
        if choices is not None and value not in choices:
            self.error(f"{where}.{key}", value, f"one of {', '.join(choices)}")
        return value

    def number(self, table: Mapping[str, Any], where: str, key: str, default: float | None = None,
               minimum: float | None = None, strictly: bool = True) -> float:
        value = table.get(key, default)
        relation = ">" if strictly else ">="
        expected = "a number" if minimum is None else f"a number {relation} {minimum:g}"
        if not _is_number(value):
            self.error(f"{where}.{key}", value, expected)
            return math.nan
        assert isinstance(value, int | float)
        if minimum is not None and (value <= minimum if strictly else value < minimum):
            self.error(f"{where}.{key}", value, expected)
        return float(value)

    def scenario(self, data: Mapping[str, Any]) -> Scenario:
        self.unknown_keys("", data, _SECTIONS)
        s = self.table(data, "scenario", required=True)
        self.unknown_keys("scenario", s, _SCENARIO_KEYS)
        name = self.string(s, "scenario", "name")
        description = s.get("description", "")
        if not isinstance(description, str):
            self.error("scenario.description", description, "a string")
            description = ""
        line_value = self.string(s, "scenario", "line")
        unit = self.string(s, "scenario", "unit")
        strategy = self.string(s, "scenario", "strategy", choices=STRATEGIES)
        duration = self.number(s, "scenario", "batch_duration_s", minimum=0.0)
        target = self.number(s, "scenario", "target_d43_um", minimum=0.0)
        speed = self.number(s, "scenario", "speed", 200.0, minimum=0.0)
        seed = s.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            self.error("scenario.seed", seed, "an integer >= 0")
            seed = 0
        plant_step = self.number(s, "scenario", "plant_step_s", 1.0, minimum=0.0)
        sample = self.number(s, "scenario", "sample_interval_s", 10.0, minimum=0.0)
        max_s = self.number(s, "scenario", "max_supersaturation", 0.05, minimum=0.0)

        line_path = (self.path.parent / line_value).resolve() if line_value else self.path.parent
        unit_table = self.line_unit(line_path, unit) if line_value and unit else None

        plant = self.table(data, "plant", required=False)
        recipe_table = self.table(data, "recipe", required=True)
        self.unknown_keys("recipe", recipe_table, _RECIPE_KEYS)
        recipe = Recipe(self.number(recipe_table, "recipe", "initial_temperature_c"),
                        self.number(recipe_table, "recipe", "final_temperature_c"))
        if recipe.final_temperature_c >= recipe.initial_temperature_c:
            self.error("recipe.final_temperature_c", recipe.final_temperature_c,
                       f"below recipe.initial_temperature_c ({recipe.initial_temperature_c:g}) for a cooling batch")
        control = self.table(data, "control", required=False)
        faults = self.faults(data.get("faults", []), duration, unit_table)
        if unit_table is not None:
            self.plant(unit_table, plant)
        if self.errors:
            raise ScenarioError(self.errors)
        return Scenario(
            path=self.path, name=name, description=description, line_path=line_path, unit=unit, strategy=strategy,
            batch_duration_s=duration, target_d43_um=target, speed=speed, seed=seed, plant_step_s=plant_step,
            sample_interval_s=sample, max_supersaturation=max_s, plant=dict(plant), recipe=recipe,
            control=dict(control), faults=faults,
        )

    def line_unit(self, line_path: Path, unit: str) -> dict[str, Any] | None:
        try:
            line = tomllib.loads(line_path.read_text())
        except OSError as exc:
            self.error("scenario.line", str(line_path), f"a readable line config ({exc.strerror or exc})")
            return None
        except tomllib.TOMLDecodeError as exc:
            self.error("scenario.line", str(line_path), f"a valid TOML line config ({exc})")
            return None
        units = line.get("units", {})
        if not isinstance(units, dict) or unit not in units or not isinstance(units[unit], dict):
            known = ", ".join(units) if isinstance(units, dict) else "none"
            self.error("scenario.unit", unit, f"a unit of {line_path.name} ({known})")
            return None
        return units[unit]

    def plant(self, unit_table: Mapping[str, Any], plant: Mapping[str, Any]) -> None:
        merged = dict(unit_table.get("model", {}))
        merged.update(plant)
        try:
            make_plant(str(unit_table.get("kind")), merged, seed=0)
        except PlantParameterError as exc:
            self.error("plant", dict(plant), f"parameters the plant accepts ({exc})")

    def faults(self, value: object, duration: float, unit_table: Mapping[str, Any] | None) -> tuple[Fault, ...]:
        if not isinstance(value, list):
            self.error("faults", value, "an array of tables [[faults]]")
            return ()
        measured = None
        if unit_table is not None:
            tags = unit_table.get("tags", {})
            measured = sorted(n for n, t in tags.items() if isinstance(t, dict) and t.get("direction") == "measured")
        out: list[Fault] = []
        kinds = tuple(k.value for k in FaultKind)
        for i, f in enumerate(value):
            where = f"faults[{i}]"
            if not isinstance(f, dict):
                self.error(where, f, "a table")
                continue
            n_errors = len(self.errors)
            self.unknown_keys(where, f, _FAULT_KEYS)
            kind = self.string(f, where, "kind", choices=kinds)
            start = self.number(f, where, "start_s", minimum=0.0, strictly=False)
            end = self.number(f, where, "end_s", minimum=0.0)
            if math.isfinite(start) and math.isfinite(end) and end <= start:
                self.error(f"{where}.end_s", end, f"> start_s ({start:g})")
            if math.isfinite(end) and duration > 0 and end > duration:
                self.error(f"{where}.end_s", end, f"<= scenario.batch_duration_s ({duration:g})")
            tag = f.get("tag")
            if kind == FaultKind.MEASUREMENT_DROPOUT.value:
                if not isinstance(tag, str):
                    self.error(f"{where}.tag", tag, "the measured tag that drops out")
                elif measured is not None and tag not in measured:
                    self.error(f"{where}.tag", tag, f"a measured tag of the unit ({', '.join(measured)})")
            elif kind == FaultKind.PLC_DISCONNECT.value and tag is not None:
                self.error(f"{where}.tag", tag, "no tag for plc_disconnect")
            if len(self.errors) == n_errors:
                out.append(Fault(FaultKind(kind), start, end, tag if isinstance(tag, str) else None))
        return tuple(out)
