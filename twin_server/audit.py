"""The audit trail: one :class:`AuditEntry` per action a client (or the twin itself) takes or is refused.

Every write, method call, mode change, login and refusal is recorded here with who did it, on which node,
the old and the new value, the outcome and the reason. :class:`AuditTrail` logs a shortened line on the
``linetwin.audit`` logger — rate-limited per client and kind of event (action and outcome, never per node, so
one Write of 1,000 node ids or a loop of 1,000 writes makes a handful of lines), with a periodic summary of what
was suppressed (:meth:`AuditTrail.log_suppressed`, called by the server every minute) — and
hands the entry to every sink (e.g. a tamper-evident store, OPC UA AuditEvents). Sinks see the values in bounded
form (:func:`twin_server.security.audit_values.bounded_value`: short values whole, long text cut with its length
and SHA-256, ByteStrings as size and SHA-256), and refusals from one client beyond a rate as one summary entry
(:mod:`twin_server.security.audit_refusals`), so no client can fill the disk or flood the trail.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from plc_adapters.log_text import RepeatLimiter, shorten
from twin_server.security.audit_values import DEFAULT_TEXT_CHARS, bounded_value

if TYPE_CHECKING:  # asyncua only in annotations: the security commands' CLI imports this module without it
    from asyncua import ua
    from asyncua.crypto.permission_rules import User

    from twin_server.security.audit_refusals import RefusalAggregator

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


def audit_reconciliation(trail: AuditTrail, node_prefix: str) -> Callable[[str, float, float], None]:
    """An adapter's ``on_write_reconciled`` callback recording how a write of unknown outcome was resolved by a
    read-back (``write_reconciled``; new value = what the PLC holds, reason says applied or not)."""

    def record(tag: str, sent: float, held: float) -> None:
        applied = held == sent
        trail.record(AuditEntry(
            action="write_reconciled", user="linetwin", node=f"{node_prefix}.{tag}",
            outcome=AuditOutcome.ACCEPTED if applied else AuditOutcome.FAILED, old_value=sent, new_value=held,
            reason="read back after a write of unknown outcome: the PLC "
                   + ("applied it" if applied else "did not apply it (or it was overwritten since)")))

    return record


def user_label(user: User | None) -> str:
    """The user as the audit trail names them: the login name, or ``anonymous`` for a session without one."""
    name = getattr(user, "name", None)
    return _cut(str(name), 64) if name else "anonymous"


def role_label(user: User | None) -> str:
    """The twin role of the user (``viewer`` … ``admin``, from :mod:`twin_server.security`), else asyncua's role."""
    twin_role = getattr(user, "twin_role", None)
    if twin_role is not None:
        return str(getattr(twin_role, "label", twin_role))
    role = getattr(user, "role", None)
    return role.name.lower() if role is not None else ""


def client_label(user: User | None) -> str:
    """The client's application URI and address where the session knows them (``""`` otherwise)."""
    return str(getattr(user, "client", "") or "")


def node_label(node_id: ua.NodeId) -> str:
    """One consistent id for a node in audit lines: the string identifier of the twin's nodes
    (``pilot_line.feed_tank.jacket_temperature_setpoint``), else the standard text form (``i=2259``,
    ``ns=2;i=7``), shortened."""
    if isinstance(node_id.Identifier, str) and node_id.NamespaceIndex:
        return _cut(node_id.Identifier, 120)
    return _cut(node_id.to_string(), 120)


def _cut(text: str, limit: int) -> str:
    """``text`` without control characters, at most ``limit`` characters (the full length said if cut)."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text[: limit + 1])
    return clean if len(text) <= limit else f"{clean[: limit - 1]}… ({len(text)} chars)"


class AuditTrail:
    """Records audit entries: a shortened, rate-limited log line and the bounded entry to every sink.

    ``value_chars``: characters of a text value kept (see :mod:`twin_server.security.audit_values`);
    ``refusals``: the aggregator of refusals beyond a rate (default: 20 per client per 60 s).
    """

    def __init__(self, sinks: list[AuditSink] | None = None, limiter: RepeatLimiter | None = None,
                 value_chars: int = DEFAULT_TEXT_CHARS, refusals: RefusalAggregator | None = None) -> None:
        from twin_server.security.audit_refusals import RefusalAggregator  # it imports AuditEntry from here

        self.sinks: list[AuditSink] = list(sinks or [])
        self._limiter = limiter or RepeatLimiter(burst=LOG_BURST, window_s=LOG_WINDOW_S)
        self.value_chars = value_chars
        self.refusals = refusals if refusals is not None else RefusalAggregator()
        self.counters: list[AuditSink] = []
        """Called with every entry as recorded, before refusals are aggregated: for counters (the metrics
        endpoint's refused writes), which must keep no entry."""

    def record(self, entry: AuditEntry) -> None:
        for count in self.counters:
            count(entry)
        admitted, summaries = self.refusals.admit(entry)
        for summary in summaries:
            self._record(summary, bound=False)
        if admitted:
            self._record(entry)

    def flush(self) -> None:
        """Record the summaries of refusals still being counted (call before the sinks close)."""
        for summary in self.refusals.flush():
            self._record(summary, bound=False)

    def _record(self, entry: AuditEntry, bound: bool = True) -> None:
        """``bound``: False for the aggregator's summaries (bounded by construction, kept readable)."""
        if bound:
            entry = dataclasses.replace(
                entry, old_value=bounded_value(entry.old_value, self.value_chars),
                new_value=bounded_value(entry.new_value, self.value_chars),
                **{name: _bounded_text(getattr(entry, name), limit) for name, limit in TEXT_LIMITS.items()})
        for sink in self.sinks:
            sink(entry)
        suppressed = self._limiter.allow(log_key(entry))
        if suppressed is None:
            return
        level = logging.INFO if entry.outcome is AuditOutcome.ACCEPTED else logging.WARNING
        more = f" ({suppressed} similar lines suppressed)" if suppressed else ""
        log.log(level, "%s%s", describe(entry), more)

    def log_suppressed(self) -> int:
        """Log one summary line of the audit lines suppressed in rate-limit windows that have ended (per client
        and kind, largest first); returns how many were suppressed. The entries themselves are all in the sinks."""
        counts = self._limiter.drain_suppressed()
        if not counts:
            return 0
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        parts = [f"{key.replace('|', ' ')} ×{n}" for key, n in ranked[:10]]
        rest = f" and {len(ranked) - 10} more kinds" if len(ranked) > 10 else ""
        total = sum(counts.values())
        log.warning("audit log: %d lines suppressed (rate limit per client and kind; all are in the audit store): "
                    "%s%s", total, "; ".join(_cut(p, 200) for p in parts), rest)
        return total


LOG_BURST = 5
LOG_WINDOW_S = 10.0
"""Audit log lines per client and kind of event per window (the store and the AuditEvents get every entry)."""


def log_key(entry: AuditEntry) -> str:
    """What the audit log is rate-limited by: the client (its address and application URI, else the user) and
    the kind of event (action and outcome) — not the node."""
    return f"{entry.client or entry.user}|{entry.action}|{entry.outcome.value}"


TEXT_LIMITS = {"action": 100, "user": 128, "role": 64, "client": 400, "node": 400, "status": 100, "reason": 1000}
"""Characters kept of each text field of an entry (client application URIs and user names come from clients)."""


def _bounded_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (its length said); a client label keeps its address (the last word)."""
    if len(text) <= limit:
        return text
    address = text.rsplit(" ", 1)[-1][:80] if " " in text else ""
    return f"{text[:limit]}… ({len(text)} chars){f' {address}' if address else ''}"


def describe(entry: AuditEntry) -> str:
    """One line saying what happened (values and reason shortened): the log line and the historian's event text."""
    return (f"{entry.action} {entry.node} by {entry.user}{f' [{entry.role}]' if entry.role else ''}: "
            f"{shorten(entry.old_value)} -> {shorten(entry.new_value)}: {entry.outcome.value} ({entry.status})"
            f"{f': {_cut(entry.reason, 200)}' if entry.reason else ''}")
