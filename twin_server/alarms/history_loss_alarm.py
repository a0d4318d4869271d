"""The line's ``historian_data_loss`` condition (AlarmConditionType, source: the line object): active as soon as
the historian loses samples — its bounded queue dropped the oldest (the store fell that far behind), the InfluxDB
store-and-forward buffer was full and dropped its oldest batches, or InfluxDB refused a batch as malformed — and
cleared once no sample was lost for ``[historian] loss_alarm_clear_s`` seconds.

A task polls the historian's loss counter (:meth:`~twin_server.historian.service.Historian.lost_samples`, a
plain integer read: nothing on the hot path) every ``poll_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from twin_server.alarms.condition import AlarmCondition
from twin_server.background_task import cancel_and_wait

if TYPE_CHECKING:
    from twin_server.alarms.manager import AlarmManager

log = logging.getLogger("linetwin.alarms")


class HistoryLossAlarm:
    """Raises and clears the historian's data-loss condition from a loss counter."""

    def __init__(self, manager: AlarmManager, condition: AlarmCondition, lost: Callable[[], int],
                 clear_after_s: float, poll_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self._manager = manager
        self.condition = condition
        self._lost = lost
        self.clear_after_s = clear_after_s
        self.poll_s = poll_s
        self._clock = clock
        self._seen = lost()
        """Samples lost when last looked (losses before the twin started are not this run's)."""
        self._last_loss: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> None:
        """One look at the counter: raise on new losses, clear after ``clear_after_s`` without any."""
        lost, now = self._lost(), self._clock()
        if lost > self._seen:
            new, self._seen, self._last_loss = lost - self._seen, lost, now
            await self._manager.set_active(self.condition, f"historian lost {new} samples (queue or store-and-"
                                                           f"forward buffer full; {lost} lost since start)")
        elif (self.condition.state.active and self._last_loss is not None
              and now - self._last_loss >= self.clear_after_s):
            await self._manager.set_inactive(self.condition, f"historian: no samples lost for {self.clear_after_s:g} s "
                                                             f"({lost} lost since start)")

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # the watch must not die silently
                log.exception("historian data-loss alarm check failed")
            await asyncio.sleep(self.poll_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="historian-loss-alarm")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
