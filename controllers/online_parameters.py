"""Online parameters: which of the estimator's parameter estimates the NMPC may use, and the option table for them.

The estimator (:class:`process_models.estimator.ExtendedKalmanFilter`) tracks some model parameters as random
walks. An online estimate is only as good as the data has made it: at StartBatch its interval is as wide as the
configured initial uncertainty, and a parameter the recent data does not excite stays wide. The gate:

    the NMPC predicts with the online value while ``1.96 σ / |value|`` (the 95 % interval's half-width relative to
    the value) is at most ``limit`` (``online_halfwidth_limit``), and with the deployed value otherwise.

The deployed value is the one the NMPC was built with (the declared model, or the parameter set deployed into the
twin): a gated-out parameter is simply not handed to the NMPC as an override. Kind-independent; the options table
is parsed without casadi (loading a config imports this).

Option table (``[units.<unit>.control.online_parameters.<parameter>]``; the parameter's SI unit, as declared)::

    lower = 0.2047             # required: the estimate is kept in [lower, upper]
    upper = 0.2127
    initial_std = 0.001        # 1 σ at StartBatch (default: 30 % of the declared value)
    random_walk_std = 2e-5     # 1 σ random change per estimator period (default: 1 % of the declared value)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Z_95 = 1.959963984540054
"""Two-sided 95 % quantile of the standard normal distribution."""
DEFAULT_HALFWIDTH_LIMIT = 0.25
"""Default ``online_halfwidth_limit``: an online value is used while its 95 % half-width is within 25 % of it
(about 13 % relative σ: the first 10–20 minutes of a crystallizer batch run on the deployed values)."""
DEFAULT_INITIAL_STD_FRACTION = 0.3
DEFAULT_RANDOM_WALK_FRACTION = 0.01
_KEYS = ("lower", "upper", "initial_std", "random_walk_std")


@dataclass(frozen=True, slots=True)
class OnlineParameterOptions:
    """One ``online_parameters`` entry as configured (None: the default)."""

    name: str
    lower: float
    upper: float
    initial_std: float | None = None
    random_walk_std: float | None = None


@dataclass(frozen=True, slots=True)
class OnlineParameter:
    """An online parameter as the plan runs it: name, declared SI unit (text), bounds, the StartBatch 1 σ and the
    random-walk 1 σ per estimator period, all in that unit."""

    name: str
    unit: str
    lower: float
    upper: float
    initial_std: float
    random_walk_std: float


@dataclass(frozen=True, slots=True)
class OnlineParameterState:
    """One online parameter now: estimate and 1 σ (its unit), relative 95 % half-width, and whether the NMPC uses
    the online value (``in_use``) or the deployed one (``deployed``, its unit)."""

    value: float
    std: float
    relative_halfwidth: float
    in_use: bool
    deployed: float

    @property
    def source(self) -> str:
        """``online`` or ``deployed``: which value the NMPC predicts with."""
        return "online" if self.in_use else "deployed"


def relative_halfwidth(value: float, std: float) -> float:
    """``1.96 σ / |value|`` (inf for a zero or non-finite value)."""
    if not (math.isfinite(value) and math.isfinite(std)) or value == 0.0:
        return math.inf
    return Z_95 * abs(std) / abs(value)


def gate(estimates: Mapping[str, float], stds: Mapping[str, float], deployed: Mapping[str, float],
         limit: float) -> dict[str, OnlineParameterState]:
    """Each estimated parameter's state under the gate (module docstring)."""
    out: dict[str, OnlineParameterState] = {}
    for name, value in estimates.items():
        ratio = relative_halfwidth(value, stds.get(name, math.inf))
        out[name] = OnlineParameterState(float(value), float(stds.get(name, math.inf)), ratio, ratio <= limit,
                                         float(deployed[name]))
    return out


def parse_online_parameters(raw: object, prefix: str) -> tuple[tuple[OnlineParameterOptions, ...],
                                                                list[tuple[str, object, str]]]:
    """Validate the ``online_parameters`` table (names are checked against the model where the plan is built);
    returns the entries and every problem as ``(key, got, expected)``."""
    issues: list[tuple[str, object, str]] = []
    if not isinstance(raw, Mapping):
        return (), [(prefix, raw, "a table: parameter name = {lower, upper[, initial_std, random_walk_std]}")]
    entries: list[OnlineParameterOptions] = []
    for name, table in raw.items():
        key = f"{prefix}.{name}"
        if not isinstance(table, Mapping):
            issues.append((key, table, "a table {lower, upper[, initial_std, random_walk_std]} (parameter units)"))
            continue
        values: dict[str, float] = {}
        for k, v in table.items():
            if k not in _KEYS:
                issues.append((f"{key}.{k}", "an unknown key", "one of " + ", ".join(_KEYS)))
            elif not is_finite_number(v):
                issues.append((f"{key}.{k}", v, "a finite number (the parameter's SI unit)"))
            elif k in ("initial_std", "random_walk_std") and v < 0:
                issues.append((f"{key}.{k}", v, "a number >= 0 (the parameter's SI unit)"))
            else:
                values[k] = float(v)
        missing = [k for k in ("lower", "upper") if k not in table]
        if missing:
            issues.append((key, f"no {' and no '.join(missing)}", "bounds lower < upper (the parameter's SI unit)"))
            continue
        if "lower" in values and "upper" in values and not values["lower"] < values["upper"]:
            issues.append((f"{key}.upper", values["upper"], f"a bound above lower = {values['lower']:g}"))
            continue
        if "lower" in values and "upper" in values:
            entries.append(OnlineParameterOptions(name, values["lower"], values["upper"], values.get("initial_std"),
                                                  values.get("random_walk_std")))
    return tuple(entries), issues


def resolve_online_parameters(names: tuple[str, ...], configured: tuple[OnlineParameterOptions, ...],
                              declared: Mapping[str, Any], prefix: str) -> tuple[tuple[OnlineParameter, ...],
                                                                                 list[tuple[str, object, str]]]:
    """The online parameters of a plan: ``names`` (``estimate_parameters``) and every ``configured`` entry, checked
    against ``declared`` (name → :class:`process_models.declaration.Parameter`): unknown names, bounds outside the
    declared ones or not containing the declared value are issues ``(key, got, expected)``."""
    issues: list[tuple[str, object, str]] = []
    by_name = {c.name: c for c in configured}
    unknown = [n for n in names if n not in declared and n not in by_name]
    if unknown:
        issues.append((f"{prefix}.estimate_parameters", unknown,
                       "parameters of the model: " + ", ".join(sorted(declared))))
    out: list[OnlineParameter] = []
    for name in dict.fromkeys((*names, *by_name)):
        key = f"{prefix}.online_parameters.{name}"
        spec = declared.get(name)
        if spec is None:
            if name in by_name:
                issues.append((key, "an unknown parameter", "a parameter of the model: " + ", ".join(sorted(declared))))
            continue
        if name not in by_name:
            key = f"{prefix}.estimate_parameters"
        c = by_name.get(name)
        lower, upper = (c.lower, c.upper) if c else (spec.lower, spec.upper)
        if not (spec.lower <= lower < upper <= spec.upper):
            issues.append((key, [lower, upper], f"bounds inside the declared [{spec.lower:g}, {spec.upper:g}] "
                                                f"{spec.unit}"))
            continue
        if not lower <= spec.value <= upper:
            issues.append((key, [lower, upper], f"bounds containing the deployed value {spec.value:g} {spec.unit}"))
            continue
        initial = c.initial_std if c and c.initial_std is not None else DEFAULT_INITIAL_STD_FRACTION * abs(spec.value)
        walk = c.random_walk_std if c and c.random_walk_std is not None else \
            DEFAULT_RANDOM_WALK_FRACTION * abs(spec.value)
        out.append(OnlineParameter(name, spec.unit, lower, upper, initial, walk))
    return tuple(out), issues


def is_finite_number(v: object) -> bool:
    """A finite int or float (not a bool); an int too large for a float is not a number here."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False
