"""Crystallization control: the NMPC objective for a batch cooling crystallizer (``objective``), the options of
its ``[units.<unit>.control]`` table (``control_options``) and the unit kind's control plan (``control_plan``),
named for kind ``crystallizer`` in the unit-kind table (:mod:`process_models.registry`)."""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it; imported on first use, so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "CrystallizationObjective": "controllers.crystallization.objective",
    "crystallizer_nmpc_config": "controllers.crystallization.objective",
    "linear_cooling_recipe": "controllers.crystallization.objective",
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
