"""Hardware-in-the-loop bench: virtual PLCs (Modbus TCP servers) driven by plant simulations."""

from hil.bench import HilBench
from hil.plant import PLANT_KINDS, Plant, make_plant
from hil.plants.parameters import PlantParameterError
from hil.virtual_plc import VirtualPlc, VirtualPlcConfigError, validate_tags

__all__ = [
    "PLANT_KINDS",
    "HilBench",
    "Plant",
    "PlantParameterError",
    "VirtualPlc",
    "VirtualPlcConfigError",
    "make_plant",
    "validate_tags",
]
