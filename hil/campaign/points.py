"""Sampled points of a campaign and how a point changes the base scenario.

Sampling: ``sobol`` (scrambled Sobol sequence, Owen 1998; :class:`scipy.stats.qmc.Sobol`), ``lhs`` (Latin
hypercube, McKay, Beckman & Conover, Technometrics 21 (1979) 239; :class:`scipy.stats.qmc.LatinHypercube`) or
``random`` (i.i.d. uniform), all seeded with the campaign's seed, in the unit cube of the dimensions; each
coordinate u in [0, 1) is mapped through its distribution's inverse CDF: uniform ``low + u (high - low)``, normal
``mean + std Φ⁻¹(u)``, lognormal ``median · exp(sigma Φ⁻¹(u))``, choice ``values[floor(u n)]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from hil.campaign.spec import Campaign, Dimension
from hil.scenario import Scenario, ScenarioError

Point = dict[str, Any]
"""Target (``plant.growth_rate_factor``) → value of one run."""

_U_MAX = 1.0 - 1e-12


def sample_points(campaign: Campaign) -> list[Point]:
    """The campaign's ``plants`` points: sampled dimensions over its ``[fixed]`` values, deterministic for its seed."""
    from scipy.stats import qmc

    d = len(campaign.dimensions)
    n = campaign.plants
    if d == 0:
        units = np.zeros((n, 0))
    elif campaign.sampling == "sobol":
        engine = qmc.Sobol(d, scramble=True, seed=campaign.seed)
        units = engine.random(n)  # not a power of two: the first n points, balance warning aside
    elif campaign.sampling == "lhs":
        units = qmc.LatinHypercube(d, seed=campaign.seed).random(n)
    else:
        units = np.random.default_rng(campaign.seed).random((n, d))
    points: list[Point] = []
    for row in units:
        point: Point = dict(campaign.fixed)
        for dim, u in zip(campaign.dimensions, row, strict=True):
            value = dimension_value(dim, float(min(max(u, 0.0), _U_MAX)))
            point.update({t: value for t in dim.targets})
        points.append(point)
    return points


def dimension_value(dim: Dimension, u: float) -> Any:
    """The value of ``dim`` at unit coordinate ``u`` (inverse CDF; see the module docstring)."""
    p = dim.parameters
    if dim.distribution == "choice":
        values = p["values"]
        return values[min(int(u * len(values)), len(values) - 1)]
    if dim.distribution == "uniform":
        return p["low"] + u * (p["high"] - p["low"])
    from scipy.stats import norm

    z = float(norm.ppf(max(u, 1e-12)))
    if dim.distribution == "normal":
        return p["mean"] + p["std"] * z
    return p["median"] * math.exp(p["sigma"] * z)


def apply_point(base: Scenario, point: Mapping[str, Any], check: bool = False) -> Scenario:
    """``base`` with ``point``'s values set (``scenario.*`` fields, ``plant.*`` over ``[plant]``, ``control.*``
    over ``[control]``). ``check``: build the plant once and parse the control table (ScenarioError / ValueError
    naming what is refused)."""
    plant = dict(base.plant)
    control = dict(base.control)
    fields: dict[str, Any] = {}
    for target, value in point.items():
        section, name = target.split(".", 1)
        if section == "plant":
            plant[name] = value
        elif section == "control":
            control[name] = value
        elif name == "seed":
            fields["seed"] = max(0, int(round(value)))
        else:
            fields[name] = float(value)
    scenario = replace(base, plant=plant, control=control, **fields)
    if check:
        _check(scenario)
    return scenario


def _check(scenario: Scenario) -> None:
    from controllers.plan_registry import control_plan_for_kind
    from hil.line_unit import read_line_unit
    from hil.plant import make_plant
    from hil.plants.parameters import PlantParameterError

    unit = read_line_unit(scenario.line_path, scenario.unit)
    try:
        make_plant(unit.kind, {**unit.model, **scenario.plant}, seed=0)
    except PlantParameterError as exc:
        raise ScenarioError([f"plant: {exc}"]) from None
    _options, issues = control_plan_for_kind(unit.kind).parse_options(
        scenario.control_options(), f"units.{unit.name}.control", {t.name for t in unit.tags})
    if issues:
        raise ValueError("; ".join(f"control: {k}: got {g!r}; expected {e}" for k, g, e in issues))
