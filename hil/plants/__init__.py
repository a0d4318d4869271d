"""Plant simulations behind the HIL virtual PLCs (one module per unit kind)."""

from hil.plants.column_standin import ColumnStandIn, ColumnStandInParameters
from hil.plants.crystallizer_physics import (
    CrystallizerModelOptions,
    CrystallizerPhysics,
    CrystallizerPhysicsParameters,
    make_crystallizer_physics,
)
from hil.plants.crystallizer_standin import CrystallizerStandIn, CrystallizerStandInParameters
from hil.plants.mixing_tank import MixingTank, MixingTankParameters
from hil.plants.parameters import PlantParameterError

__all__ = [
    "ColumnStandIn",
    "ColumnStandInParameters",
    "CrystallizerModelOptions",
    "CrystallizerPhysics",
    "CrystallizerPhysicsParameters",
    "CrystallizerStandIn",
    "CrystallizerStandInParameters",
    "MixingTank",
    "MixingTankParameters",
    "PlantParameterError",
    "make_crystallizer_physics",
]
