"""Refused requests from one client aggregated beyond a rate, so a flood of refusals costs the audit trail one
summary row, not a row each.

Per client address (port ignored: a reconnecting script is the same client; guessed user names do not make new
clients), the first ``burst`` refused entries in a window of ``window_s`` seconds are recorded one by one; the rest
of that window are counted (how many, first and last time, actions, status codes, up to five nodes and user names)
and recorded as one ``refusals_aggregated`` entry when the window ends (at the next entry of any kind, or at
:meth:`RefusalAggregator.flush`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from twin_server.audit import AuditEntry, AuditOutcome

AGGREGATED_ACTION = "refusals_aggregated"
MAX_NODES_NAMED = 5
NAME_CHARS = 120
"""Characters of a node or user name kept in a summary (so a summary stays small whatever the names)."""


def client_address(client: str) -> str:
    """The address part of an audit client label (``urn:x 127.0.0.1:50211`` → ``127.0.0.1``)."""
    last = client.rsplit(" ", 1)[-1] if client else ""
    host, sep, port = last.rpartition(":")
    return host if sep and port.isdigit() else last


@dataclass
class _Window:
    start: float
    passed: int = 0
    first: AuditEntry | None = None
    last: AuditEntry | None = None
    count: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    nodes: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)


@dataclass
class RefusalAggregator:
    """Decides which refused entries are recorded one by one and summarises the rest (see the module doc)."""

    burst: int = 20
    window_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _windows: dict[str, _Window] = field(default_factory=dict)
    _next_sweep: float = float("-inf")

    def admit(self, entry: AuditEntry) -> tuple[bool, list[AuditEntry]]:
        """``(record this entry?, summaries of ended windows to record first)``."""
        now = self.clock()
        summaries = self._expire(now)
        if entry.outcome is not AuditOutcome.REFUSED or entry.action == AGGREGATED_ACTION:
            return True, summaries
        key = client_address(entry.client) or f"user {entry.user}"
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = _Window(start=now)
        if w.passed < self.burst:
            w.passed += 1
            return True, summaries
        w.count += 1
        w.first = w.first or entry
        w.last = entry
        w.actions[entry.action] += 1
        w.statuses[entry.status] += 1
        if len(w.nodes) <= MAX_NODES_NAMED:
            w.nodes.add(entry.node[:NAME_CHARS])
        if len(w.users) <= MAX_NODES_NAMED:
            w.users.add(entry.user[:NAME_CHARS])
        return False, summaries

    def flush(self) -> list[AuditEntry]:
        """Summaries of every window with counted refusals (at shutdown)."""
        return self._expire(None)

    def _expire(self, now: float | None) -> list[AuditEntry]:
        """Summaries of windows that ended (all with ``now`` None); the windows are swept at most every tenth of a
        window, so many clients cost no scan per entry."""
        if now is not None and now < self._next_sweep:
            return []
        if now is not None:
            self._next_sweep = now + self.window_s / 10
        summaries = []
        for key, w in list(self._windows.items()):
            if now is not None and now - w.start < self.window_s:
                continue
            del self._windows[key]
            if w.count:
                summaries.append(self._summary(w))
        return summaries

    def _summary(self, w: _Window) -> AuditEntry:
        assert w.first is not None and w.last is not None
        nodes = sorted(w.nodes)[:MAX_NODES_NAMED]
        node = nodes[0] if len(w.nodes) == 1 else f"({len(nodes)}{'+' if len(w.nodes) > MAX_NODES_NAMED else ''} nodes)"
        first, last = _iso(w.first.time), _iso(w.last.time)
        return AuditEntry(
            action=AGGREGATED_ACTION, user=w.last.user, role=w.last.role, client=w.last.client, node=node,
            outcome=AuditOutcome.REFUSED, status=w.statuses.most_common(1)[0][0],
            new_value={"count": w.count, "first": first, "last": last, "actions": dict(w.actions),
                       "statuses": dict(w.statuses), "nodes": nodes,
                       "users": sorted(w.users)[:MAX_NODES_NAMED]},
            reason=f"{w.count} further refused request(s) from {client_address(w.last.client) or 'this client'} "
                   f"between {first} and {last}, beyond {self.burst} per {self.window_s:g} s (not recorded singly)",
            time=w.last.time)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="microseconds")
