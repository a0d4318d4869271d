"""A crystallizer batch under NMPC run to its end and started again (issue #7: the first NMPC solve after a
finished batch failed with IPOPT ``Invalid_Number_Detected``).

Live over real sockets (virtual PLC with the physics crystallizer at 400x, twin, asyncua client). The NMPC's
``step`` is wrapped to record when it was called, whether it started warm and whether calls overlapped.
"""

from __future__ import annotations

import threading

from asyncua import ua

from tests.conftest import wait_until
from tests.twin_server.test_control_loop import (
    control_node,
    controlled_line,
    start_batch,
    wait_for_good_measurements,
)

BATCH_S = 1200.0


async def test_a_finished_batch_leaves_no_stale_solve_behind_for_the_next():
    async with controlled_line(initial_mode="mpc", batch_duration_s=BATCH_S) as (twin, _bench, client, idx):
        loop = twin.control_loops["crystallizer"]
        nmpc = loop.plan.nmpc
        calls: list[tuple[float, bool]] = []  # (batch time, warm start at entry)
        statuses: list[str] = []
        overlap = {"active": 0, "max": 0}
        lock = threading.Lock()
        real_step = nmpc.step

        def recorded_step(t, *args, **kwargs):
            with lock:
                overlap["active"] += 1
                overlap["max"] = max(overlap["max"], overlap["active"])
                calls.append((t, nmpc.has_warm_start))
            try:
                result = real_step(t, *args, **kwargs)
                statuses.append(result.status)
                return result
            finally:
                with lock:
                    overlap["active"] -= 1

        nmpc.step = recorded_step
        batch_active = control_node(client, idx, "batch_active")

        async def batch_over() -> bool:
            return await batch_active.read_value() is False

        await wait_for_good_measurements(twin)
        await start_batch(client, idx)
        await wait_until(lambda: len(calls) >= 1, timeout_s=60.0, what="a first solve")
        await wait_until(batch_over, timeout_s=120.0, what="the batch to reach its end")
        first_batch = len(calls)
        await wait_until(lambda: overlap["active"] == 0, timeout_s=60.0, what="the last solve of batch 1 to end")

        await control_node(client, idx, "mode").write_value(ua.DataValue(ua.Variant("mpc", ua.VariantType.String)))
        await start_batch(client, idx)
        await wait_until(lambda: len(statuses) >= first_batch + 2, timeout_s=120.0, what="two solves in batch 2")

    assert all(t < BATCH_S for t, _ in calls), calls  # no solve on a horizon with no time left
    assert overlap["max"] == 1  # never two solves at once on one solver
    assert calls[first_batch][1] is False  # batch 2 starts cold, not from batch 1's end
    assert not [s for s in statuses if "Invalid_Number" in s], statuses
    assert statuses[first_batch] == "Solve_Succeeded", statuses[first_batch:]
