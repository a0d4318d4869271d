"""An artifact's ``surrogate.json``, read without torch: :func:`~process_models.surrogates.artifact.load_artifact`
reads it through here, and ``linetwin surrogate evaluate`` refuses a missing or malformed artifact with it before
anything has imported torch (a fraction of a second, not two)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from process_models.surrogates.errors import SurrogateArtifactError

__all__ = ["ARTIFACT_FORMAT", "read_artifact_metadata"]

ARTIFACT_FORMAT = 1
"""The version of the artifact layout (``surrogate.json`` key ``format``)."""


def read_artifact_metadata(directory: str | Path) -> tuple[Path, dict[str, Any]]:
    """``(path of surrogate.json, its content)`` of the artifact in ``directory``; :class:`SurrogateArtifactError`
    naming the file when it cannot be read, is not JSON or has another format."""
    meta_file = Path(directory) / "surrogate.json"
    try:
        meta = json.loads(meta_file.read_text())
    except OSError as exc:
        raise SurrogateArtifactError(f"{meta_file}: cannot read surrogate metadata: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise SurrogateArtifactError(f"{meta_file}: not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != ARTIFACT_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise SurrogateArtifactError(f"{meta_file}: format {found!r}, expected {ARTIFACT_FORMAT}")
    return meta_file, meta
