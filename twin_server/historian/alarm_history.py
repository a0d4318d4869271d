"""Alarm events in the historian: every state change of a condition (raise, acknowledge, confirm, clear) as an
event row ``(t_us, unit, "alarm", <JSON>)`` beside the control events, so the store's layout is unchanged.

The JSON object (keys in this order): ``condition`` (ConditionId's string, e.g.
``pilot_line.feed_tank.alarms.jacket_temperature_limit``), ``name`` (ConditionName), ``type`` (the condition
type's numeric id in namespace 0), ``transition`` (``raise`` — became active or moved to another limit state —,
``clear``, ``acknowledge``, ``confirm``), ``active``, ``acked``, ``confirmed``, ``retain``, ``limit_state``,
``severity``, ``message``, ``user`` and ``comment`` (of the acknowledge/confirm; empty otherwise).

:class:`AlarmHistorySink` is one of :attr:`twin_server.alarms.manager.AlarmManager.sinks`; HistoryRead events
(:mod:`.history_read`) and ``linetwin history export --kind events`` decode the rows with :func:`decode_alarm`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from twin_server.historian.recorder import HistoryRecorder

ALARM_SOURCE = "alarm"
"""The ``source`` of an alarm event row."""


def transition(before: tuple[bool, bool, bool, str | None] | None, active: bool, acked: bool, confirmed: bool,
               limit_state: str | None) -> str:
    """What changed from ``before`` (active, acked, confirmed, limit state; ``None`` = the initial normal state)."""
    was_active, was_acked, was_confirmed, was_limit = before or (False, True, True, None)
    if active and (not was_active or limit_state != was_limit):
        return "raise"
    if was_active and not active:
        return "clear"
    if acked and not was_acked:
        return "acknowledge"
    if confirmed and not was_confirmed:
        return "confirm"
    return "change"


class AlarmHistorySink:
    """An alarm sink that queues each condition event in the historian (one cheap append, no I/O)."""

    def __init__(self, recorder: HistoryRecorder) -> None:
        self._recorder = recorder
        self._last: dict[str, tuple[bool, bool, bool, str | None]] = {}

    def __call__(self, cond: Any, event: Any) -> None:
        st = cond.state
        key = cond.label
        now = (st.active, st.acked, st.confirmed, st.limit_state)
        what = transition(self._last.get(key), *now)
        self._last[key] = now
        by_operator = what in ("acknowledge", "confirm")
        record = {"condition": key, "name": cond.name, "type": int(cond.type_id.Identifier), "transition": what,
                  "active": st.active, "acked": st.acked, "confirmed": st.confirmed, "retain": st.retain,
                  "limit_state": st.limit_state, "severity": int(cond.severity), "message": st.message,
                  "user": st.comment_user if by_operator else "", "comment": st.comment if by_operator else ""}
        self._recorder.record_event(cond.unit, json.dumps(record, ensure_ascii=False), source=ALARM_SOURCE,
                                    ts=st.changed)


def decode_alarm(source: str, message: str) -> Mapping[str, Any] | None:
    """The alarm record of an event row, or ``None`` for a control event (or an unreadable row)."""
    if source != ALARM_SOURCE:
        return None
    try:
        record = json.loads(message)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
