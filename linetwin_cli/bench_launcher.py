"""Starting HIL virtual PLCs for the units of a line config (used by ``linetwin demo``, ``hil serve`` and ``hil run``;
it lives in the CLI layer so that ``twin_server`` never imports ``hil``).

The bench only ever sees plain declarations (tag maps, connections, plant parameters); the twin talks to it over
the unit's protocol like to any real PLC. The virtual PLC of a unit is the one registered for its connection kind
(:func:`hil.virtual_plc_base.virtual_plc_class`): nothing here knows a protocol.
"""

from __future__ import annotations

import dataclasses

from hil.bench import HilBench
from hil.plant import make_plant
from hil.pooling_scenario import PoolingScenario
from hil.scenario import Scenario
from hil.virtual_plc_base import VirtualPlcBase, VirtualPlcConfigError, virtual_plc_class
from plc_adapters.adapter import PlcConnection
from plc_adapters.config_issues import ConfigIssue, brief
from twin_server.config import LineConfig, load_line_config


def build_bench(config: LineConfig, speed: float = 1.0, free_ports: bool = False, seed: int | None = 0,
                step_s: float = 0.1) -> HilBench:
    """One virtual PLC per unit. ``free_ports`` binds port 0 (the OS picks) instead of the configured port."""
    plcs: list[VirtualPlcBase] = []
    for i, unit in enumerate(config.units):
        plant = make_plant(unit.kind, unit.plant_parameters(),
                           seed=None if seed is None else seed + i)
        connection = dataclasses.replace(unit.connection, port=0) if free_ports else unit.connection
        plc_type = virtual_plc_class(connection.protocol)
        plcs.append(plc_type(unit.name, connection, unit.tags, plant, speed=speed, step_s=step_s))
    return HilBench(plcs)


def bench_issues(config: LineConfig, free_ports: bool = False) -> list[ConfigIssue]:
    """What keeps ``hil serve`` (or, with ``free_ports``, ``demo``) from running this line's virtual PLCs, though
    the twin could serve it: a tag the unit's HIL plant does not simulate (or in a table the virtual PLC does not
    serve), a chromatography skid's method stated twice and differently, or two units on one host:port (each
    virtual PLC listens on its own port)."""
    issues: list[ConfigIssue] = []
    by_address: dict[tuple[str, int], str] = {}
    for unit in config.units:
        try:
            parameters = unit.plant_parameters()
        except ValueError as exc:
            issues.append(ConfigIssue(config.source, f"units.{unit.name}.plant.method", "a second, different method",
                                      brief(exc)))
            parameters = None
        try:
            if parameters is not None:
                plant = make_plant(unit.kind, parameters, seed=0)
                virtual_plc_class(unit.connection.protocol).check_tags(unit.name, unit.tags, plant)
        except (VirtualPlcConfigError, ValueError) as exc:
            issues.append(ConfigIssue(config.source, f"units.{unit.name}.tags", brief(exc),
                                      "tags the HIL plant simulates, in a form its virtual PLC serves (Modbus: "
                                      "holding/input registers)"))
        address = (unit.connection.host.lower(), unit.connection.port)
        if not free_ports and address in by_address:
            issues.append(ConfigIssue(config.source, f"units.{unit.name}.plc.port",
                                      f"{unit.connection.host}:{unit.connection.port}, as unit '{by_address[address]}'",
                                      "a port of its own for each unit's virtual PLC"))
        by_address.setdefault(address, unit.name)
    return issues


def plc_address(unit_connection: PlcConnection, port: int) -> str:
    """How a unit's (virtual) PLC is reached, for status lines: its connection's endpoint on ``port``
    (``modbus://host:port``, ``opc.tcp://host:port/path`` ...)."""
    return dataclasses.replace(unit_connection, port=port).endpoint  # type: ignore[type-var]


def config_for_bench(config: LineConfig, bench: HilBench) -> LineConfig:
    """The config with each unit's PLC port replaced by the port its (started) virtual PLC listens on."""
    units = tuple(
        dataclasses.replace(u, connection=dataclasses.replace(u.connection, port=bench.plc(u.name).port))
        for u in config.units
    )
    return dataclasses.replace(config, units=units)


def with_time_scale(config: LineConfig, speed: float) -> LineConfig:
    """The config for a bench running ``speed``× real time: control loops' clocks scaled, and write rate limits
    (``max_rate``, per plant second) turned into per-wall-second limits."""
    units = tuple(
        dataclasses.replace(
            u,
            control={**u.control, "time_scale": speed} if u.control else u.control,
            tags=tuple(dataclasses.replace(t, max_rate=t.max_rate * speed) if t.max_rate is not None else t
                       for t in u.tags),
        )
        for u in config.units
    )
    return dataclasses.replace(config, units=units)


def scenario_line_config(scenario: Scenario) -> LineConfig:
    """The line for a HIL scenario: only the scenario's unit, its true plant from ``[plant]``, and a control loop
    configured from the scenario (recipe, target, batch duration, twin clock scaled to the bench speed).

    An MPC scenario falls back to (and its AUTO mode follows) linear cooling; ``[control]`` overrides anything.
    """
    config = load_line_config(scenario.line_path)
    unit = dataclasses.replace(config.unit(scenario.unit), plant=dict(scenario.plant),
                               control=scenario.control_options())
    # Poll often enough that a scan spans at most ~10 s of plant time at the bench's speed.
    scan_period_s = max(0.02, min(config.scan_period_s, 10.0 / scenario.speed))
    return with_time_scale(dataclasses.replace(config, units=(unit,), scan_period_s=scan_period_s), scenario.speed)


def pooling_line_config(scenario: PoolingScenario) -> LineConfig:
    """The line for a HIL pooling scenario: only the scenario's skid, its true plant (the physics column running
    the control table's method with the scenario's deviation) and its pooling table; scans every 0.05 s."""
    config = load_line_config(scenario.line_path)
    column = config.unit(scenario.unit)
    plant = {k: v for k, v in scenario.plant_parameters().items() if k not in column.model}
    unit = dataclasses.replace(column, plant=plant, control=scenario.control_options())
    return dataclasses.replace(config, units=(unit,), scan_period_s=min(config.scan_period_s, 0.05))
