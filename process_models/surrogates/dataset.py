"""Training datasets: trajectories of a declared model over a :class:`~.design.TrainingDesign`, simulated with the
existing simulator in parallel worker processes, saved as a versioned dataset directory.

On disk (``DIR/``): ``arrays.npz`` (``times_s`` (T,), ``points`` (S, d) unit-cube design points, ``parameters``
(S, n_varied), ``inputs`` (S, nu, T) inputs at the output times, ``interval_inputs`` (S, nu, T-1) mean input over
each output interval, ``outputs`` (S, ny_kept, T), and ``states`` (S, nx, T) unless ``store_states`` is off) and
``dataset.json`` (format version, model kind and options, declaration hashes, the design (ranges, seed), sample
count, output names, the arrays' hash). :func:`generate_dataset` is a plain function so a campaign runner can farm
out slices of a design (``first``/``count``) and :func:`concatenate_datasets` the parts.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from process_models.declaration import CompiledModel, compile_model
from process_models.registry import model_for_kind
from process_models.simulator import InputProgram, SimulationError, simulate
from process_models.surrogates.design import TrainingDesign
from process_models.surrogates.fingerprint import array_hash, declaration_hash
from process_models.surrogates.progress import Progress

__all__ = ["DATASET_FORMAT", "DatasetError", "ModelSource", "TrainingDataset", "concatenate_datasets",
           "generate_dataset", "load_dataset"]

DATASET_FORMAT = 1


class DatasetError(ValueError):
    """A dataset cannot be generated, read or used (names the file or the run)."""


@dataclass(frozen=True)
class ModelSource:
    """How to rebuild a model in any process: a registered kind and its ``[model]`` options (JSON-able)."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        return json.dumps({"kind": self.kind, "options": self.options}, sort_keys=True)

    def build(self) -> CompiledModel:
        return _model_for_key(self.key())


@lru_cache(maxsize=8)
def _model_for_key(key: str) -> CompiledModel:
    doc = json.loads(key)
    return compile_model(model_for_kind(doc["kind"], doc["options"]))


@dataclass(frozen=True)
class TrainingDataset:
    """Arrays (see the module docstring) and metadata of one dataset."""

    arrays: Mapping[str, np.ndarray]
    metadata: Mapping[str, Any]

    @property
    def sample_count(self) -> int:
        return int(self.arrays["points"].shape[0])

    @property
    def design(self) -> TrainingDesign:
        return TrainingDesign.from_json(self.metadata["design"])

    @property
    def source(self) -> ModelSource:
        return ModelSource(self.metadata["model_kind"], self.metadata["model_options"])

    @property
    def hash(self) -> str:
        return str(self.metadata["arrays_hash"])

    def save(self, directory: str | Path) -> Path:
        """Write ``arrays.npz`` and ``dataset.json`` into ``directory`` (created)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / "arrays.npz", **{k: np.asarray(v) for k, v in self.arrays.items()})
        (out / "dataset.json").write_text(json.dumps(self.metadata, indent=2, sort_keys=True))
        return out


def load_dataset(directory: str | Path) -> TrainingDataset:
    """Read a dataset directory; checks the format version and the arrays' hash."""
    path = Path(directory)
    try:
        metadata = json.loads((path / "dataset.json").read_text())
        with np.load(path / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read dataset (dataset.json + arrays.npz): {exc}") from exc
    if metadata.get("format") != DATASET_FORMAT:
        raise DatasetError(f"{path}/dataset.json: format {metadata.get('format')!r}, expected {DATASET_FORMAT}")
    if array_hash(arrays) != metadata.get("arrays_hash"):
        raise DatasetError(f"{path}/arrays.npz: contents do not match the hash in dataset.json (file changed)")
    return TrainingDataset(arrays, metadata)


def _interval_mean(spec: Any, times: np.ndarray) -> np.ndarray:
    """Mean of an input over each output interval: exact for constants, zoh steps on grid knots and ramps."""
    if isinstance(spec, InputProgram):
        values = spec.sample(times)
        if spec.interpolation == "linear":
            return 0.5 * (values[:-1] + values[1:])
        return values[:-1]
    return np.full(times.size - 1, float(spec))


def _simulate_points(source_key: str, design_doc: dict[str, Any], points: np.ndarray, outputs: Sequence[str],
                     store_states: bool) -> list[dict[str, np.ndarray]]:
    """Worker: simulate the runs at ``points`` (rows of the unit cube)."""
    model = _model_for_key(source_key)
    design = TrainingDesign.from_json(design_doc)
    times = design.times_s()
    rows = [i for name in outputs for i in range(model.output_slices[name].start, model.output_slices[name].stop)]
    out = []
    for point in points:
        state, inputs, params = design.run_from_point(point)
        result = simulate(model, state, times, inputs, params)
        u_mean = np.zeros((model.nu, times.size - 1))
        for spec in model.declaration.inputs:
            sl = model.input_slices[spec.name]
            u_mean[sl] = _interval_mean(inputs[spec.name], times)[None, :]
        run = {"inputs": result.inputs, "interval_inputs": u_mean, "outputs": result.outputs[rows],
               "parameters": np.array([params[r.name] for r in design.parameters], dtype=float)}
        if store_states:
            run["states"] = result.states
        out.append(run)
    return out


def _run_chunks(executor: Executor, chunks: list[tuple[int, np.ndarray]],
                results: dict[int, list[dict[str, np.ndarray]]], bar: Progress, key: str, doc: dict[str, Any],
                names: Sequence[str], store_states: bool) -> None:
    """Simulate every chunk on ``executor``; results by chunk start index, the progress bar per finished chunk."""
    futures = {executor.submit(_simulate_points, key, doc, pts, names, store_states): (i, len(pts))
               for i, pts in chunks}
    done = 0
    for fut in as_completed(futures):
        i, n = futures[fut]
        results[i] = fut.result()
        done += n
        bar.update(done)


def generate_dataset(source: ModelSource, design: TrainingDesign, samples: int, *, workers: int | None = None,
                     outputs: Sequence[str] | None = None, store_states: bool = True, first: int = 0,
                     count: int | None = None, progress: bool = True, chunk: int = 4,
                     executor: Executor | None = None) -> TrainingDataset:
    """Simulate design points ``first .. first+count`` of a ``samples``-point design (all by default) in
    ``workers`` processes (default: 2, or 1 for a handful of runs; 1 runs in this process) and return the dataset.

    ``executor``: run the chunks of ``chunk`` points on it instead (``workers`` is then ignored) — any
    :class:`concurrent.futures.Executor`, e.g. a Dask client's ``client.get_executor()`` (``linetwin surrogate
    train --scheduler``), whose workers must import this code and build the model themselves.

    ``outputs``: output names kept (default all); ``store_states``: keep full state trajectories (turn off for a
    column of thousands of states when only outlet curves are wanted). A run that fails raises
    :class:`DatasetError` naming its index and design point.
    """
    model = source.build()
    design.validate(model)
    names = list(outputs) if outputs is not None else [v.name for v in model.declaration.outputs]
    unknown = [n for n in names if n not in model.output_slices]
    if unknown:
        raise DatasetError(f"dataset for '{model.declaration.name}': unknown outputs {unknown}; "
                           f"expected from {list(model.output_slices)}")
    all_points = design.sample(samples)
    count = samples - first if count is None else count
    points = all_points[first:first + count]
    if points.shape[0] == 0:
        raise DatasetError(f"dataset: no design points in slice first={first} count={count} of {samples}")
    if executor is None:
        workers = workers if workers is not None else (1 if points.shape[0] < 8 else min(2, os.cpu_count() or 1))
    chunks = [(i, points[i:i + chunk]) for i in range(0, points.shape[0], chunk)]
    results: dict[int, list[dict[str, np.ndarray]]] = {}
    bar = Progress(f"simulating {model.declaration.name}", points.shape[0], "runs", enabled=progress)
    started = time.perf_counter()
    done = 0
    key, doc = source.key(), design.to_json()
    try:
        if executor is not None:
            _run_chunks(executor, chunks, results, bar, key, doc, names, store_states)
        elif workers is not None and workers <= 1:
            for i, pts in chunks:
                results[i] = _simulate_points(key, doc, pts, names, store_states)
                done += len(pts)
                bar.update(done)
        else:
            # fork: workers rebuild nothing but the model (cached per process) and never touch torch
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                _run_chunks(pool, chunks, results, bar, key, doc, names, store_states)
    except SimulationError as exc:
        raise DatasetError(f"dataset for '{model.declaration.name}': a run failed: {exc}") from exc
    bar.close(f"{time.perf_counter() - started:.1f} s")
    runs = [run for i, _ in chunks for run in results[i]]
    arrays: dict[str, np.ndarray] = {
        "times_s": design.times_s(),
        "points": points,
        **{k: np.stack([r[k] for r in runs]) for k in runs[0]},
    }
    metadata = {
        "format": DATASET_FORMAT,
        "model_kind": source.kind,
        "model_options": dict(source.options),
        "model_name": model.declaration.name,
        "declaration_hash": declaration_hash(model),
        "declaration_hash_with_outputs": declaration_hash(model, include_outputs=True),
        "design": doc,
        "design_samples": samples,
        "first": first,
        "sample_count": int(points.shape[0]),
        "seed": design.seed,
        "outputs": names,
        "store_states": store_states,
        "feature_names": design.feature_names(),
        "generation_wall_s": time.perf_counter() - started,
        "arrays_hash": array_hash(arrays),
    }
    return TrainingDataset(arrays, metadata)


def concatenate_datasets(parts: Sequence[TrainingDataset]) -> TrainingDataset:
    """Join slices of one design (as a campaign runner returns them) in order of their ``first`` index."""
    if not parts:
        raise DatasetError("concatenate_datasets: no parts")
    parts = sorted(parts, key=lambda p: p.metadata["first"])
    ref = parts[0].metadata
    for p in parts[1:]:
        if p.metadata["design"] != ref["design"] or p.metadata["declaration_hash"] != ref["declaration_hash"]:
            raise DatasetError("concatenate_datasets: parts come from different designs or models")
    arrays = {k: (parts[0].arrays[k] if k == "times_s" else np.concatenate([p.arrays[k] for p in parts]))
              for k in parts[0].arrays}
    metadata = {**ref, "first": ref["first"], "sample_count": int(arrays["points"].shape[0]),
                "arrays_hash": array_hash(arrays)}
    return TrainingDataset(arrays, metadata)
