"""Audit entries in the historian: every audited action (write, method call, login, refusal, …) also as an event row
``(t_us, unit, "audit", <one-line description>)`` beside the control and alarm events, so HistoryRead events on a
unit (or, for line-wide actions such as logins, on the line object) and ``linetwin history export --kind events``
show who did what — to readers with the audit role (``[security] audit_events_role``, :data:`AUDIT_EVENTS_VISIBLE`);
viewers and anonymous clients get the process events only. The tamper-evident record stays the hash-chained audit
store (:mod:`twin_server.security`); this is the historian's copy, with values shortened.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable

from twin_server.audit import AuditEntry, describe
from twin_server.historian.recorder import HistoryRecorder

AUDIT_SOURCE = "audit"
"""The ``source`` of an audit event row."""

AUDIT_EVENTS_VISIBLE: contextvars.ContextVar[bool] = contextvars.ContextVar("linetwin_audit_events_visible",
                                                                             default=False)
"""Whether the HistoryRead being answered may return audit rows (logins, refusals, who wrote what): set by the
session hooks from the reader's role (``[security] audit_events_role``); a read no hook vouched for gets only
process events (control and alarm events)."""


class AuditHistorySink:
    """An audit-trail sink that queues each entry in the historian (one cheap append, no I/O)."""

    def __init__(self, recorder: HistoryRecorder, line: str, units: Iterable[str]) -> None:
        self._recorder = recorder
        self._line = line
        self._prefixes = {f"{line}.{unit}": unit for unit in units}

    def unit_of(self, node: str) -> str:
        """The unit an audited node belongs to (``pilot_line.feed_tank.x`` → ``feed_tank``), else the line."""
        parts = node.split(".")
        if len(parts) >= 2:
            key = f"{parts[0]}.{parts[1]}"
            unit = self._prefixes.get(key)
            if unit is not None:
                return unit
        return self._line

    def __call__(self, entry: AuditEntry) -> None:
        self._recorder.record_event(self.unit_of(entry.node), describe(entry), source=AUDIT_SOURCE, ts=entry.time)
