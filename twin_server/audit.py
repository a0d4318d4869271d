"""The audit trail: one :class:`AuditEntry` per action a client (or the twin itself) takes or is refused.

Every write, method call, mode change, login and refusal is recorded here with who did it, on which node,
the old and the new value, the outcome and the reason. :class:`AuditTrail` logs a shortened line on the
``linetwin.audit`` logger (rate-limited per user, node and outcome so one bulk Write cannot flood the log) and
hands the full entry to every sink (e.g. a tamper-evident store, OPC UA AuditEvents); sinks see the entry
unshortened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from plc_adapters.log_text import RepeatLimiter, shorten

log = logging.getLogger("linetwin.audit")


class AuditOutcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    UNKNOWN = "outcome unknown"
    """The request left for the PLC but no answer came: it may or may not have been applied."""
    FAILED = "failed"


@dataclass(frozen=True)
class AuditEntry:
    """One audited action. ``node``: the node id as ``ns=<uri>;s=<id>``-free text (``pilot_line.unit.tag``)."""

    action: str
    """write | call | login | logout | mode_change | config_load | acknowledge | …"""
    user: str
    node: str
    outcome: AuditOutcome
    status: str = "Good"
    """OPC UA status code name returned to the client."""
    old_value: object = None
    new_value: object = None
    reason: str = ""
    role: str = ""
    client: str = ""
    """Client application URI and/or address, where known."""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))


AuditSink = Callable[[AuditEntry], None]


class AuditTrail:
    """Records audit entries: a shortened, rate-limited log line and the full entry to every sink."""

    def __init__(self, sinks: list[AuditSink] | None = None, limiter: RepeatLimiter | None = None) -> None:
        self.sinks: list[AuditSink] = list(sinks or [])
        self._limiter = limiter or RepeatLimiter(burst=20, window_s=10.0)

    def record(self, entry: AuditEntry) -> None:
        for sink in self.sinks:
            sink(entry)
        suppressed = self._limiter.allow(f"{entry.user}|{entry.node}|{entry.outcome}|{entry.action}")
        if suppressed is None:
            return
        level = logging.INFO if entry.outcome is AuditOutcome.ACCEPTED else logging.WARNING
        more = f" ({suppressed} similar lines suppressed)" if suppressed else ""
        log.log(level, "%s %s by %s%s: %s -> %s: %s (%s)%s%s", entry.action, entry.node, entry.user,
                f" [{entry.role}]" if entry.role else "", shorten(entry.old_value), shorten(entry.new_value),
                entry.outcome.value, entry.status, f": {shorten(entry.reason, 200)}" if entry.reason else "", more)
