"""Handing each scan's samples to the adapter's consumer (the twin's runtime), the same way for every protocol.

The consumer's callback may be plain or async. A failing callback never stops the scans: its first failure is
logged with the traceback, later ones are not until it succeeds again (then the next failure is logged anew).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from plc_adapters.sample import Sample

SamplesCallback = Callable[[list[Sample]], Awaitable[None] | None]
"""Called with one list of samples per scan (or per subscription publish)."""


class SampleDelivery:
    """Delivers samples of unit ``unit`` to ``callback`` (None: samples are only kept by the adapter)."""

    def __init__(self, unit: str, callback: SamplesCallback | None, logger: logging.Logger) -> None:
        self.unit = unit
        self.callback = callback
        self._log = logger
        self.failing = False
        """True while the callback's last call raised."""

    async def deliver(self, samples: list[Sample]) -> None:
        if self.callback is None:
            return
        try:
            result = self.callback(samples)
            if inspect.isawaitable(result):
                await result
        except Exception:
            if not self.failing:
                self._log.exception("unit %s: on_samples callback failed (further failures are not logged until it "
                                    "succeeds again)", self.unit)
            self.failing = True
        else:
            self.failing = False
