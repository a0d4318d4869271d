"""A scenario's ``[fit]`` table and ``parameter_set`` key: which parameter set the twin runs a batch on, and how a
commissioning fits it from another scenario's recorded batch (``linetwin hil commission``, docs/hil.md).

Format (every key checked; problems reported with the scenario's others, ``FILE: KEY: got …; expected …``)::

    [scenario]
    parameter_set = "latest"     # optional: the set applied (ApplyParameterSet, engineer) before StartBatch:
                                 # "nominal" (the unit's declared values), "latest" (the newest set stored for the
                                 # unit in the run's data dir, e.g. the one `linetwin fit` just stored), or a set id
                                 # (4 to 16 hex digits, a unique prefix); omitted: the set the twin has deployed

    [fit]                        # optional: this batch runs on a set fitted from the batch of another scenario
    batch_of = "commissioning_1_nominal_mpc.toml"   # required: that scenario (same line, unit and [plant])
    estimate = ["growth_rate_constant"]             # required: the model parameters to fit (`linetwin fit --estimate`)
    method = "ml"                # wls | ml (default wls)
    delay_s = { solute_concentration = 20 }         # measured tag -> the analyser's delay, plant s (default none)
    sample_interval_s = 60       # plant seconds between fitted samples (default 60)
    profile = false              # profile-likelihood intervals too (slower; default false)

The parameter names are the unit model's; ``linetwin hil commission`` checks them against the model before it runs
a batch. The scenario named by ``batch_of`` is read and checked by :mod:`hil.scenario`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.spec_file import SpecChecks

__all__ = ["FIT_METHODS", "PARAMETER_SET_NAMES", "ScenarioFit", "read_fit", "read_parameter_set"]

FIT_METHODS = ("wls", "ml")
PARAMETER_SET_NAMES = ("nominal", "latest")
"""The set names a scenario may give instead of an id."""
_SET_ID = re.compile(r"[0-9a-f]{4,16}")
_FIT_KEYS = ("batch_of", "estimate", "method", "delay_s", "sample_interval_s", "profile")


@dataclass(frozen=True)
class ScenarioFit:
    """A validated ``[fit]`` table (module docstring); ``batch_of`` resolved against the scenario's folder."""

    batch_of: Path
    estimate: tuple[str, ...]
    method: str = "wls"
    delay_s: Mapping[str, float] = field(default_factory=dict)
    sample_interval_s: float = 60.0
    profile: bool = False

    def describe(self) -> dict[str, Any]:
        """Plain JSON-able data for the report."""
        return {"batch_of": str(self.batch_of), "estimate": list(self.estimate), "method": self.method,
                "delay_s": dict(self.delay_s), "sample_interval_s": self.sample_interval_s, "profile": self.profile}


def read_parameter_set(checks: SpecChecks, table: Mapping[str, Any]) -> str | None:
    """``scenario.parameter_set``: None when absent, else the name or id (reported to ``checks`` if invalid)."""
    value = table.get("parameter_set")
    if value is None:
        return None
    if not isinstance(value, str) or not (value in PARAMETER_SET_NAMES or _SET_ID.fullmatch(value)):
        checks.add("scenario.parameter_set", value, "nominal, latest or a parameter set id (4 to 16 lower-case hex "
                                                    "digits, a unique prefix of a set in the run's data dir)")
        return None
    return value


def read_fit(checks: SpecChecks, data: Mapping[str, Any], measured_tags: list[str] | None) -> ScenarioFit | None:
    """The ``[fit]`` table (None when absent or after reporting a problem). ``measured_tags``: the unit's measured
    tags (None: unknown, the line could not be read; ``delay_s`` keys are then not checked)."""
    if "fit" not in data:
        return None
    table = checks.table(data, "fit")
    if not table:
        return None
    n_issues = len(checks.issues)
    checks.unknown_keys(table, "fit", set(_FIT_KEYS))
    batch_of = checks.text(table, "batch_of", "fit")
    estimate = table.get("estimate")
    if not (isinstance(estimate, list) and estimate and all(isinstance(p, str) and p for p in estimate)
            and len(set(estimate)) == len(estimate)):
        checks.add("fit.estimate", "nothing" if estimate is None else estimate,
                   "a non-empty array of distinct model parameter names")
        estimate = []
    method = checks.choice(table, "method", "fit", list(FIT_METHODS), default="wls") or "wls"
    delays = _delays(checks, table.get("delay_s", {}), measured_tags)
    sample = checks.number(table, "sample_interval_s", "fit", 60.0, low=0.0, low_exclusive=True)
    profile = table.get("profile", False)
    if not isinstance(profile, bool):
        checks.add("fit.profile", profile, "true or false")
    if len(checks.issues) > n_issues:
        return None
    return ScenarioFit((checks.path.parent / batch_of).resolve(), tuple(estimate), method, delays, sample,
                       bool(profile))


def _delays(checks: SpecChecks, value: object, measured_tags: list[str] | None) -> dict[str, float]:
    if not isinstance(value, Mapping):
        checks.add("fit.delay_s", value, "a table of measured tag = delay in plant seconds")
        return {}
    out: dict[str, float] = {}
    for tag in value:
        if measured_tags is not None and tag not in measured_tags:
            checks.add(f"fit.delay_s.{tag}", tag, f"a measured tag of the unit ({', '.join(measured_tags)})")
            continue
        out[tag] = checks.number(value, tag, "fit.delay_s", low=0.0)
    return out
