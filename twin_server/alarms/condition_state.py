"""The state of one alarm condition, without I/O: Active, Acked and Confirmed (OPC 10000-9 §5.7, §5.8) and Retain.

- A condition starts inactive, acknowledged and confirmed (nothing to do), not retained.
- Becoming active, or moving to another limit state while active, needs a new acknowledgement and confirmation:
  Acked and Confirmed go False.
- Returning to normal clears Active only; the operator still acknowledges (and confirms) what happened.
- ``Retain`` (the condition is of interest to a client: OPC 10000-9 §5.5.2) is True while the condition is active or
  not yet acknowledged or not yet confirmed.
- Acknowledge refuses an acknowledged condition (``BadConditionBranchAlreadyAcked``); Confirm refuses a confirmed
  one (``BadConditionBranchAlreadyConfirmed``) and one not yet acknowledged (``BadInvalidState``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from asyncua import ua


class ConditionRefused(Exception):
    """A method on a condition refused: the status code for the client and the reason for the audit trail."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{ua.StatusCode(code).name}: {reason}")
        self.code = code
        self.reason = reason


@dataclass
class ConditionState:
    """What a client sees of one condition (besides the fields fixed at configuration)."""

    active: bool = False
    acked: bool = True
    confirmed: bool = True
    limit_state: str | None = None
    """For limit alarms: the active limit state's name (``HighHigh``, …), else ``None``."""
    message: str = ""
    comment: str = ""
    comment_user: str = ""
    value: float | None = None
    """The value that caused the last transition, in the tag's engineering unit (limit alarms)."""
    active_since: datetime | None = None
    acked_time: datetime | None = None
    confirmed_time: datetime | None = None
    changed: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def retain(self) -> bool:
        return self.active or not self.acked or not self.confirmed

    def activate(self, message: str, limit_state: str | None = None, value: float | None = None,
                 now: datetime | None = None) -> bool:
        """Make the condition active (in ``limit_state``). Returns True if anything a client sees changed."""
        if self.active and limit_state == self.limit_state:
            return False
        now = now or datetime.now(UTC)
        if not self.active:
            self.active_since = now
        self.active, self.acked, self.confirmed = True, False, False
        self.limit_state, self.message, self.value, self.changed = limit_state, message, value, now
        return True

    def deactivate(self, message: str, value: float | None = None, now: datetime | None = None) -> bool:
        """Return to normal. Returns True if the condition was active."""
        if not self.active:
            return False
        self.active, self.limit_state, self.message, self.value = False, None, message, value
        self.changed = now or datetime.now(UTC)
        return True

    def acknowledge(self, comment: str, user: str, now: datetime | None = None) -> None:
        if self.acked:
            raise ConditionRefused(ua.StatusCodes.BadConditionBranchAlreadyAcked, "already acknowledged")
        self.acked, self.comment, self.comment_user = True, comment, user
        self.acked_time = self.changed = now or datetime.now(UTC)

    def confirm(self, comment: str, user: str, now: datetime | None = None) -> None:
        if self.confirmed:
            raise ConditionRefused(ua.StatusCodes.BadConditionBranchAlreadyConfirmed, "already confirmed")
        if not self.acked:
            raise ConditionRefused(ua.StatusCodes.BadInvalidState, "acknowledge before confirming")
        self.confirmed, self.comment, self.comment_user = True, comment, user
        self.confirmed_time = self.changed = now or datetime.now(UTC)
