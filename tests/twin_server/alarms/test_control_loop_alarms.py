"""Control-loop conditions, live on the crystallizer (physics plant 400x real time): the NMPC fallback alarm goes
active when every solve misses its deadline and clears when the operator switches to manual; the estimator
divergence alarm goes active when an innovation exceeds its bound."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from asyncua import Client, ua

from tests.conftest import wait_until
from tests.security_helpers import OPERATOR, add_operator, client_as
from tests.twin_server.alarms.alarm_line import EventRecorder, subscribe_events
from tests.twin_server.line_fixture import NAMESPACE, PILOT, live_line
from twin_server.alarms.alarm_config import UnitAlarmConfig
from twin_server.config import load_line_config
from twin_server.server import TwinServer

SPEED = 400.0
FALLBACK = "pilot_line.crystallizer.alarms.nmpc_fallback"
DIVERGENCE = "pilot_line.crystallizer.alarms.estimator_divergence"


@asynccontextmanager
async def crystallizer_with_alarms() -> AsyncIterator[tuple[TwinServer, Client, int]]:
    base = load_line_config(PILOT)
    control = {"time_scale": SPEED, "batch_duration_s": 1800.0, "jacket_limits_c": [15.0, 40.0],
               "target_d43_um": 300.0, "solve_deadline_s": 1e-6, "initial_mode": "mpc"}
    alarms = UnitAlarmConfig(innovation_bounds={"temperature": 1e-6}, divergence_severity=650)
    unit = dataclasses.replace(base.unit("crystallizer"), control=control, alarms=alarms,
                               plant={"plant_model": "physics", "initial_temperature_c": 40.0})
    config = dataclasses.replace(base, units=(unit,), scan_period_s=0.05)
    add_operator()
    async with live_line(config, SPEED) as line, client_as(line.url, OPERATOR, timeout=30) as client:
        yield line.twin, client, await client.get_namespace_index(NAMESPACE)


@pytest.mark.slow
async def test_fallback_and_divergence_alarms_of_the_control_loop():
    async with crystallizer_with_alarms() as (twin, client, idx):
        events = EventRecorder()
        await subscribe_events(client, client.get_node(ua.NodeId("pilot_line.crystallizer", idx)), events)
        adapter = twin.runtime.adapters["crystallizer"]
        await wait_until(lambda: len(adapter.last_samples) > 0
                         and all(s.quality.is_good for s in adapter.last_samples.values()), 30,
                         what="Good crystallizer tags")
        control = client.get_node(ua.NodeId("pilot_line.crystallizer.control", idx))
        await control.call_method(ua.NodeId("pilot_line.crystallizer.control.StartBatch", idx))

        await wait_until(lambda: any(e["ActiveState/Id"] for e in events.of(FALLBACK)), 60,
                         what="the NMPC fallback alarm")
        raised = next(e for e in events.of(FALLBACK) if e["ActiveState/Id"])
        assert raised["EventType"] == ua.NodeId(ua.ObjectIds.AlarmConditionType)
        assert "fallback in use" in raised["Message"].Text and raised["SourceName"] == "crystallizer"
        await wait_until(lambda: any(e["ActiveState/Id"] for e in events.of(DIVERGENCE)), 60,
                         what="the estimator divergence alarm")
        diverging = next(e for e in events.of(DIVERGENCE) if e["ActiveState/Id"])
        assert "temperature innovation" in diverging["Message"].Text and diverging["Severity"] == 650

        mode = client.get_node(ua.NodeId("pilot_line.crystallizer.control.mode", idx))
        await mode.write_value(ua.Variant("manual", ua.VariantType.String))
        await wait_until(lambda: not events.of(FALLBACK)[-1]["ActiveState/Id"], 60,
                         what="the fallback alarm clearing in manual mode")
        assert events.of(FALLBACK)[-1]["Retain"] is True, "cleared but not acknowledged: retained"
