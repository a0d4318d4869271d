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
    online_halfwidth_limit = 0.25      # NMPC uses an online value while 1.96 σ/|value| <= this, else the deployed one
    forecast_band_scale = 1.0          # forecast σ × this: RMS of past batches' (realised − mean)/σ (docs/forecast.md)
    forecast_band_batches = 0          # past batches it was learnt from (band ± Student's t; 0: ± 1.96)
    [units.<unit>.control.online_parameters.solubility_coefficient_0]   # more online parameters, with bounds
    lower = 0.2047                     # the parameter's SI unit (kg/kg here)
    upper = 0.2127
    initial_std = 0.001                # 1 σ at StartBatch (default 30 % of the declared value)
    random_walk_std = 2e-5             # 1 σ change per estimator period (default 1 % of the declared value)
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
from dataclasses import replace
from typing import Any

from controllers.control_plan import (
    ControlPlan,
    ManipulatedBinding,
    MeasurementBinding,
    PublishedOutput,
    TargetSpec,
)
from controllers.crystallization.control_options import (
    JACKET,
    SIZE_RANGE_UM,
    TARGET_D43_RANGE_UM,
    CrystallizerControlOptions,
    online_parameters_of,
    plan_declaration,
)
from controllers.crystallization.objective import (
    CrystallizationObjective,
    crystallizer_nmpc_config,
    linear_cooling_recipe,
)
from controllers.nmpc import NonlinearMpc
from controllers.nmpc_solvers import SolverOptions
from controllers.supervisor import Fallback, RecipeProfile, SetpointLimits, SupervisorConfig
from controllers.surrogate_prediction import SurrogateFallbackNmpc, TrustSettings
from process_models.crystallization.crystallizer import moments_initial_state, seed_moments
from process_models.crystallization.kinetics import solubility
from process_models.declaration import compile_model
from process_models.engineering_units import UNITS_BY_CODE
from process_models.estimator import ExtendedKalmanFilter
from process_models.forecast import BandCalibration
from process_models.simulator import simulate

FORECAST_OUTPUTS = ("d43", "cv", "crystal_count", "yield")
"""The quality outputs a crystallizer forecast predicts (``published`` names): d43, number CV, the crystal count
(seeds plus nucleated fines: the fines measure of the moment model, which carries no size distribution) and yield."""


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
    options, declaration = plan_declaration(model_options, raw_control, prefix, tags)
    online = online_parameters_of(options, declaration, prefix)
    model = compile_model(declaration)
    nominal = declaration.parameter_values()
    cel, um = UNITS_BY_CODE["CEL"], UNITS_BY_CODE["4H"]
    solvent_density = nominal["solvent_density"]
    seed = _seed_state(options, nominal)
    recipe = recipe_profile(options)
    baseline = simulate(model, seed, [0.0, options.batch_duration_s], {JACKET: lambda t: recipe.value(JACKET, t)})
    baseline_cv = float(baseline.output("cv")[-1])
    objective = CrystallizationObjective(
        target_d43_m=um.to_si(options.target_d43_um), seed_count_per_kg=seed["mu0"], max_cv=baseline_cv,
        max_supersaturation=options.max_supersaturation if options.max_supersaturation > 0 else math.inf,
        fines_weight=options.fines_weight, cv_weight=options.cv_weight)
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

    def make_estimator(parameters: Mapping[str, float] | None = None) -> ExtendedKalmanFilter:
        """The EKF on the declaration's parameters with ``parameters`` (a deployed parameter set) over them."""
        noise = {"solute_concentration": 1e-4, "temperature": 0.05,
                 **{f"mu{i}": 0.005 * seed[f"mu{i}"] for i in range(5)},
                 **{p.name: p.random_walk_std for p in online}}
        return ExtendedKalmanFilter(model, [m.output for m in measurements], period, process_noise=noise,
                                    measurement_noise=measurement_noise,
                                    estimate_parameters=[p.name for p in online],
                                    parameter_bounds={p.name: (p.lower, p.upper) for p in online},
                                    parameters=dict(parameters) if parameters else None,
                                    keep_state_constraints=options.estimator_realizable_moments)

    def initial_estimate(measured: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        x0 = _seed_state(options, nominal, measured.get("temperature"), measured.get("solute_concentration"))
        std0 = {name: 0.1 * abs(v) for name, v in x0.items()}
        std0.update(temperature=0.5, solute_concentration=0.02 * x0["solute_concentration"])
        std0.update({p.name: p.initial_std for p in online})
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
        initial_estimate=initial_estimate, estimated_parameters=tuple(p.name for p in online),
        target=TargetSpec("d43", "d43", um, TARGET_D43_RANGE_UM[0], TARGET_D43_RANGE_UM[1], options.target_d43_um),
        published=published, strategy=options.strategy,
        estimator_period_s=options.estimator_period_s, controller_period_s=options.controller_period_s,
        batch_duration_s=options.batch_duration_s, solve_deadline_s=options.solve_deadline_s,
        time_scale=options.time_scale, initial_mode=options.initial_mode,
        online_parameters=online, online_halfwidth_limit=options.online_halfwidth_limit,
        forecast_outputs=FORECAST_OUTPUTS,
        forecast_band=BandCalibration(options.forecast_band_scale, options.forecast_band_batches),
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


