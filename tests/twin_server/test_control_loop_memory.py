"""A control loop running for months keeps a bounded number of its events in memory (issue 21)."""

from __future__ import annotations

from tests.twin_server.test_control_loop import control_node, controlled_line
from twin_server.control_loop import EVENTS_KEPT


async def test_loop_events_stay_at_their_bound_and_keep_the_newest():
    async with controlled_line() as (twin, _bench, client, idx):
        loop = twin.control_loops["crystallizer"]
        for i in range(EVENTS_KEPT + 500):
            await loop.record_event(f"drift check {i}")
        assert len(loop.events) == EVENTS_KEPT
        assert loop.events[-1] == f"drift check {EVENTS_KEPT + 499}"
        assert "drift check 499" not in loop.events
        assert (await control_node(client, idx, "last_event").read_value()).endswith(f"drift check {EVENTS_KEPT + 499}")
