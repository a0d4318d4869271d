"""Running a HIL pooling scenario as the operator sees it: the bench's skid runs its method, the twin pools over
Modbus, and the run is read back over OPC UA and from the plant's truth.

The caller has started the bench (the skid's plant from :meth:`~hil.pooling_scenario.PoolingScenario.
plant_parameters`) and the twin (the unit's control table from :meth:`~hil.pooling_scenario.PoolingScenario.
control_options`). :func:`run_pooling_scenario` follows the run by PLANT time until the fractionation window is over
(plus ``settle_s``) — wall-paced, or in lockstep with the twin — then reads the twin's pooling nodes (one OPC UA
Read), the cut setpoints the virtual PLC holds (what the twin wrote over Modbus) and the plant's true pool, and
returns the report: KPIs ``pool_yield``, ``pool_purity``, ``spec_met`` (the true pool against the spec), the
valve's actual cuts and the PLC's cut registers, the twin's planned cuts and predictions.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from asyncua import Client, Node, ua

from hil.bench import HilBench
from hil.plant import physics_capability
from hil.plants.fractionation import CUT_START, CUT_STOP
from hil.pooling_scenario import PoolingScenario
from hil.virtual_plc_base import VirtualPlcBase

POOLING_NODES = ("strategy", "strategy_in_use", "fallback_reason", "run_time_s", "collecting", "planned_cut_start_s",
                 "planned_cut_stop_s", "predicted_peak_time_s", "predicted_peak_time_s_std",
                 "predicted_peak_concentration", "predicted_peak_concentration_std", "predicted_pool_purity",
                 "predicted_pool_purity_std", "predicted_pool_purity_at_confidence", "predicted_pool_yield",
                 "predicted_pool_yield_std", "samples", "replans", "setpoints_written", "writes_failed", "last_event",
                 "method_step_name")


class PoolingRunError(RuntimeError):
    """The scenario could not be run (plant without a pool, plant time stuck, run not over in time)."""


async def _paced(scenario: PoolingScenario, plc: VirtualPlcBase, end_s: float, stall_limit_s: float) -> None:
    """Wait (polling plant time) until the run time reaches ``end_s``; PoolingRunError when plant time stalls."""
    plant = plc.plant
    last_plant, last_wall = plc.plant_time_s, time.monotonic()
    poll_s = max(0.005, min(0.05, scenario.plant_step_s / scenario.speed))
    while plant.run_time_s < end_s:  # type: ignore[attr-defined]
        if plc.plant_time_s > last_plant:
            last_plant, last_wall = plc.plant_time_s, time.monotonic()
        elif time.monotonic() - last_wall > stall_limit_s:
            raise PoolingRunError(f"unit '{scenario.unit}': plant time stuck at {plc.plant_time_s:.1f} s for "
                                  f"{stall_limit_s:g} s wall (virtual PLC stopped?)")
        await asyncio.sleep(poll_s)


async def _lockstep(scenario: PoolingScenario, plc: VirtualPlcBase, run_time_node: Node, end_s: float,
                    lockstep_s: float, stall_limit_s: float) -> None:
    """Advance the plant by ``lockstep_s`` and wait for the twin to take that sample, until ``end_s``."""
    plant = plc.plant
    while plant.run_time_s < end_s:  # type: ignore[attr-defined]
        plc.advance(lockstep_s)
        now = plant.run_time_s  # type: ignore[attr-defined]
        if now > scenario.run_end_s:
            continue  # the twin takes no sample after the window
        deadline = time.monotonic() + stall_limit_s
        while True:
            seen = await run_time_node.read_data_value()
            if seen.StatusCode.is_good() and seen.Value.Value is not None and seen.Value.Value >= now - 1e-6:
                break
            if time.monotonic() > deadline:
                raise PoolingRunError(f"unit '{scenario.unit}': the twin did not take the sample at run time "
                                      f"{now:.0f} s within {stall_limit_s:g} s wall")
            await asyncio.sleep(0.005)


async def run_pooling_scenario(scenario: PoolingScenario, bench: HilBench, endpoint: str, namespace: str,
                               line_name: str, settle_s: float = 5.0, stall_limit_s: float = 30.0,
                               credentials: tuple[str, str] | None = None,
                               lockstep_s: float | None = None) -> dict[str, Any]:
    """Follow one run of ``scenario`` to the end of its fractionation window; the report (module docstring).

    ``lockstep_s``: None — the bench runs wall-paced at the scenario's speed and the twin keeps up or lags (real
    HIL); a number — the skid's PLC is in lockstep (:attr:`~hil.virtual_plc_base.VirtualPlcBase.lockstep`, set
    before the bench started): the runner advances the plant ``lockstep_s`` plant seconds, then waits until the
    twin's ``run_time_s`` node shows it took that sample (estimate, plan and cut writes done), and so on —
    still over Modbus and OPC UA, deterministic under any machine load.

    Raises:
        PoolingRunError: the plant keeps no pool (not the physics column), plant time stops advancing (paced) or
            the twin does not take a sample (lockstep) for ``stall_limit_s`` wall seconds.
    """
    plc = bench.plc(scenario.unit)
    plant = plc.plant
    pool_of = physics_capability(plant, scenario.unit, "pool", "keeps no pool", PoolingRunError)
    spec = scenario.plan.spec
    end = scenario.run_end_s + settle_s
    wall_start = time.monotonic()
    client = Client(endpoint)
    if credentials is not None:
        client.set_user(credentials[0])
        client.set_password(credentials[1])
    async with client:
        idx = await client.get_namespace_index(namespace)
        nodes = [client.get_node(ua.NodeId(f"{line_name}.{scenario.unit}.control.{n}", idx)) for n in POOLING_NODES]
        if lockstep_s is not None:
            await _lockstep(scenario, plc, nodes[POOLING_NODES.index("run_time_s")], end, lockstep_s, stall_limit_s)
        else:
            await _paced(scenario, plc, end, stall_limit_s)
        wall_s = time.monotonic() - wall_start
        values = await client.read_attributes(nodes, ua.AttributeIds.Value)
    twin = {n: (dv.Value.Value if dv.StatusCode.is_good() and dv.Value is not None else None)
            for n, dv in zip(POOLING_NODES, values, strict=True)}
    pool = pool_of(spec.target, spec.impurities)
    kpis = {"pool_yield": pool["yield"], "pool_purity": pool["purity"],
            "spec_met": bool(pool["purity"] >= spec.purity_min),
            "valve_opened_s": None if math.isnan(pool["start_s"]) else pool["start_s"],
            "valve_closed_s": None if math.isnan(pool["stop_s"]) else pool["stop_s"],
            "plc_cut_start_s": plc.read_tag(CUT_START), "plc_cut_stop_s": plc.read_tag(CUT_STOP)}
    return {"scenario": {"name": scenario.name, "strategy": scenario.strategy, "speed": scenario.speed,
                         "seed": scenario.seed, "purity_min": spec.purity_min},
            "kpis": kpis, "twin": twin, "pool": pool,
            "run": {"wall_time_s": wall_s, "plant_time_s": plc.plant_time_s,
                    "dropped_plant_steps": plc.dropped_steps}}
