"""Starting HIL virtual PLCs for the units of a line config (used by ``linetwin demo`` and ``hil serve``).

The bench only ever sees plain declarations (tag maps, connections, plant parameters); the twin
talks to it over Modbus TCP like to any real PLC.
"""

from __future__ import annotations

import dataclasses

from hil.bench import HilBench
from hil.plant import make_plant
from hil.virtual_plc import VirtualPlc
from twin_server.config import LineConfig


def plant_parameters(unit_model: dict, unit_plant: dict) -> dict:
    """The virtual plant's parameters: the unit's [model] table, overridden by its [plant] table."""
    merged = dict(unit_model)
    merged.update(unit_plant)
    return merged


def build_bench(config: LineConfig, speed: float = 1.0, free_ports: bool = False, seed: int | None = 0,
                step_s: float = 0.1) -> HilBench:
    """One virtual PLC per unit. ``free_ports`` binds port 0 (the OS picks) instead of the configured port."""
    plcs = []
    for i, unit in enumerate(config.units):
        plant = make_plant(unit.kind, plant_parameters(dict(unit.model), dict(unit.plant)),
                           seed=None if seed is None else seed + i)
        connection = dataclasses.replace(unit.connection, port=0) if free_ports else unit.connection
        plcs.append(VirtualPlc(unit.name, connection, unit.tags, plant, speed=speed, step_s=step_s))
    return HilBench(plcs)


def config_for_bench(config: LineConfig, bench: HilBench) -> LineConfig:
    """The config with each unit's PLC port replaced by the port its (started) virtual PLC listens on."""
    units = tuple(
        dataclasses.replace(u, connection=dataclasses.replace(u.connection, port=bench.plc(u.name).port))
        for u in config.units
    )
    return dataclasses.replace(config, units=units)


def with_time_scale(config: LineConfig, speed: float) -> LineConfig:
    """The config with every control loop's clock scaled to a bench running ``speed``× real time."""
    units = tuple(
        dataclasses.replace(u, control={**u.control, "time_scale": speed}) if u.control else u for u in config.units
    )
    return dataclasses.replace(config, units=units)
