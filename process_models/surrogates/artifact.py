"""Surrogate artifacts: one directory per trained surrogate.

``DIR/surrogate.json``  format, kind, version (hash of the weights), architecture and scalers, the model it
                        emulates (kind, options, name, declaration hash), the dataset (hash, sample count, seed,
                        design ranges), training metadata (epochs, losses, seed, wall time, torch version),
                        validation metrics and the validity envelope's ranges/threshold
``DIR/weights.pt``      the network's state dict (``torch.save``; read with ``weights_only=True``)
``DIR/arrays.npz``      envelope reference points and ranges, and kind-specific arrays (e.g. a curve basis)

:func:`load_artifact` refuses, with :class:`SurrogateMismatchError`, an artifact whose declaration hash differs
from the model it is meant for.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from process_models.declaration import CompiledModel
from process_models.surrogates.artifact_metadata import ARTIFACT_FORMAT, read_artifact_metadata
from process_models.surrogates.envelope import ValidityEnvelope
from process_models.surrogates.errors import SurrogateArtifactError
from process_models.surrogates.fingerprint import declaration_hash

__all__ = ["ARTIFACT_FORMAT", "SurrogateArtifact", "SurrogateArtifactError", "SurrogateMismatchError",
           "load_artifact", "save_artifact"]



class SurrogateMismatchError(SurrogateArtifactError):
    """The artifact was trained from a different declaration than the model it is loaded for."""


@dataclass
class SurrogateArtifact:
    """A loaded (or just trained) surrogate with its envelope and metadata."""

    surrogate: Any
    envelope: ValidityEnvelope
    metadata: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    @property
    def kind(self) -> str:
        return str(self.metadata["kind"])

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", ""))

    @property
    def declaration_hash(self) -> str:
        return str(self.metadata["declaration_hash"])


def _surrogate_classes() -> dict[str, Any]:
    from process_models.surrogates.outlet_curve import OutletCurveSurrogate
    from process_models.surrogates.state_transition import StateTransitionSurrogate

    return {"state_transition": StateTransitionSurrogate, "outlet_curve": OutletCurveSurrogate}


def _weights_bytes(state_dict: Mapping[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, buf)
    return buf.getvalue()


def save_artifact(artifact: SurrogateArtifact, directory: str | Path) -> Path:
    """Write ``artifact`` into ``directory`` (created); sets its version to the weights' hash and its path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    blob = _weights_bytes(artifact.surrogate.network.state_dict())
    version = hashlib.sha256(blob).hexdigest()[:12]
    meta = {**artifact.metadata, "format": ARTIFACT_FORMAT, "kind": artifact.surrogate.kind, "version": version,
            "architecture": artifact.surrogate.architecture(), "envelope": artifact.envelope.to_json(),
            "torch_version": torch.__version__}
    arrays = {**artifact.arrays, **artifact.envelope.to_arrays()}
    (out / "weights.pt").write_bytes(blob)
    np.savez_compressed(out / "arrays.npz", **arrays)
    (out / "surrogate.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    artifact.metadata, artifact.arrays, artifact.path = meta, arrays, out
    return out


def load_artifact(directory: str | Path, model: CompiledModel | None = None) -> SurrogateArtifact:
    """Read an artifact; with ``model``, refuse it unless it was trained from ``model``'s declaration."""
    path = Path(directory)
    meta_file, meta = read_artifact_metadata(path)
    classes = _surrogate_classes()
    kind = meta.get("kind")
    if kind not in classes:
        raise SurrogateArtifactError(f"{meta_file}: kind {kind!r}, expected one of {sorted(classes)}")
    if model is not None:
        current = declaration_hash(model, include_outputs=kind == "outlet_curve")
        if current != meta.get("declaration_hash"):
            raise SurrogateMismatchError(
                f"{path}: surrogate was trained from model '{meta.get('model', {}).get('name')}' with declaration "
                f"hash {str(meta.get('declaration_hash'))[:12]}, but model '{model.declaration.name}' now has "
                f"{current[:12]}: its declaration changed (states, inputs, equations or parameter defaults). "
                f"Retrain it with `linetwin surrogate train`.")
    try:
        state_dict = torch.load(path / "weights.pt", weights_only=True, map_location="cpu")
        with np.load(path / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, RuntimeError, ValueError) as exc:
        raise SurrogateArtifactError(f"{path}: cannot read weights.pt / arrays.npz: {exc}") from exc
    blob_version = hashlib.sha256((path / "weights.pt").read_bytes()).hexdigest()[:12]
    if blob_version != meta.get("version"):
        raise SurrogateArtifactError(f"{path}/weights.pt: weights do not match version {meta.get('version')} in "
                                     f"surrogate.json (file changed)")
    try:
        surrogate = classes[kind].from_architecture(meta["architecture"], state_dict, arrays)
    except (KeyError, RuntimeError) as exc:
        raise SurrogateArtifactError(f"{path}: weights do not fit the stored architecture: {exc}") from exc
    envelope = ValidityEnvelope.from_parts(meta["envelope"], arrays)
    return SurrogateArtifact(surrogate, envelope, meta, arrays, path)
