"""Campaign files: a base (a HIL scenario, or a simulation case for a parameter sweep), sampled dimensions mapped
onto it, and the strategies to compare.

Format (TOML; every problem is reported at once as ``file: key: got …; expected …``, through the checks scenario
files share, :mod:`hil.spec_file`)::

    [campaign]
    name = "robustness"                    # required
    description = "..."                    # optional
    scenario = "../scenarios/nominal_mpc.toml"   # required: the base scenario, relative to this file
    plants = 200                           # required: sampled points (plants), an integer >= 1
    sampling = "sobol"                     # sobol | lhs | random (scrambled Sobol, Latin hypercube, i.i.d.)
    seed = 7                               # sampling seed, an integer >= 0; default 0
    strategies = ["linear_cooling", "mpc", "oracle"]   # each plant runs each (hil.campaign.strategies)

    [fixed]                                # optional: values set on every run, keyed like a dimension's target
    "scenario.batch_duration_s" = 1800

    [dimensions.growth]                    # any number of sampled dimensions
    target = "plant.growth_rate_factor"    # or a list of targets that all get the sampled value
    distribution = "uniform"               # uniform (low, high) | normal (mean, std) |
    low = 0.7                              # lognormal (median, sigma: of ln) | choice (values)
    high = 1.4

A parameter sweep of a simulation case gives ``case = "../cases/mixing_tank.toml"`` instead of ``scenario`` and no
``strategies`` (each point is one simulation); its targets are ``model.<option>``, ``initial_state.<state>``,
``inputs.<input>`` (held constant) and ``case.until_s`` (:mod:`hil.campaign.case_runs`).

Targets of a scenario campaign: ``scenario.target_d43_um``, ``scenario.seed`` (the plant's sensor-noise seed;
sampled values are rounded to integers >= 0), ``scenario.batch_duration_s``, ``scenario.max_supersaturation``,
``plant.<name>`` (a parameter of the scenario's plant, merged over its ``[plant]`` table), ``control.<name>`` (a key
of the unit's control table, merged over the scenario's ``[control]``). Loading a campaign builds the plant once
(as loading its scenario does), at the centre of the sampled ranges, to check the ``plant.*`` names and values, and
parses the control table there (a case sweep validates its case there); a point elsewhere that the plant refuses
becomes a failed run, not a file error. No NMPC is built and Dask is not imported here.

Strategies: the built-in ones (:data:`hil.campaign.strategies.BUILTIN_STRATEGIES`: the scenario strategies and
``mpc_online_solubility``) and those the caller adds (``load_campaign(path, strategies={name: strategy})``;
``linetwin campaign`` adds ``mpc_fitted``). The campaign keeps the strategy object of each name it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.campaign.case_runs import SWEEP_STRATEGY, case_target_problem
from hil.campaign.strategies import BUILTIN_STRATEGIES, CampaignStrategy
from hil.scenario import Scenario, ScenarioError, load_scenario
from hil.spec_file import SpecChecks, SpecFileError, read_spec_file
from plc_adapters.config_issues import is_finite_number

SAMPLINGS = ("sobol", "lhs", "random")
DISTRIBUTIONS = {"uniform": ("low", "high"), "normal": ("mean", "std"), "lognormal": ("median", "sigma"),
                 "choice": ("values",)}
SCENARIO_TARGETS = ("target_d43_um", "seed", "batch_duration_s", "max_supersaturation")
_CAMPAIGN_KEYS = ("name", "description", "scenario", "case", "plants", "sampling", "seed", "strategies")
_SECTIONS = ("campaign", "fixed", "dimensions")


class CampaignError(SpecFileError):
    """A campaign file is invalid; ``errors`` lists every problem (``FILE: KEY: got …; expected …``)."""

    what = "campaign"


@dataclass(frozen=True)
class Dimension:
    """One sampled dimension: its name, the targets that get its value, its distribution and parameters."""

    name: str
    targets: tuple[str, ...]
    distribution: str
    parameters: Mapping[str, Any]

    def centre(self) -> Any:
        """A typical value (midpoint, mean, median or first choice): what the campaign check builds once."""
        p = self.parameters
        return {"uniform": lambda: 0.5 * (p["low"] + p["high"]), "normal": lambda: p["mean"],
                "lognormal": lambda: p["median"], "choice": lambda: p["values"][0]}[self.distribution]()


@dataclass(frozen=True)
class Campaign:
    """A validated campaign file (see the module docstring): ``scenario`` for a HIL campaign, or ``case`` (the case
    file's path) for a parameter sweep, whose one strategy is ``simulate``; ``runners``: the strategy object of each
    of ``strategies`` (none in a sweep)."""

    path: Path
    name: str
    description: str
    scenario: Scenario | None
    plants: int
    sampling: str
    seed: int
    strategies: tuple[str, ...]
    fixed: Mapping[str, Any]
    dimensions: tuple[Dimension, ...]
    case: Path | None = None
    runners: Mapping[str, CampaignStrategy] = field(default_factory=dict)

    @property
    def base_path(self) -> Path:
        """The base file: the scenario's or the case's."""
        if self.case is not None:
            return self.case
        assert self.scenario is not None
        return self.scenario.path


def load_campaign(path: str | Path, strategies: Mapping[str, CampaignStrategy] | None = None) -> Campaign:
    """Read and validate a campaign file (and its base scenario); ``strategies``: strategies the file may name
    besides the built-in ones (name → strategy; a name given here replaces a built-in one).

    Raises:
        CampaignError: every problem found (unreadable file, TOML syntax, unknown/missing keys, wrong types or
            ranges, an unknown target, a base scenario that does not load, plant values the plant refuses).
    """
    path = Path(path)
    validator = _Validator(path)
    validator.available = {**BUILTIN_STRATEGIES, **(strategies or {})}
    return validator.campaign(read_spec_file(path, CampaignError))


class _Validator(SpecChecks):
    available: Mapping[str, CampaignStrategy] = BUILTIN_STRATEGIES

    def campaign(self, data: Mapping[str, Any]) -> Campaign:
        self.unknown_keys(data, "", set(_SECTIONS))
        c = self.table(data, "campaign")
        self.raise_if_any(CampaignError)
        self.unknown_keys(c, "campaign", set(_CAMPAIGN_KEYS))
        name = self.text(c, "name", "campaign")
        description = self.description(c, "campaign")
        plants = self.integer(c, "plants", "campaign", 1, None)
        sampling = self.choice(c, "sampling", "campaign", list(SAMPLINGS), default="sobol")
        seed = self.integer(c, "seed", "campaign", 0, None, default=0)
        if "case" in c:
            return self.case_sweep(c, data, name, description, plants, sampling, seed)
        strategies = c.get("strategies")
        if (not isinstance(strategies, list) or not strategies
                or not all(isinstance(s, str) and s in self.available for s in strategies)
                or len(set(strategies)) != len(strategies)):
            self.add("campaign.strategies", strategies, "a non-empty list of distinct strategies out of "
                       + ", ".join(self.available))
            strategies = []
        scenario = self.scenario(c.get("scenario"))
        fixed = data.get("fixed", {})
        if not isinstance(fixed, dict):
            self.add("fixed", fixed, "a table target = value")
            fixed = {}
        for target, value in fixed.items():
            self.target(f"fixed.{target}", target)
            if not (is_finite_number(value) or isinstance(value, str)):
                self.add(f"fixed.{target}", value, "a number or a string")
        dimensions = self.dimensions(data.get("dimensions", {}), self.target)
        self.check_targets_once(fixed, dimensions)
        if scenario is not None and not self.issues:
            self.check_centre(scenario, fixed, dimensions)
        self.raise_if_any(CampaignError)
        assert scenario is not None and sampling is not None
        return Campaign(path=self.path, name=name, description=description,
                        scenario=scenario, plants=plants, sampling=sampling, seed=seed,
                        strategies=tuple(strategies), fixed=dict(fixed), dimensions=dimensions,
                        runners={s: self.available[s] for s in strategies})

    def case_sweep(self, c: Mapping[str, Any], data: Mapping[str, Any], name: str, description: str, plants: int,
                   sampling: str | None, seed: int) -> Campaign:
        """A parameter sweep of a simulation case (``[campaign] case``)."""
        from process_models.case_file import CaseFileError, load_case

        for key in ("scenario", "strategies"):
            if key in c:
                self.add(f"campaign.{key}", c[key], "nothing with campaign.case (a sweep simulates each point once)")
        case_path: Path | None = None
        value = c.get("case")
        if not isinstance(value, str) or not value:
            self.add("campaign.case", value, "the path of a simulation case file (relative to the campaign)")
        else:
            case_path = (self.path.parent / value).resolve()
            try:
                load_case(case_path)
            except CaseFileError as exc:
                self.add("campaign.case", value, "a valid case file (" + "; ".join(exc.errors) + ")")
                case_path = None
        fixed = data.get("fixed", {})
        if not isinstance(fixed, dict):
            self.add("fixed", fixed, "a table target = value")
            fixed = {}
        for target, value in fixed.items():
            self.case_target(f"fixed.{target}", target)
            if not (is_finite_number(value) or isinstance(value, str)):
                self.add(f"fixed.{target}", value, "a number or a string (a model option)")
        dimensions = self.dimensions(data.get("dimensions", {}), self.case_target)
        self.check_targets_once(fixed, dimensions)
        if case_path is not None and not self.issues:
            from hil.campaign.case_runs import case_with_point

            point = {**fixed, **{t: d.centre() for d in dimensions for t in d.targets}}
            try:
                case_with_point(case_path, point)
            except CaseFileError as exc:
                self.add("dimensions", point, "values the case accepts at the centre of the sampled ranges ("
                         + "; ".join(exc.errors) + ")")
        self.raise_if_any(CampaignError)
        assert sampling is not None
        return Campaign(path=self.path, name=name, description=description, scenario=None, plants=plants,
                        sampling=sampling, seed=seed, strategies=(SWEEP_STRATEGY,), fixed=dict(fixed),
                        dimensions=dimensions, case=case_path)

    def case_target(self, key: str, target: object) -> None:
        problem = case_target_problem(target) if isinstance(target, str) else "a string"
        if problem is not None:
            self.add(key, target, problem)

    def check_targets_once(self, fixed: Mapping[str, Any], dimensions: tuple[Dimension, ...]) -> None:
        targets = [t for d in dimensions for t in d.targets]
        for target in sorted({t for t in targets if targets.count(t) > 1 or t in fixed}):
            self.add(f"dimensions ({target})", target, "each target set by one dimension or [fixed] only")

    def scenario(self, value: object) -> Scenario | None:
        if not isinstance(value, str) or not value:
            self.add("campaign.scenario", value, "the path of a HIL scenario file (relative to the campaign)")
            return None
        try:
            return load_scenario((self.path.parent / value).resolve())
        except ScenarioError as exc:
            self.add("campaign.scenario", value, "a valid scenario (" + "; ".join(exc.errors) + ")")
            return None

    def target(self, key: str, target: object) -> None:
        if not isinstance(target, str) or "." not in target:
            self.add(key, target, "scenario.<key> | plant.<name> | control.<name>")
            return
        section, name = target.split(".", 1)
        if section == "scenario" and name not in SCENARIO_TARGETS:
            self.add(key, target, "scenario." + " | scenario.".join(SCENARIO_TARGETS))
        elif section not in ("scenario", "plant", "control") or not name:
            self.add(key, target, "scenario.<key> | plant.<name> | control.<name>")

    def dimensions(self, value: object, check_target: Callable[[str, object], None]) -> tuple[Dimension, ...]:
        if not isinstance(value, dict):
            self.add("dimensions", value, "tables [dimensions.NAME]")
            return ()
        out: list[Dimension] = []
        for name, d in value.items():
            where = f"dimensions.{name}"
            if not isinstance(d, dict):
                self.add(where, d, "a table")
                continue
            n_errors = len(self.issues)
            distribution = d.get("distribution")
            if distribution not in DISTRIBUTIONS:
                self.add(f"{where}.distribution", distribution, "one of " + ", ".join(DISTRIBUTIONS))
                continue
            self.unknown_keys(d, where, {"target", "distribution", *DISTRIBUTIONS[distribution]})
            raw_targets = d.get("target")
            targets = tuple(raw_targets) if isinstance(raw_targets, list) else (raw_targets,)
            if not targets:
                self.add(f"{where}.target", raw_targets, "a target or a non-empty list of targets")
            for t in targets:
                check_target(f"{where}.target", t)
            parameters = {k: d.get(k) for k in DISTRIBUTIONS[distribution]}
            self.distribution(where, distribution, parameters)
            if len(self.issues) == n_errors:
                out.append(Dimension(name, tuple(str(t) for t in targets), distribution, parameters))
        return tuple(out)

    def distribution(self, where: str, distribution: str, p: Mapping[str, Any]) -> None:
        if distribution == "choice":
            values = p["values"]
            if not isinstance(values, list) or not values or not all(is_finite_number(v) or isinstance(v, str)
                                                                     for v in values):
                self.add(f"{where}.values", values, "a non-empty list of numbers or strings")
            return
        for key in DISTRIBUTIONS[distribution]:
            if not is_finite_number(p[key]):
                self.add(f"{where}.{key}", p[key], "a finite number")
                return
        if distribution == "uniform" and not p["low"] < p["high"]:
            self.add(f"{where}.high", p["high"], f"> low ({p['low']})")
        if distribution == "normal" and not p["std"] > 0:
            self.add(f"{where}.std", p["std"], "a number > 0")
        if distribution == "lognormal" and not (p["median"] > 0 and p["sigma"] > 0):
            self.add(f"{where}.median / sigma", (p["median"], p["sigma"]), "numbers > 0")

    def check_centre(self, scenario: Scenario, fixed: Mapping[str, Any], dimensions: tuple[Dimension, ...]) -> None:
        from hil.campaign.points import apply_point  # the plant is built here, once

        point = {**fixed, **{t: d.centre() for d in dimensions for t in d.targets}}
        try:
            apply_point(scenario, point, check=True)
        except ScenarioError as exc:
            self.add("dimensions", point, f"values the scenario and its plant accept at the centre of the "
                                            f"sampled ranges ({'; '.join(exc.errors)})")
        except ValueError as exc:
            self.add("dimensions", point, f"values the scenario and its control table accept at the centre of "
                                            f"the sampled ranges ({exc})")
