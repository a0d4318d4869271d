"""Chromatography control: model-based online pooling of the skid's product peak — the chance-constrained cut
decision, the fixed-UV-threshold fallback and the oracle (``pooling_decision``), the estimate of the uncertain
column parameters from UV and conductivity (``elution_estimator``) and the online loop that turns both into
collection-valve commands (``pooling_loop``)."""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it; imported on first use, so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "ElutionEstimator": "controllers.chromatography.elution_estimator",
    "EstimationSpec": "controllers.chromatography.elution_estimator",
    "OutletEstimate": "controllers.chromatography.elution_estimator",
    "PoolingLoop": "controllers.chromatography.pooling_loop",
    "PoolingLoopOptions": "controllers.chromatography.pooling_loop",
    "ValveDecision": "controllers.chromatography.pooling_loop",
    "CutPlan": "controllers.chromatography.pooling_decision",
    "PoolingSpec": "controllers.chromatography.pooling_decision",
    "UvThresholdRule": "controllers.chromatography.pooling_decision",
    "oracle_cuts": "controllers.chromatography.pooling_decision",
    "plan_cuts": "controllers.chromatography.pooling_decision",
    "tune_uv_thresholds": "controllers.chromatography.pooling_decision",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
