"""Control plan for a batch cooling crystallizer unit, built from ``[units.<unit>.control]``.

PAT-style quality control: an EKF on the method-of-moments crystallizer (plus FBRM instrument model)
estimates the unmeasured moments, d43 and two kinetic constants from the slurry temperature, the
ATR-FTIR solute concentration and the FBRM chord count rate / mean chord length; an NMPC with a
shrinking horizon to batch end moves the jacket temperature setpoint to reach the target d43 with as
few fines as possible and a CV no worse than the baseline recipe's (objective:
:mod:`controllers.crystallization.objective`). The recipe (linear or natural cooling) is what AUTO mode follows
and what the supervisor falls back to.

Options (all optional; units in the names)::

    strategy = "linear_cooling"        # linear_cooling | natural_cooling  (recipe for AUTO and fallback)
    initial_mode = "manual"            # manual | auto | mpc
    fallback = "recipe"                # recipe | hold_last
    target_d43_um = 400.0              # default target, writable over OPC UA (control.target_d43)
    batch_duration_s = 7200.0
    estimator_period_s = 60.0
    controller_period_s = 120.0
    horizon = 20                       # NMPC intervals to batch end
    time_scale = 1.0                   # twin clock / wall clock (HIL at speed N: N)
    solve_deadline_s = 5.0             # wall seconds an NMPC solve may take before the fallback is used
    initial_temperature_c = 40.0       # recipe start
    final_temperature_c = 25.0         # recipe end / natural cooling coolant temperature
    jacket_limits_c = [10.0, 40.0]     # NMPC / supervisor bounds of the jacket setpoint
    max_jacket_move_c = 1.0            # largest change per controller period
    max_supersaturation = 0.0          # > 0: soft NMPC path bound on relative supersaturation (fewer fines)
    fines_weight = 1.0                 # NMPC weight of the batch-end crystal count (mu0 / seed count)
    seed_loading_kg_per_kg = 0.0035    # seed mass per kg solvent at StartBatch
    seed_mean_size_um = 150.0
    seed_std_size_um = 15.0
    estimate_parameters = ["growth_rate_constant", "secondary_nucleation_rate_constant"]
    prediction_model = "physics"       # physics | surrogate: NMPC prediction model (docs/surrogates.md)
    surrogate_path = ""                # surrogate artifact directory (prediction_model = "surrogate")
    disagreement_threshold = 0.02      # surrogate vs physics state NRMSE above which the NMPC uses physics
    solver = "ipopt"                   # ipopt | fatrop | sqp_hpipm | sqp_qrqp: NMPC solver (docs/control.md)
    [units.<unit>.control.measurement_std]   # 1 sigma, in the tags' engineering units
    temperature = 0.1
    solute_concentration = 0.5
    mean_chord_length = 3.0
    chord_count_rate = 50.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from controllers.control_plan import (
    ControlPlan,
    ManipulatedBinding,
    MeasurementBinding,
    PublishedOutput,
    TargetSpec,
)
from controllers.crystallization.objective import (
    CrystallizationObjective,
    crystallizer_nmpc_config,
    linear_cooling_recipe,
)
from controllers.nmpc import NonlinearMpc
from controllers.nmpc_solvers import SolverMethod, SolverOptions
from controllers.plan_registry import register_control_plan
from controllers.supervisor import Fallback, RecipeProfile, SetpointLimits, SupervisorConfig
from controllers.surrogate_prediction import SurrogateFallbackNmpc, TrustSettings
from process_models.crystallization.crystallizer import crystallizer_model, moments_initial_state, seed_moments
from process_models.crystallization.kinetics import solubility
from process_models.declaration import compile_model
from process_models.engineering_units import UNITS_BY_CODE
from process_models.estimator import ExtendedKalmanFilter
from process_models.instruments import fbrm_instruments, with_instruments
from process_models.simulator import simulate

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
    seed_loading_kg_per_kg: float = 0.0035
    seed_mean_size_um: float = 150.0
    seed_std_size_um: float = 15.0
    estimate_parameters: tuple[str, ...] = ("growth_rate_constant", "secondary_nucleation_rate_constant")
    prediction_model: str = "physics"
    surrogate_path: str = ""
    disagreement_threshold: float = 0.02
    solver: str = "ipopt"
    measurement_std: Mapping[str, float] = field(default_factory=lambda: {
        "temperature": 0.1, "solute_concentration": 0.5, "mean_chord_length": 3.0, "chord_count_rate": 50.0})


_CHOICES = {"strategy": ("linear_cooling", "natural_cooling"), "initial_mode": ("manual", "auto", "mpc"),
            "fallback": ("recipe", "hold_last"), "prediction_model": ("physics", "surrogate"),
            "solver": tuple(m.value for m in SolverMethod)}
_POSITIVE = ("target_d43_um", "batch_duration_s", "estimator_period_s", "controller_period_s", "time_scale",
             "solve_deadline_s", "max_jacket_move_c", "seed_loading_kg_per_kg", "fines_weight", "seed_mean_size_um",
             "seed_std_size_um", "disagreement_threshold")


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
        elif key == "horizon":
            if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 200:
                issues.append((full, value, "an integer in [2, 200]"))
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


def _is_number(v: object) -> bool:
    """A finite int or float (not a bool); an int too large for a float is not a number here."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def recipe_profile(options: CrystallizerControlOptions) -> RecipeProfile:
    """Jacket programme (K) of the configured strategy over batch time."""
    start_k = UNITS_BY_CODE["CEL"].to_si(options.initial_temperature_c)
    end_k = UNITS_BY_CODE["CEL"].to_si(options.final_temperature_c)
    if options.strategy == "natural_cooling":
        return RecipeProfile({JACKET: ((0.0, end_k),)})
    return linear_cooling_recipe(start_k, end_k, options.batch_duration_s)


def build_crystallizer_plan(model_options: Mapping[str, Any], raw_control: Mapping[str, Any],
                            prefix: str, tags: set[str]) -> ControlPlan:
    """The crystallizer's control plan. Raises ``ValueError`` listing every problem of the control table."""
    options, issues = parse_options(raw_control, prefix, tags)
    if issues:
        raise ValueError("; ".join(f"{k}: got {g!r}; expected {e}" for k, g, e in issues))
    declaration = with_instruments(crystallizer_model({**dict(model_options), "resolution": "moments"}),
                                   fbrm_instruments())
    model = compile_model(declaration)
    nominal = declaration.parameter_values()
    unknown = [p for p in options.estimate_parameters if p not in nominal]
    if unknown:
        raise ValueError(f"{prefix}.estimate_parameters: got {unknown}; expected parameters of the model: "
                         + ", ".join(sorted(nominal)))
    cel, um = UNITS_BY_CODE["CEL"], UNITS_BY_CODE["4H"]
    solvent_density = nominal["solvent_density"]
    seed = _seed_state(options, nominal)
    recipe = recipe_profile(options)
    baseline = simulate(model, seed, [0.0, options.batch_duration_s], {JACKET: lambda t: recipe.value(JACKET, t)})
    baseline_cv = float(baseline.output("cv")[-1])
    objective = CrystallizationObjective(
        target_d43_m=um.to_si(options.target_d43_um), seed_count_per_kg=seed["mu0"], max_cv=baseline_cv,
        max_supersaturation=options.max_supersaturation if options.max_supersaturation > 0 else math.inf,
        fines_weight=options.fines_weight)
    low_k, high_k = (cel.to_si(v) for v in options.jacket_limits_c)
    nmpc_config = crystallizer_nmpc_config(
        objective, options.controller_period_s, options.horizon, low_k, high_k, options.max_jacket_move_c,
        max_cpu_time_s=options.solve_deadline_s,
        state_scales={name: abs(value) for name, value in seed.items() if value})  # NLP well scaled
    nmpc_config = replace(nmpc_config, solver=SolverOptions(options.solver))
    nmpc: NonlinearMpc | SurrogateFallbackNmpc
    if options.prediction_model == "surrogate":
        from process_models.surrogates.artifact import SurrogateArtifactError, load_artifact

        try:
            artifact = load_artifact(options.surrogate_path, model)
        except SurrogateArtifactError as exc:
            raise ValueError(f"{prefix}.surrogate_path: {exc}") from exc
        nmpc = SurrogateFallbackNmpc(model, nmpc_config, artifact, TrustSettings(options.disagreement_threshold))
    else:
        nmpc = NonlinearMpc(model, nmpc_config)
    limits = SetpointLimits(JACKET, "K", low_k, high_k,
                            max_rate_per_s=options.max_jacket_move_c / options.controller_period_s)
    supervisor_config = SupervisorConfig(limits=(limits,), fallback=Fallback(options.fallback), recipe=recipe,
                                         solve_deadline_s=options.solve_deadline_s)
    kmq = UNITS_BY_CODE["KMQ"]
    measurements = (
        MeasurementBinding("temperature", "temperature", cel),
        MeasurementBinding("solute_concentration", "solute_concentration", kmq, 1.0 / solvent_density),
        MeasurementBinding("chord_count_rate", "chord_count_rate", UNITS_BY_CODE["C62"]),
        MeasurementBinding("mean_chord_length", "mean_chord_length", um),
    )
    measurement_noise = {m.output: m.to_model(options.measurement_std[m.tag]) - m.to_model(0.0)
                         for m in measurements}
    period = options.estimator_period_s

    def make_estimator() -> ExtendedKalmanFilter:
        noise = {"solute_concentration": 1e-4, "temperature": 0.05,
                 **{f"mu{i}": 0.005 * seed[f"mu{i}"] for i in range(5)},
                 **{p: 0.01 * nominal[p] for p in options.estimate_parameters}}
        return ExtendedKalmanFilter(model, [m.output for m in measurements], period, process_noise=noise,
                                    measurement_noise=measurement_noise,
                                    estimate_parameters=list(options.estimate_parameters))

    def initial_estimate(measured: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        x0 = _seed_state(options, nominal, measured.get("temperature"), measured.get("solute_concentration"))
        std0 = {name: 0.1 * abs(v) for name, v in x0.items()}
        std0.update(temperature=0.5, solute_concentration=0.02 * x0["solute_concentration"])
        std0.update({p: 0.3 * nominal[p] for p in options.estimate_parameters})
        return x0, std0

    published = (
        PublishedOutput("d43", "d43", "4H", um.from_si, "volume-weighted mean crystal size d43", SIZE_RANGE_UM),
        PublishedOutput("d10", "d10", "4H", um.from_si, "number-mean crystal size d10", SIZE_RANGE_UM),
        PublishedOutput("cv", "cv", "C62", lambda v: v, "number-based coefficient of variation of the CSD"),
        PublishedOutput("supersaturation", "supersaturation", "C62", lambda v: v,
                        "relative supersaturation (c - c*)/c*"),
        PublishedOutput("solute_mass_concentration", "solute_concentration", "KMQ", lambda v: v,
                        "dissolved solute concentration"),
        PublishedOutput("yield_fraction", "yield", "C62", lambda v: v, "crystallized fraction of all solute",
                        (0.0, 1.0)),
        PublishedOutput("mu0", "crystal_count", "C62", lambda v: v, "crystal count per kg solvent (mu0)"),
    )
    return ControlPlan(
        model=model, make_estimator=make_estimator, nmpc=nmpc, supervisor_config=supervisor_config,
        measurements=measurements,
        manipulated=(ManipulatedBinding(JACKET, "jacket_temperature_setpoint", cel, "jacket_temperature"),),
        initial_estimate=initial_estimate, estimated_parameters=options.estimate_parameters,
        target=TargetSpec("d43", "d43", um, TARGET_D43_RANGE_UM[0], TARGET_D43_RANGE_UM[1], options.target_d43_um),
        published=published, strategy=options.strategy,
        estimator_period_s=options.estimator_period_s, controller_period_s=options.controller_period_s,
        batch_duration_s=options.batch_duration_s, solve_deadline_s=options.solve_deadline_s,
        time_scale=options.time_scale, initial_mode=options.initial_mode,
    )


def _seed_state(options: CrystallizerControlOptions, nominal: Mapping[str, float],
                temperature_k: float | None = None, concentration: float | None = None) -> dict[str, float]:
    """Seeded initial state: saturated at the recipe start temperature unless measurements say otherwise."""
    t_k = temperature_k if temperature_k is not None else UNITS_BY_CODE["CEL"].to_si(options.initial_temperature_c)
    c0 = concentration if concentration is not None else float(solubility(t_k, nominal))
    um = UNITS_BY_CODE["4H"]
    moments = seed_moments(options.seed_loading_kg_per_kg, um.to_si(options.seed_mean_size_um),
                           um.to_si(options.seed_std_size_um), nominal["crystal_density"],
                           nominal.get("volume_shape_factor", 1.0))
    return moments_initial_state(c0, moments, t_k)


register_control_plan("crystallizer", parse_options, build_crystallizer_plan)
