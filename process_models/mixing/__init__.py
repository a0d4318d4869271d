"""Mixing: the jacketed stirred mixing tank (unit kind ``mixing_tank``) and residence-time models
(tanks in series, axial dispersion vessel ``axial_dispersion``)."""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it; imported on first use, so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "KELVIN_OFFSET": "process_models.mixing.mixing_tank",
    "mixing_tank_model": "process_models.mixing.mixing_tank",
    "mixing_tank_steady_state": "process_models.mixing.mixing_tank",
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
