"""The alarm the README's demo section tells a user to provoke: as operator, write the feed tank's
``inlet_flow_setpoint`` = 1.0 m³/h; the level falls below its Low limit and ``feed_tank/alarms/level_limit`` goes
active, with an event at the line's notifier."""

from __future__ import annotations

import pytest
from asyncua import ua

from tests.conftest import wait_until, write_accepted
from tests.security_helpers import OPERATOR, client_as
from tests.twin_server.alarms.alarm_line import EventRecorder, subscribe_events
from tests.twin_server.line_fixture import NAMESPACE, live_pilot_line

LEVEL = "pilot_line.feed_tank.alarms.level_limit"
README_WRITE = ("pilot_line.feed_tank.inlet_flow_setpoint", 1.0)


@pytest.mark.slow
async def test_the_write_the_readme_suggests_raises_the_level_alarm(repo_root):
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    assert "`feed_tank/inlet_flow_setpoint` = 1.0" in readme and "level_limit" in readme
    async with live_pilot_line(speed=100.0, without=("capture_column",)) as line:  # the feed tank's alarm
        async with client_as(line.url, OPERATOR, timeout=30) as client:
            ns = await client.get_namespace_index(NAMESPACE)
            events = EventRecorder()
            await subscribe_events(client, client.get_node(ua.NodeId("pilot_line", ns)), events)
            runtime = line.twin.runtime
            assert runtime is not None
            await wait_until(lambda: runtime.health["feed_tank"].connected, 30, what="feed_tank link up")
            node, value = README_WRITE
            setpoint = client.get_node(ua.NodeId(node, ns))

            # the step 2.04 -> 1.0 m3/h is within max_rate x 1 s once the PLC has held its value for 0.52 s: right
            # after the twin's first scan the guard still refuses it (BadOutOfRange), a user never sees that
            await wait_until(lambda: write_accepted(setpoint, value), 10, poll_s=0.2,
                             what="the README's write accepted")
            await wait_until(lambda: any(e["ActiveState/Id"] for e in events.of(LEVEL)), 90,
                             what="the feed tank's level alarm after the README's write")
            active = [e for e in events.of(LEVEL) if e["ActiveState/Id"]][0]
            assert "below low" in active["Message"].Text or "low" in active["Message"].Text.lower(), active["Message"]
            assert "feed_tank.level_limit" in line.twin.status_line()
