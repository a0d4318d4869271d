"""A live one-unit line (the demo's feed tank behind a HIL virtual PLC) with alarms configured, and an asyncua
event subscriber that records every condition event it gets."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from asyncua import Client, Node, ua

from plc_adapters.errors import WriteRefusal, WriteRefused
from tests.conftest import wait_until
from tests.security_helpers import add_operator
from tests.twin_server.line_fixture import PILOT, LiveLine, live_line
from twin_server.config import LineConfig, parse_line_config
from twin_server.server import TwinServer

JACKET_ALARM = {"high_high": 60.0, "high": 30.0, "deadband": 0.5, "severity": 700}
"""On the feed tank's jacket return temperature (starts at 20 °C): a high setpoint drives it past 30 °C."""
CONDITION = "pilot_line.feed_tank.alarms.jacket_temperature_limit"
COMMS = "pilot_line.feed_tank.alarms.comms_loss"


def feed_tank_config(tag_alarms: Mapping[str, Any] | None = None,
                     historian: Mapping[str, Any] | None = None) -> LineConfig:
    """The feed tank alone, with ``tag_alarms`` on its jacket temperature (and ``historian`` as ``[historian]``)."""
    raw = tomllib.loads(PILOT.read_text())
    raw["units"] = {"feed_tank": copy.deepcopy(raw["units"]["feed_tank"])}
    if historian is not None:
        raw["historian"] = dict(historian)
    raw["units"]["feed_tank"]["tags"]["jacket_temperature"]["alarms"] = dict(tag_alarms or JACKET_ALARM)
    return parse_line_config(raw, source=str(PILOT))


@asynccontextmanager
async def live_alarm_line(speed: float = 50.0, tag_alarms: Mapping[str, Any] | None = None,
                          historian: Mapping[str, Any] | None = None) -> AsyncIterator[LiveLine]:
    add_operator()
    config = feed_tank_config(tag_alarms, historian)
    config = dataclasses.replace(config, scan_period_s=0.1)
    async with live_line(config, speed) as line:
        yield line


@dataclass
class EventRecorder:
    """An asyncua subscription handler keeping every event's fields by browse path (``ActiveState/Id``, …)."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def event_notification(self, event: Any) -> None:
        self.events.append({k: v.Value for k, v in event.get_event_props_as_fields_dict().items()})

    def of(self, condition_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if isinstance(e.get("NodeId"), ua.NodeId)
                and e["NodeId"].Identifier == condition_id]

    def types(self) -> list[int]:
        return [e["EventType"].Identifier for e in self.events]


EVENT_TYPES = [ua.ObjectIds.ExclusiveLimitAlarmType, ua.ObjectIds.OffNormalAlarmType, ua.ObjectIds.AlarmConditionType,
               ua.ObjectIds.RefreshStartEventType, ua.ObjectIds.RefreshEndEventType]


async def subscribe_events(client: Client, source: Node, recorder: EventRecorder) -> Any:
    sub = await client.create_subscription(50, recorder)
    await sub.subscribe_events(source, EVENT_TYPES)
    return sub


async def condition_refresh(client: Client, subscription_id: int) -> None:
    await client.get_node(ua.ObjectIds.ConditionType).call_method(
        ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh), ua.Variant(subscription_id, ua.VariantType.UInt32))


async def drive_jacket(twin: TwinServer, value: float) -> None:
    """Write the feed tank's jacket setpoint, waiting out the rate limit (one second's worth of max_rate per
    write) if the previous write was too recent."""

    async def accepted() -> bool:
        try:
            await twin.runtime.write_setpoint("feed_tank", "jacket_temperature_setpoint", value)  # type: ignore[union-attr]
        except WriteRefused as exc:
            if exc.reason is not WriteRefusal.RATE_LIMIT:
                raise
            return False
        return True

    await wait_until(accepted, 30, poll_s=0.2, what=f"jacket setpoint {value} accepted")
