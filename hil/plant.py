"""The plant interface a virtual PLC drives, and the factory that builds a plant by kind.

A plant is plain synchronous numerics: it holds its true state, advances it by a given plant time
holding the commanded values (zero-order hold, like a PLC scan), and reports measured values with
sensor noise. Values crossing this interface are in the engineering units of the unit's tag map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from hil.plants.column_standin import ColumnStandIn, ColumnStandInParameters
from hil.plants.crystallizer_standin import CrystallizerStandIn, CrystallizerStandInParameters
from hil.plants.mixing_tank import MixingTank, MixingTankParameters
from hil.plants.parameters import PlantParameterError, build_parameters


@runtime_checkable
class Plant(Protocol):
    """A simulated unit behind a virtual PLC."""

    kind: str  # "mixing_tank" | "crystallizer" | "chromatography_column"
    measured_names: tuple[str, ...]  # tags the plant produces (engineering units of the tag map)
    commanded_names: tuple[str, ...]  # setpoint tags the plant reads

    def initial_commands(self) -> dict[str, float]:
        """Initial register contents for the commanded tags (engineering units)."""
        ...

    def step(self, dt_s: float, commands: Mapping[str, float]) -> None:
        """Advance plant time by ``dt_s`` seconds holding ``commands`` constant."""
        ...

    def measurements(self) -> dict[str, float]:
        """Current measured values including sensor noise (engineering units)."""
        ...


_FACTORIES: dict[str, tuple[type, Callable[..., Plant]]] = {
    MixingTank.kind: (MixingTankParameters, MixingTank),
    CrystallizerStandIn.kind: (CrystallizerStandInParameters, CrystallizerStandIn),
    ColumnStandIn.kind: (ColumnStandInParameters, ColumnStandIn),
}

PLANT_KINDS: tuple[str, ...] = tuple(_FACTORIES)


def make_plant(kind: str, parameters: Mapping[str, Any], seed: int | None = None) -> Plant:
    """Build the plant of ``kind`` with ``parameters`` (names as in ``[units.<unit>.model]``; missing ones
    take their defaults) and a seeded sensor-noise generator.

    Raises:
        PlantParameterError: unknown kind (lists the kinds), unknown parameter name (lists the allowed
            names), non-numeric value, or a value outside its physical range.
    """
    if kind not in _FACTORIES:
        raise PlantParameterError(f"unknown plant kind {kind!r}; known kinds: {', '.join(PLANT_KINDS)}")
    parameters_type, factory = _FACTORIES[kind]
    return factory(build_parameters(kind, parameters_type, parameters), seed=seed)
