"""From a declared model to a validated surrogate artifact: design -> dataset -> training -> test -> artifact.

:func:`design_for_source` picks the default design of a case (see :mod:`.design`; for a chromatography column a
load-wash-elute programme design, :func:`chromatography_design`), :func:`train_surrogate` runs the whole
pipeline and :func:`evaluate_artifact` re-simulates the held-out test runs with the physics model and compares
(accuracy and wall time measured in the same run).
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from process_models.declaration import CompiledModel
from process_models.simulator import InputProgram, InputSpec, simulate
from process_models.surrogates.artifact import SurrogateArtifact, load_artifact, save_artifact
from process_models.surrogates.dataset import ModelSource, TrainingDataset, generate_dataset
from process_models.surrogates.design import (
    ParameterRange,
    ProgramRange,
    TrainingDesign,
    design_for_case,
    input_spec_to_json,
)
from process_models.surrogates.envelope import fit_envelope
from process_models.surrogates.fingerprint import declaration_hash
from process_models.surrogates.metrics import nrmse_by_output
from process_models.surrogates.outlet_curve import OutletCurveSurrogate, train_outlet_curve
from process_models.surrogates.state_transition import StateTransitionSurrogate, train_state_transition

__all__ = ["Evaluation", "TrainingSettings", "chromatography_design", "default_kind", "design_for_source",
           "evaluate_artifact", "predict_dataset", "train_surrogate"]


@dataclass(frozen=True)
class TrainingSettings:
    """Network and optimiser settings (defaults train the shipped examples on a CPU in minutes)."""

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    epochs: int = 300
    window: int = 16
    batch_size: int = 128
    learning_rate: float = 3e-3
    patience: int = 40
    seed: int = 0


def default_kind(model_kind: str) -> str:
    """``outlet_curve`` for a chromatography column, ``state_transition`` for everything else."""
    return "outlet_curve" if model_kind == "chromatography_column" else "state_transition"


def chromatography_design(model: CompiledModel, initial_state: Mapping[str, Any], inputs: Mapping[str, InputSpec],
                          start_s: float, until_s: float, interval_s: float, *, spread: float = 0.2,
                          isotherm_spread: float = 0.03, seed: int = 0) -> TrainingDesign:
    """Load-wash-elute design around a column case: each loaded component's feed concentration x (1 ± spread),
    the load end time (all loaded components together) x (1 ± spread), the last value of every other programme
    (the gradient's end) x (1 ± spread/2), and each positive SMA characteristic charge or Langmuir capacity
    x (1 ± isotherm_spread)."""
    programs: list[ProgramRange] = []
    loaded: list[str] = []
    load_knot = -1
    for name, spec in inputs.items():
        if not isinstance(spec, InputProgram):
            continue
        values = list(spec.values)
        drop = next((k for k in range(1, len(values)) if values[0] > 0 and values[k] == 0), None)
        if drop is not None:
            loaded.append(name)
            load_knot = drop
            programs.append(ProgramRange((name,), 0, "value", values[0] * (1 - spread), values[0] * (1 + spread)))
        elif len(values) > 1 and values[-1] != 0:
            v = values[-1]
            programs.append(ProgramRange((name,), len(values) - 1, "value", v * (1 - spread / 2),
                                         v * (1 + spread / 2)))
    if loaded:
        t_load = inputs[loaded[0]].times_s[load_knot]  # type: ignore[union-attr]
        programs.append(ProgramRange(tuple(loaded), load_knot, "time", t_load * (1 - spread), t_load * (1 + spread)))
    params = []
    values = model.declaration.parameter_values()
    for p in model.declaration.parameters:
        if p.name.startswith(("characteristic_charge_", "capacity_")) and values[p.name] > 0:
            v = values[p.name]
            params.append(ParameterRange(p.name, max(v * (1 - isotherm_spread), p.lower),
                                         min(v * (1 + isotherm_spread), p.upper)))
    design = TrainingDesign(
        base_state={k: np.asarray(v, dtype=float).tolist() for k, v in initial_state.items()},
        base_inputs={k: input_spec_to_json(v) for k, v in inputs.items()}, start_s=float(start_s),
        until_s=float(until_s), interval_s=float(interval_s), parameters=tuple(params), programs=tuple(programs),
        seed=seed)
    design.validate(model)
    return design


def design_for_source(model_kind: str, model: CompiledModel, initial_state: Mapping[str, Any],
                      inputs: Mapping[str, InputSpec], start_s: float, until_s: float, interval_s: float, *,
                      seed: int = 0, parameter_ranges: Sequence[ParameterRange] = (), state_spread: float = 0.01
                      ) -> TrainingDesign:
    """The default design of a case for the default surrogate kind of ``model_kind``."""
    if default_kind(model_kind) == "outlet_curve":
        return chromatography_design(model, initial_state, inputs, start_s, until_s, interval_s, seed=seed)
    return design_for_case(model, initial_state, inputs, start_s, until_s, interval_s, seed=seed,
                           parameters=parameter_ranges, state_spread=state_spread)


def output_sizes(model: CompiledModel, names: Sequence[str]) -> list[int]:
    """Rows of each named output (1 for a scalar)."""
    return [model.output_slices[n].stop - model.output_slices[n].start for n in names]


def row_labels(model: CompiledModel, names: Sequence[str]) -> list[str]:
    """A label per output row: the name, or ``name[i]`` for a vector output."""
    return [n if size == 1 else f"{n}[{i}]" for n, size in zip(names, output_sizes(model, names), strict=True)
            for i in range(size)]


def _outlet_outputs(model: CompiledModel) -> list[str]:
    return [v.name for v in model.declaration.outputs if v.name.startswith("outlet_concentration_")]


def _state_features(s: StateTransitionSurrogate, dataset: TrainingDataset, runs: np.ndarray) -> np.ndarray:
    x = np.swapaxes(dataset.arrays["states"][runs][:, :, :-1], 1, 2)
    u = np.swapaxes(dataset.arrays["interval_inputs"][runs], 1, 2)
    p = np.repeat(dataset.arrays["parameters"][runs][:, None, :], x.shape[1], axis=1)
    n = x.shape[0] * x.shape[1]
    return s.features(x.reshape(n, x.shape[2]), u.reshape(n, u.shape[2]), p.reshape(n, p.shape[2]))


def _feature_names(s: Any, model: CompiledModel, design: TrainingDesign) -> list[str]:
    if isinstance(s, OutletCurveSurrogate):
        return design.feature_names()
    names = [f"{v.name}[{i}]" if v.size > 1 else v.name for v in model.declaration.states for i in range(v.size)]
    names += [f"{v.name}[{i}]" if v.size > 1 else v.name for v in model.declaration.inputs for i in range(v.size)]
    return names + list(s.parameter_names)


def predict_dataset(surrogate: Any, model: CompiledModel, dataset: TrainingDataset, runs: np.ndarray
                    ) -> np.ndarray:
    """Surrogate predictions of the dataset's stored outputs for ``runs`` (B, n_outputs, T)."""
    if isinstance(surrogate, OutletCurveSurrogate):
        return surrogate.predict(dataset.arrays["points"][runs])
    states = surrogate.rollout(dataset.arrays["states"][runs][:, :, 0], dataset.arrays["interval_inputs"][runs],
                               dataset.arrays["parameters"][runs])
    return outputs_of_states(model, dataset, runs, states)


_OUTPUT_MAPS: weakref.WeakKeyDictionary[CompiledModel, dict[int, Any]] = weakref.WeakKeyDictionary()


def _output_map(model: CompiledModel, n: int) -> Any:
    maps = _OUTPUT_MAPS.setdefault(model, {})
    if n not in maps:
        maps[n] = model.output.map(n)
    return maps[n]


def outputs_of_states(model: CompiledModel, dataset: TrainingDataset, runs: np.ndarray, states: np.ndarray
                      ) -> np.ndarray:
    """The model's (kept) outputs evaluated on state trajectories (B, nx, T) with the runs' inputs."""
    design = dataset.design
    t = dataset.arrays["times_s"]
    rows = [i for n in dataset.metadata["outputs"] for i in range(model.output_slices[n].start,
                                                                  model.output_slices[n].stop)]
    fmap = _output_map(model, t.size)
    out = []
    for j, run in enumerate(runs):
        p = model.pack_parameters({**design.base_parameters,
                                   **{r.name: float(dataset.arrays["parameters"][run][i])
                                      for i, r in enumerate(design.parameters)}})
        y = np.asarray(fmap(states[j], dataset.arrays["inputs"][run], np.repeat(p[:, None], t.size, axis=1),
                            t[None, :]), dtype=float)
        out.append(y[rows])
    return np.stack(out)


def train_surrogate(source: ModelSource, design: TrainingDesign, samples: int, out_dir: str | Path, *,
                    kind: str | None = None, settings: TrainingSettings = TrainingSettings(),
                    workers: int | None = None, progress: bool = True, dataset: TrainingDataset | None = None,
                    executor: Executor | None = None) -> SurrogateArtifact:
    """Generate the dataset (unless given; on ``executor`` if given, e.g. a Dask client's, else in ``workers``
    processes: :func:`~.dataset.generate_dataset`), train, test on the held-out runs, write the artifact to
    ``out_dir`` (with ``dataset/`` and ``report.png``) and return it."""
    started = time.perf_counter()
    model = source.build()
    kind = kind or default_kind(source.kind)
    out = Path(out_dir)
    if dataset is None:
        outlet = kind == "outlet_curve"
        dataset = generate_dataset(source, design, samples, workers=workers, progress=progress, executor=executor,
                                   outputs=_outlet_outputs(model) if outlet else None, store_states=not outlet)
    dataset.save(out / "dataset")
    t_train = time.perf_counter()
    s = settings
    if kind == "outlet_curve":
        surrogate, history, split = train_outlet_curve(
            dataset, hidden=s.hidden, activation=s.activation, epochs=s.epochs, batch_size=min(s.batch_size, 32),
            learning_rate=s.learning_rate, patience=s.patience, seed=s.seed, progress=progress)
        features = {k: surrogate.features(dataset.arrays["points"][v]) for k, v in split.items()}
        extra = surrogate.arrays()
    else:
        surrogate, history, split = train_state_transition(
            dataset, hidden=s.hidden, activation=s.activation, epochs=s.epochs, window=s.window,
            batch_size=s.batch_size, learning_rate=s.learning_rate, patience=s.patience, seed=s.seed,
            progress=progress)
        features = {k: _state_features(surrogate, dataset, v) for k, v in split.items()}
        extra = {}
    train_wall = time.perf_counter() - t_train
    envelope = fit_envelope(_feature_names(surrogate, model, dataset.design), features["train"],
                            features["validation"], seed=s.seed)
    test = split["test"]
    predicted = predict_dataset(surrogate, model, dataset, test)
    reference = dataset.arrays["outputs"][test]
    names = dataset.metadata["outputs"]
    per_output = nrmse_by_output(predicted, reference, names, output_sizes(model, names))
    metrics = {
        "test_runs": int(test.size),
        "test_nrmse": per_output,
        "test_nrmse_max": float(max(per_output.values())),
        "test_nrmse_mean": float(np.mean(list(per_output.values()))),
        "test_in_envelope_fraction": float(np.mean(envelope.check(features["test"]).inside)),
    }
    metadata = {
        "model": {"kind": source.kind, "options": dict(source.options), "name": model.declaration.name},
        "declaration_hash": declaration_hash(model, include_outputs=kind == "outlet_curve"),
        "dataset": {"hash": dataset.hash, "sample_count": dataset.sample_count, "seed": design.seed,
                    "design": dataset.metadata["design"], "outputs": names,
                    "generation_wall_s": dataset.metadata["generation_wall_s"]},
        "training": {**history.to_json(), "settings": {**s.__dict__, "hidden": list(s.hidden)},
                     "wall_s": train_wall, "total_wall_s": time.perf_counter() - started,
                     "threads": torch.get_num_threads()},
        "split": {k: v.tolist() for k, v in split.items()},
        "metrics": metrics,
    }
    artifact = SurrogateArtifact(surrogate, envelope, metadata, extra)
    save_artifact(artifact, out)
    from process_models.surrogates.report import write_report  # matplotlib only when a report is written

    write_report(out / "report.png", model, dataset, test, predicted, reference, row_labels(model, names), artifact)
    return artifact


@dataclass(frozen=True)
class Evaluation:
    """Held-out test comparison measured in one run."""

    test_nrmse: dict[str, float]
    in_envelope_fraction: float
    physics_wall_s: float
    surrogate_wall_s: float
    runs: int

    @property
    def speedup(self) -> float:
        return self.physics_wall_s / self.surrogate_wall_s if self.surrogate_wall_s > 0 else math.inf

    def to_json(self) -> dict[str, Any]:
        return {"test_nrmse": self.test_nrmse, "test_nrmse_max": max(self.test_nrmse.values()),
                "in_envelope_fraction": self.in_envelope_fraction, "physics_wall_s": self.physics_wall_s,
                "surrogate_wall_s": self.surrogate_wall_s, "runs": self.runs, "speedup": self.speedup}


def evaluate_artifact(directory: str | Path) -> tuple[SurrogateArtifact, Evaluation]:
    """Re-simulate the artifact's held-out test runs with the physics model (timed, one after another) and predict
    them with the surrogate (timed, one batched call); compare the stored outputs."""
    from process_models.surrogates.dataset import load_dataset

    meta_model = load_artifact(directory).metadata["model"]
    source = ModelSource(meta_model["kind"], meta_model["options"])
    model = source.build()
    artifact = load_artifact(directory, model)
    dataset = load_dataset(Path(directory) / "dataset")
    test = np.asarray(artifact.metadata["split"]["test"], dtype=int)
    design = dataset.design
    times = design.times_s()
    rows = [i for n in dataset.metadata["outputs"] for i in range(model.output_slices[n].start,
                                                                  model.output_slices[n].stop)]
    physics = []
    t0 = time.perf_counter()
    for run in test:
        state, inputs, params = design.run_from_point(dataset.arrays["points"][run])
        physics.append(simulate(model, state, times, inputs, params).outputs[rows])
    physics_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    predicted = predict_dataset(artifact.surrogate, model, dataset, test)
    surrogate_wall = time.perf_counter() - t0
    names = dataset.metadata["outputs"]
    per_output = nrmse_by_output(predicted, np.stack(physics), names, output_sizes(model, names))
    s = artifact.surrogate
    features = (s.features(dataset.arrays["points"][test]) if isinstance(s, OutletCurveSurrogate)
                else _state_features(s, dataset, test))
    inside = float(np.mean(artifact.envelope.check(features).inside))
    return artifact, Evaluation(per_output, inside, physics_wall, surrogate_wall, int(test.size))
