"""Stopping a background task: cancelled, awaited to its end, the cancellation not passed on."""

from __future__ import annotations

import asyncio

from twin_server.background_task import cancel_and_wait


def test_a_running_task_is_cancelled_and_has_ended_on_return() -> None:
    async def scenario() -> tuple[bool, bool]:
        started, cleaned_up = asyncio.Event(), asyncio.Event()

        async def forever() -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                cleaned_up.set()

        task = asyncio.create_task(forever())
        await asyncio.wait_for(started.wait(), timeout=5.0)
        await cancel_and_wait(task)
        return task.cancelled(), cleaned_up.is_set()

    assert asyncio.run(scenario()) == (True, True)


def test_none_and_a_finished_task_are_fine() -> None:
    async def scenario() -> int:
        task = asyncio.create_task(asyncio.sleep(0, result=7))
        await task
        await cancel_and_wait(task)
        await cancel_and_wait(None)
        return task.result()

    assert asyncio.run(scenario()) == 7
