"""Plant simulations behind the HIL virtual PLCs (one module per unit kind)."""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it; imported on first use, so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "ColumnStandIn": "hil.plants.column_standin",
    "ColumnStandInParameters": "hil.plants.column_standin",
    "CrystallizerModelOptions": "hil.plants.crystallizer_physics",
    "CrystallizerPhysics": "hil.plants.crystallizer_physics",
    "CrystallizerPhysicsParameters": "hil.plants.crystallizer_physics",
    "CrystallizerStandIn": "hil.plants.crystallizer_standin",
    "CrystallizerStandInParameters": "hil.plants.crystallizer_standin",
    "MixingTank": "hil.plants.mixing_tank",
    "MixingTankParameters": "hil.plants.mixing_tank",
    "PlantParameterError": "hil.plants.parameters",
    "make_crystallizer_physics": "hil.plants.crystallizer_physics",
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
