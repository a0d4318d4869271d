"""The plant interface a virtual PLC drives, and the factory that builds a plant by kind.

A plant is plain synchronous numerics: it holds its true state, advances it by a given plant time
holding the commanded values (zero-order hold, like a PLC scan), and reports measured values with
sensor noise. Values crossing this interface are in the engineering units of the unit's tag map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from hil.plants.parameters import PlantParameterError, build_parameters
from process_models.registry import UNIT_KINDS, resolve


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


# The plant modules are imported when a plant is built, not with this module: loading a scenario or a line (and a
# command's refusal of a bad file) does not pay for the physics models' imports.

def _numeric_plant(parameters_type: type, plant_type: Callable[..., Plant], kind: str, parameters: Mapping[str, Any],
                   seed: int | None) -> Plant:
    # a stand-in is numeric: the declaration's case file (``[model] case``) is not its business
    values = {k: v for k, v in parameters.items() if k != CASE_KEY}
    return plant_type(build_parameters(kind, parameters_type, values), seed=seed)


def _crystallizer_standin(kind: str, parameters: Mapping[str, Any], seed: int | None) -> Plant:
    from hil.plants.crystallizer_standin import CrystallizerStandIn, CrystallizerStandInParameters

    return _numeric_plant(CrystallizerStandInParameters, CrystallizerStandIn, kind, parameters, seed)


def _column_standin(kind: str, parameters: Mapping[str, Any], seed: int | None) -> Plant:
    from hil.plants.column_standin import ColumnStandIn, ColumnStandInParameters

    return _numeric_plant(ColumnStandInParameters, ColumnStandIn, kind, parameters, seed)


def _mixing_tank(kind: str, parameters: Mapping[str, Any], seed: int | None) -> Plant:
    from hil.plants.mixing_tank import make_mixing_tank

    return make_mixing_tank(parameters, seed=seed)


def _crystallizer_physics(kind: str, parameters: Mapping[str, Any], seed: int | None) -> Plant:
    from hil.plants.crystallizer_physics import make_crystallizer_physics

    return make_crystallizer_physics(parameters, seed=seed)


def _column_physics(kind: str, parameters: Mapping[str, Any], seed: int | None) -> Plant:
    from hil.plants.column_physics import make_column_physics

    return make_column_physics(parameters, seed=seed)


PlantBuilder = Callable[[str, Mapping[str, Any], int | None], Plant]
"""``(kind, parameters, seed) -> plant``."""

# plant model name -> builder, per kind; the first plant model of a kind is its default. The unit-kind table
# (:data:`process_models.registry.UNIT_KINDS`, column ``hil_plants``) names these.
MIXING_TANK_PLANTS: Mapping[str, PlantBuilder] = {"physics": _mixing_tank}
CRYSTALLIZER_PLANTS: Mapping[str, PlantBuilder] = {
    "physics": _crystallizer_physics,
    "standin": _crystallizer_standin,
}
COLUMN_PLANTS: Mapping[str, PlantBuilder] = {
    "physics": _column_physics,
    "standin": _column_standin,
}

PLANT_KINDS: tuple[str, ...] = tuple(k for k, v in sorted(UNIT_KINDS.items()) if v.hil_plants is not None)
"""Unit kinds with a HIL plant (from the unit-kind table)."""
PLANT_MODEL_KEY = "plant_model"
CASE_KEY = "case"
"""``[units.<unit>.model] case``: the case file of a declared model (the physics plants simulate it)."""


def _plants(kind: str) -> Mapping[str, PlantBuilder]:
    entry = UNIT_KINDS.get(kind)
    if entry is None or entry.hil_plants is None:
        raise PlantParameterError(f"unknown plant kind {kind!r}; known kinds: {', '.join(PLANT_KINDS)}")
    plants: Mapping[str, PlantBuilder] = resolve(kind, entry.hil_plants)
    return plants


def plant_models(kind: str) -> tuple[str, ...]:
    """The plant models available for ``kind`` (the first is the default); KeyError for an unknown kind."""
    if kind not in PLANT_KINDS:
        raise KeyError(kind)
    return tuple(_plants(kind))


def physics_capability(plant: Plant, unit: str, attribute: str, missing: str,
                       error: type[Exception]) -> Callable[..., Any]:
    """The method ``attribute`` of ``plant`` that only the physics plants offer (``truth`` for the KPIs, ``pool``
    for a pooling run).

    Raises:
        error: the plant has none (``missing`` says what it lacks; the message names the unit, the plant and the
            plant model to use)."""
    method = getattr(plant, attribute, None)
    if not callable(method):
        raise error(f"unit '{unit}': the plant '{type(plant).__name__}' {missing}; use {PLANT_MODEL_KEY} = \"physics\"")
    return method


def make_plant(kind: str, parameters: Mapping[str, Any], seed: int | None = None) -> Plant:
    """Build the plant of ``kind`` with ``parameters`` (names as in ``[units.<unit>.model]`` merged with
    ``[units.<unit>.plant]``; missing ones take their defaults) and a seeded sensor-noise generator.

    ``parameters["plant_model"]`` picks the simulation where a kind has several: the crystallizer has
    ``"physics"`` (default: the ``process_models`` population balance, see
    :mod:`hil.plants.crystallizer_physics`) and ``"standin"`` (:mod:`hil.plants.crystallizer_standin`); the
    chromatography column has ``"physics"`` (default: the declared column model at a DG grid that keeps up at the
    bench's speed, :mod:`hil.plants.column_physics`) and ``"standin"`` (:mod:`hil.plants.column_standin`).

    Raises:
        PlantParameterError: unknown kind (lists the kinds), unknown plant model (lists the models), unknown
            parameter name (lists the allowed names), non-numeric value, or a value outside its physical range.
    """
    models = _plants(kind)
    values = dict(parameters)
    model = values.pop(PLANT_MODEL_KEY, next(iter(models)))
    if model not in models:
        raise PlantParameterError(
            f"plant '{kind}': parameter '{PLANT_MODEL_KEY}' = {model!r}; expected one of {', '.join(models)}"
        )
    return models[model](kind, values, seed)
