"""``linetwin fit``'s fit, diagnostics and parameter set, from recorded batches already read (:mod:`.fit_history`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linetwin_cli.failures import EXIT_FAILURE, CommandError

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan
    from process_models.fitting import FitData
    from process_models.parameter_sets import ParameterSet, ParameterSetStore
    from twin_server.config import LineConfig, UnitConfig
    from twin_server.data_dir import LineDataDir
    from twin_server.historian.batches import RecordedBatch

__all__ = ["FitOutcome", "FitRequest", "fit_unit", "parent_set"]


@dataclass(frozen=True)
class FitRequest:
    """Everything ``linetwin fit`` decided before fitting (options validated, batches read)."""

    config: LineConfig
    unit: UnitConfig
    plan: ControlPlan
    data: LineDataDir
    batches: list[RecordedBatch]
    experiments: list[FitData]
    estimate: tuple[str, ...]
    method: str
    variance_models: Mapping[str, str]
    delays: Mapping[str, float]
    sample_interval_s: float
    parent: str | None
    max_relative_se: float
    profile: bool
    out: Path | None
    input_noise: bool = True
    """Add the read-back inputs' noise to the covariance (errors in variables)."""


@dataclass(frozen=True)
class FitOutcome:
    summary: str
    report_path: Path
    set_id: str | None
    problem: str | None
    """Why no set was stored (a parameter the data cannot identify), else None."""


def parent_set(request: FitRequest, store: ParameterSetStore) -> tuple[ParameterSet, bool]:
    """The set the fit starts from: ``--parent`` (must belong to this unit's declaration), else the set deployed to
    the unit (its deployment history in the data dir, :func:`twin_server.parameter_deployment.deployed_set_id`) when
    it is stored, verifies and belongs to the unit's declaration, else the unit's nominal set; and whether it is new
    to the store (the nominal set is stored on first use)."""
    from process_models.parameter_sets import (
        ParameterSetError,
        declaration_hash,
        nominal_parameter_set,
        unit_model_declaration,
    )
    from twin_server.parameter_deployment import deployed_set_id

    unit = request.unit
    declaration = unit_model_declaration(unit.kind, unit.model)
    if request.parent is not None:
        try:
            parent = store.get(store.resolve(request.parent))
        except ParameterSetError as exc:
            raise CommandError(f"--parent: {exc}") from None
        if parent.unit != unit.name or parent.declaration_hash != declaration_hash(declaration):
            raise CommandError(f"--parent {parent.id}: a set of unit '{parent.unit}' for declaration "
                               f"{parent.declaration_hash[:12]}…; expected one of unit '{unit.name}' for its current "
                               f"declaration {declaration_hash(declaration)[:12]}… (the [model] table changed?)")
        return parent, False
    deployed = deployed_set_id(request.data.parameter_sets, unit.name)
    if deployed is not None and deployed in store:
        try:
            parent = store.get(deployed)
        except ParameterSetError:
            parent = None
        if parent is not None and parent.unit == unit.name and parent.declaration_hash == declaration_hash(declaration):
            return parent, False
    nominal = nominal_parameter_set(unit.name, unit.kind, declaration,
                                    request.plan.model.declaration.parameter_values())
    return nominal, nominal.id not in store


def _iso(t_us: int) -> str:
    from twin_server.historian.timebase import from_us

    return from_us(t_us).isoformat()


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def fit_unit(request: FitRequest, progress: Callable[[str], None]) -> FitOutcome:
    """Fit, diagnose, report and store (see :mod:`linetwin_cli.fit`)."""
    from linetwin_cli.fit import FIT_RTOL
    from linetwin_cli.fit_report import plot_fit, summary_text, write_report
    from linetwin_cli.security import audit_admin
    from process_models.fit_diagnostics import identifiability, profile_interval, residual_statistics
    from process_models.fitting import FitError, fit_parameters
    from process_models.likelihood_fit import fit_maximum_likelihood
    from process_models.parameter_sets import ParameterSet, ParameterSetStore, utc_timestamp

    plan, model, unit = request.plan, request.plan.model, request.unit
    store = ParameterSetStore(request.data.parameter_sets)
    parent, parent_is_new = parent_set(request, store)
    fixed = {k: v for k, v in parent.values.items() if k not in request.estimate}
    experiments = [_with_parameters(e, fixed) for e in request.experiments]
    guess = {n: parent.values.get(n, model.declaration.parameter_values()[n]) for n in request.estimate}
    sigma_by_output = getattr(plan.make_estimator(), "measurement_std", None)
    if not sigma_by_output:
        raise CommandError(f"--unit {unit.name}: the unit's estimator declares no measurement noise; the fit weighs "
                           "each instrument by it", EXIT_FAILURE)
    tag_of = {m.output: m.tag for m in plan.measurements}
    measured = sorted({n for e in experiments for n in e.measurements})
    weights = {n: 1.0 / sigma_by_output[n] for n in measured}
    options: dict[str, Any] = {"rtol": FIT_RTOL}
    progress(f"fitting {', '.join(request.estimate)} of {unit.name} to {len(experiments)} batch(es) by "
             f"{'maximum likelihood' if request.method == 'ml' else 'weighted least squares'}")
    variance_parameters: dict[str, float] = {}
    log_likelihood = None
    try:
        if request.method == "ml":
            models = {n: request.variance_models.get(tag_of[n], "constant") for n in measured}
            ml = fit_maximum_likelihood(model, experiments, request.estimate, models, sigma_by_output,
                                        initial_guess=guess, progress=True, **options)
            fit, experiments, absolute = ml.fit, list(ml.experiments), True
            variance_parameters = {tag_of[k]: v for k, v in ml.variance_parameters.items()}
            log_likelihood = ml.log_likelihood
        else:
            fit = fit_parameters(model, experiments, request.estimate, initial_guess=guess, weights=weights,
                                 progress=True, **options)
            absolute = False
    except FitError as exc:
        raise CommandError(f"fit of {unit.name} failed: {exc}", EXIT_FAILURE) from None
    progress(f"fit: {fit.n_evaluations} model evaluations, {fit.wall_time_s:.1f} s; {fit.message}")
    assert fit.jacobian is not None
    ident = identifiability(fit, fit.jacobian, request.max_relative_se)
    profiles: dict[str, tuple[float, float]] = {}
    if request.profile and not ident.not_identifiable:
        for name in fit.names:
            progress(f"profile likelihood of {name}")
            try:
                profiles[name] = profile_interval(
                    model, experiments, fit, name, absolute, weights=None if absolute else weights,
                    on_step=lambda n, v, t: progress(f"  {n} = {v:.6g}: profile t {t:+.3f}"), **options)
            except FitError as exc:
                progress(f"  profile of {name} failed: {exc}")
    if request.input_noise and not ident.not_identifiable:   # an unidentifiable fit's covariance is unbounded anyway
        fit, profiles = _with_input_noise(model, experiments, fit, profiles, None if absolute else weights, options,
                                          progress)
    residuals = residual_statistics(fit, experiments, model, None if absolute else
                                    {n: sigma_by_output[n] * math.sqrt(fit.residual_variance) for n in measured})
    window = (_iso(min(b.start_us for b in request.batches)), _iso(max(b.end_us for b in request.batches)))
    report: dict[str, Any] = {
        "kind": "fit", "unit": unit.name, "model": unit.kind, "model_declaration": model.declaration.name,
        "method": request.method, "estimated": list(fit.names),
        "batches": [{"id": b.id, "start": _iso(b.start_us), "end": _iso(b.end_us), "complete": b.complete}
                    for b in request.batches],
        "estimates": {n: {
            "value": fit.estimates[n], "unit": _unit_of(model, n), "parent_value": parent.values.get(n),
            "standard_error": _finite(fit.standard_errors[n]),
            "standard_error_measurements": _finite(_se(fit.measurement_covariance, fit, n)),
            "standard_error_inputs": _finite(_se(fit.input_covariance, fit, n)),
            "linearised_95": [_finite(v) for v in fit.confidence_intervals[n]],
            "profile_95": list(profiles[n]) if n in profiles else None,
            "relative_standard_error": _finite(ident.relative_standard_errors[n]),
        } for n in fit.names},
        "correlation": [[_finite(float(x)) for x in row] for row in np.asarray(fit.correlation)],
        "identifiability": {
            "ranking": list(ident.ranking), "scores": dict(ident.scores),
            "eigenvalues": list(ident.eigenvalues), "eigenvectors": [list(v) for v in ident.eigenvectors],
            "condition_number": _finite(ident.condition_number),
            "not_identifiable": dict(ident.not_identifiable), "max_relative_se": request.max_relative_se},
        "residuals": {tag_of.get(k, k): v for k, v in residuals.items()},
        "variance_models": {tag_of[n]: request.variance_models.get(tag_of[n], "constant") for n in measured}
        if request.method == "ml" else None,
        "variance_parameters": variance_parameters or None,
        "declared_noise": {tag_of[n]: sigma_by_output[n] for n in measured},
        "log_likelihood": log_likelihood,
        "cost": fit.cost, "degrees_of_freedom": fit.degrees_of_freedom, "residual_variance": fit.residual_variance,
        "t_value": fit.t_value, "evaluations": fit.n_evaluations, "converged": fit.success, "message": fit.message,
        "delays_s": dict(request.delays), "sample_interval_s": request.sample_interval_s,
        "parent": parent.id, "data_window": list(window),
    }
    report = _json_safe(report)
    out = request.out or request.data.reports / f"fit-{unit.name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    problem = None
    if ident.not_identifiable:
        names = ", ".join(ident.not_identifiable)
        problem = (f"--estimate: the recorded batches cannot identify {names} ({ident.message()}); "
                   "no parameter set stored")
    set_id = None
    if problem is None:
        values = dict(parent.values)
        values.update(fit.estimates)
        cov = np.asarray(fit.covariance, dtype=float)
        parameter_set = ParameterSet(
            unit=unit.name, model=unit.kind, declaration_hash=parent.declaration_hash, values=values,
            covariance=tuple(tuple(float(x) for x in row) for row in cov), names=fit.names, parent=parent.id,
            batch_ids=tuple(b.id for b in request.batches), data_window=window, report=report,
            created=utc_timestamp())
        if parent_is_new:
            store.put(parent)
            audit_admin(request.data.security, "parameter_set_put", f"{request.config.name}.{unit.name}.parameter_set",
                        {"id": parent.id, "kind": "nominal"})
        set_id = store.put(parameter_set)
        audit_admin(request.data.security, "parameter_set_put", f"{request.config.name}.{unit.name}.parameter_set",
                    {"id": set_id, "parent": parent.id, "estimated": list(fit.names),
                     "batches": list(parameter_set.batch_ids)}, reason=f"linetwin fit --method {request.method}")
        report = {**report, "parameter_set": set_id}
    report_path = write_report(out, report)
    try:
        for path in plot_fit(out, fit, experiments, model, tag_of, request.batches):
            progress(f"plot {path}")
    except ImportError:
        progress("matplotlib is not installed: no plots")
    return FitOutcome(summary=summary_text(report), report_path=report_path, set_id=set_id, problem=problem)


def _with_input_noise(model: Any, experiments: list[FitData], fit: Any, profiles: dict[str, tuple[float, float]],
                      weights: Mapping[str, float] | None, options: Mapping[str, Any],
                      progress: Callable[[str], None]) -> tuple[Any, dict[str, tuple[float, float]]]:
    """The fit with its measured inputs' noise in the covariance (errors in variables,
    :mod:`process_models.input_uncertainty`), and the profile intervals widened about the estimate by the same
    ratio of standard errors (the profile is of the measurements' likelihood; its asymmetry is kept)."""
    from process_models.input_uncertainty import input_noise_covariance, with_input_uncertainty

    noisy = sorted({n for e in experiments for n in e.input_std})
    if not noisy:
        return fit, profiles
    progress(f"propagating the noise of the measured input(s) {', '.join(noisy)} into the covariance")
    total = with_input_uncertainty(fit, input_noise_covariance(model, experiments, fit, weights, **options))
    widened = {}
    for name, (lo, hi) in profiles.items():
        ratio = total.standard_errors[name] / fit.standard_errors[name]
        value = fit.estimates[name]
        widened[name] = (value - ratio * (value - lo), value + ratio * (hi - value))
    return total, widened


def _se(covariance: np.ndarray | None, fit: Any, name: str) -> float:
    """The standard error of ``name`` from one share of the covariance (NaN, reported as null: not computed)."""
    if covariance is None:
        return math.nan
    i = fit.names.index(name)
    return math.sqrt(max(float(np.asarray(covariance)[i, i]), 0.0))


def _with_parameters(exp: FitData, fixed: Mapping[str, float]) -> FitData:
    from dataclasses import replace

    return replace(exp, parameters={**fixed, **exp.parameters})


def _unit_of(model: Any, name: str) -> str:
    return next(p.unit for p in model.declaration.parameters if p.name == name)


def _json_safe(value: Any) -> Any:
    """NaN/infinity -> None, numpy scalars -> floats, tuples -> lists (the report is canonical JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    return str(value)
