"""Plant simulations behind the HIL virtual PLCs (one module per unit kind)."""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
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
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
