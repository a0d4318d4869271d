"""A unit's ``surrogate_drift`` condition (AlarmConditionType): active while the unit's surrogate watch reports
drift — the surrogate-vs-physics disagreement (NRMSE over the window) above ``disagreement_threshold`` of
``[units.<unit>.surrogate]`` — and cleared at the first comparison back at or under the threshold.

Driven by :class:`~twin_server.surrogate_nodes.SurrogateWatch` after every comparison (estimator period).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from twin_server.alarms.condition import AlarmCondition

if TYPE_CHECKING:
    from twin_server.alarms.manager import AlarmManager


class SurrogateDriftAlarm:
    """What a surrogate watch reports to its unit's ``surrogate_drift`` condition."""

    def __init__(self, manager: AlarmManager, unit: str, condition: AlarmCondition, threshold: float) -> None:
        self._manager = manager
        self.unit = unit
        self.condition = condition
        self.threshold = threshold
        """The drift threshold of the disagreement (fraction), for the message."""

    async def update(self, drift: bool, disagreement: float) -> None:
        """One comparison: ``drift`` as the watch decided it, ``disagreement`` the NRMSE (fraction; NaN = none)."""
        shown = f"{disagreement:.2%}" if math.isfinite(disagreement) else "not finite"
        if drift:
            await self._manager.set_active(self.condition, f"{self.unit}: surrogate drift: disagreement with physics "
                                                           f"{shown} > {self.threshold:.2%}")
        else:
            await self._manager.set_inactive(self.condition, f"{self.unit}: surrogate agrees with physics again "
                                                             f"({shown} <= {self.threshold:.2%})")
