"""The options of a crystallizer's ``[units.<unit>.control]`` table, validated without building anything (no
casadi, no NMPC: loading a line config imports this, :mod:`controllers.crystallization.control_plan` builds the plan).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controllers.online_parameters import (
    DEFAULT_HALFWIDTH_LIMIT,
    OnlineParameter,
    OnlineParameterOptions,
    parse_online_parameters,
    resolve_online_parameters,
)
from controllers.online_parameters import (
    is_finite_number as _is_number,
)
from controllers.plan_registry import ControlPlanSpec

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan
    from process_models.declaration import ModelDeclaration

JACKET = "jacket_temperature"
TARGET_D43_RANGE_UM = (20.0, 3000.0)
"""Accepted batch-end d43 targets (µm)."""
SIZE_RANGE_UM = (0.0, TARGET_D43_RANGE_UM[1])
"""EURange of the published crystal sizes (µm): from nothing to the largest target."""
REQUIRED_TAGS = ("temperature", "jacket_temperature", "solute_concentration", "chord_count_rate",
                 "mean_chord_length", "jacket_temperature_setpoint")


@dataclass(frozen=True)
class CrystallizerControlOptions:
    strategy: str = "linear_cooling"
    initial_mode: str = "manual"
    fallback: str = "recipe"
    target_d43_um: float = 400.0
    batch_duration_s: float = 7200.0
    estimator_period_s: float = 60.0
    controller_period_s: float = 120.0
    horizon: int = 20
    time_scale: float = 1.0
    solve_deadline_s: float = 5.0
    initial_temperature_c: float = 40.0
    final_temperature_c: float = 25.0
    jacket_limits_c: tuple[float, float] = (10.0, 40.0)
    max_jacket_move_c: float = 1.0
    max_supersaturation: float = 0.0
    fines_weight: float = 1.0
    cv_weight: float = 100.0
    estimator_realizable_moments: bool = False
    """The EKF keeps the moments realizable (d10 ≤ d21 ≤ d32 ≤ d43) by shortening a correction that would leave
    them (``ExtendedKalmanFilter(keep_state_constraints=True)``). Off by default: on the robustness campaign it
    rescued the one batch the loop lost (plant 176) but, on the first 129 plants, raised the MPC's median |d43 error|
    from 0.61 to 1.06 % (docs/campaigns.md)."""
    seed_loading_kg_per_kg: float = 0.0035
    seed_mean_size_um: float = 150.0
    seed_std_size_um: float = 15.0
    estimate_parameters: tuple[str, ...] = ("growth_rate_constant", "secondary_nucleation_rate_constant")
    online_parameters: tuple[OnlineParameterOptions, ...] = ()
    """More online parameters, each with bounds (``[control.online_parameters.<name>]``)."""
    online_halfwidth_limit: float = DEFAULT_HALFWIDTH_LIMIT
    """The NMPC uses an online value while 1.96 σ / |value| is at most this, else the deployed value."""
    forecast_band_scale: float = 1.0
    """σ of a forecast × this (the RMS of past batches' normalised errors; 1: as propagated)."""
    forecast_band_batches: int = 0
    """How many past batches ``forecast_band_scale`` was learnt from (the band's Student's t; 0: 1.96)."""
    prediction_model: str = "physics"
    surrogate_path: str = ""
    disagreement_threshold: float = 0.02
    solver: str = "ipopt"
    measurement_std: Mapping[str, float] = field(default_factory=lambda: {
        "temperature": 0.1, "solute_concentration": 0.5, "mean_chord_length": 3.0, "chord_count_rate": 50.0})


SOLVER_METHODS = ("ipopt", "fatrop", "sqp_hpipm", "sqp_qrqp")
"""``controllers.nmpc_solvers.SolverMethod`` values, spelled out so that checking a config imports no casadi."""
_CHOICES = {"strategy": ("linear_cooling", "natural_cooling"), "initial_mode": ("manual", "auto", "mpc"),
            "fallback": ("recipe", "hold_last"), "prediction_model": ("physics", "surrogate"),
            "solver": SOLVER_METHODS}
_POSITIVE = ("target_d43_um", "batch_duration_s", "estimator_period_s", "controller_period_s", "time_scale",
             "solve_deadline_s", "max_jacket_move_c", "seed_loading_kg_per_kg", "fines_weight", "cv_weight",
             "seed_mean_size_um", "seed_std_size_um", "disagreement_threshold", "online_halfwidth_limit",
             "forecast_band_scale")


def parse_options(raw: Mapping[str, Any], prefix: str, tags: set[str]) -> tuple[CrystallizerControlOptions,
                                                                               list[tuple[str, object, str]]]:
    """Validate a ``[units.<unit>.control]`` table; returns options and every problem as (key, got, expected)."""
    issues: list[tuple[str, object, str]] = []
    defaults = CrystallizerControlOptions()
    values: dict[str, Any] = {}
    known = set(CrystallizerControlOptions.__dataclass_fields__)
    for key, value in raw.items():
        full = f"{prefix}.{key}"
        if key not in known:
            issues.append((full, "an unknown key", "one of " + ", ".join(sorted(known))))
        elif key in _CHOICES:
            if value not in _CHOICES[key]:
                issues.append((full, value, "one of " + ", ".join(_CHOICES[key])))
            else:
                values[key] = value
        elif key == "estimator_realizable_moments":
            if not isinstance(value, bool):
                issues.append((full, value, "true or false"))
            else:
                values[key] = value
        elif key == "horizon":
            if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 200:
                issues.append((full, value, "an integer in [2, 200]"))
            else:
                values[key] = value
        elif key == "forecast_band_batches":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                issues.append((full, value, "an integer >= 0 (past batches forecast_band_scale was learnt from)"))
            else:
                values[key] = value
        elif key == "jacket_limits_c":
            if (not isinstance(value, list) or len(value) != 2 or not all(_is_number(v) for v in value)
                    or not value[0] < value[1]):
                issues.append((full, value, "[low, high] in °C with low < high"))
            else:
                values[key] = (float(value[0]), float(value[1]))
        elif key == "surrogate_path":
            if not isinstance(value, str) or not value:
                issues.append((full, value, "the path of a surrogate artifact directory"))
            elif not (Path(value) / "surrogate.json").is_file():
                issues.append((full, value, "a surrogate artifact directory (with surrogate.json; "
                                            "`linetwin surrogate train`)"))
            else:
                values[key] = value
        elif key == "estimate_parameters":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                issues.append((full, value, "a list of model parameter names"))
            else:
                values[key] = tuple(value)
        elif key == "online_parameters":
            entries, found = parse_online_parameters(value, full)
            issues.extend(found)
            values[key] = entries
        elif key == "measurement_std":
            if not isinstance(value, Mapping):
                issues.append((full, value, "a table tag = standard deviation"))
                continue
            stds = dict(defaults.measurement_std)
            for tag, sd in value.items():
                if tag not in defaults.measurement_std:
                    issues.append((f"{full}.{tag}", "an unknown key", "one of " + ", ".join(defaults.measurement_std)))
                elif not _is_number(sd) or sd <= 0:
                    issues.append((f"{full}.{tag}", sd, "a positive number (tag units)"))
                else:
                    stds[tag] = float(sd)
            values[key] = stds
        elif not _is_number(value):
            issues.append((full, value, "a finite number"))
        elif key in _POSITIVE and value <= 0:
            issues.append((full, value, "a number > 0"))
        else:
            values[key] = float(value)
    options = CrystallizerControlOptions(**{**defaults.__dict__, **values})
    if options.controller_period_s < options.estimator_period_s or (
            options.controller_period_s % options.estimator_period_s) > 1e-9:
        issues.append((f"{prefix}.controller_period_s", options.controller_period_s,
                       f"a whole multiple of estimator_period_s ({options.estimator_period_s:g} s)"))
    if options.prediction_model == "surrogate" and not options.surrogate_path and "surrogate_path" not in raw:
        issues.append((f"{prefix}.surrogate_path", "nothing", 'a surrogate artifact directory when prediction_model '
                                                              '= "surrogate"'))
    low, high = options.jacket_limits_c
    for key in ("initial_temperature_c", "final_temperature_c"):
        if not low <= getattr(options, key) <= high:
            issues.append((f"{prefix}.{key}", getattr(options, key), f"a value inside jacket_limits_c [{low}, {high}]"))
    missing = [t for t in REQUIRED_TAGS if t not in tags]
    if missing:
        issues.append((prefix, f"a unit without tags {missing}", "the crystallizer tags " + ", ".join(REQUIRED_TAGS)))
    return options, issues


def plan_declaration(model_options: Mapping[str, Any], raw_control: Mapping[str, Any], prefix: str,
                     tags: set[str]) -> tuple[CrystallizerControlOptions, ModelDeclaration]:
    """The control options and the declaration the estimator and NMPC run on (the crystallizer's method of moments
    with the FBRM instrument model). Raises ``ValueError`` listing every problem of the control table, or the
    estimated parameters the model does not have. Builds no NMPC (``linetwin check`` runs this)."""
    from process_models.crystallization.crystallizer import crystallizer_model
    from process_models.instruments import fbrm_instruments, with_instruments

    options, issues = parse_options(raw_control, prefix, tags)
    if issues:
        raise ValueError("; ".join(f"{k}: got {g!r}; expected {e}" for k, g, e in issues))
    declaration = with_instruments(crystallizer_model({**dict(model_options), "resolution": "moments"}),
                                   fbrm_instruments())
    online_parameters_of(options, declaration, prefix)
    return options, declaration


def online_parameters_of(options: CrystallizerControlOptions, declaration: ModelDeclaration,
                         prefix: str) -> tuple[OnlineParameter, ...]:
    """The online parameters (``estimate_parameters`` and ``online_parameters``) checked against the model's
    parameters; raises ``ValueError`` listing every unknown name and bad bound."""
    declared = {p.name: p for p in declaration.parameters}
    online, issues = resolve_online_parameters(options.estimate_parameters, options.online_parameters, declared,
                                               prefix)
    if issues:
        raise ValueError("; ".join(f"{k}: got {g!r}; expected {e}" for k, g, e in issues))
    return online


def _check_plan(model_options: Mapping[str, Any], raw_control: Mapping[str, Any], prefix: str,
                tags: set[str]) -> None:
    plan_declaration(model_options, raw_control, prefix, tags)


def _build_plan(model_options: Mapping[str, Any], raw_control: Mapping[str, Any], prefix: str,
                tags: set[str]) -> ControlPlan:
    from controllers.crystallization.control_plan import build_crystallizer_plan

    return build_crystallizer_plan(model_options, raw_control, prefix, tags)


CRYSTALLIZER_CONTROL = ControlPlanSpec("crystallizer", parse_options, _build_plan, _check_plan)
"""The crystallizer's entry in the ``control_plan`` column of :data:`process_models.registry.UNIT_KINDS`."""
