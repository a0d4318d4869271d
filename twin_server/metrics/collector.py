"""The Prometheus collector of a running twin: reads the counters the twin already keeps, at scrape time.

Nothing is added to the hot paths: the adapters' stats, the runtime's per-unit health, the historian's queue,
forward buffer and loss counts, the alarm conditions and the control loops' counters are read when Prometheus
scrapes. Only write refusals are counted as they happen, by an audit counter (:class:`RefusalCounter`, called by
the audit trail for every entry before refusals beyond a rate are summarised), because the audit trail is where
every refusal, with its status code, already passes.

Every metric is prefixed ``linetwin_`` and labelled ``line``; per-unit metrics also carry ``unit``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from plc_adapters.asyncua_seam import activated_session_users, subscription_counts
from twin_server.audit import AuditEntry, AuditOutcome, role_label
from twin_server.metrics.health import HealthCheck, HealthState

if TYPE_CHECKING:
    from twin_server.server import TwinServer


class RefusalCounter:
    """Audit counter (:attr:`~twin_server.audit.AuditTrail.counters`): refused writes (value writes and mode
    changes) by the OPC UA status code returned."""

    ACTIONS = frozenset({"write", "mode_change"})

    def __init__(self) -> None:
        self.by_status: Counter[str] = Counter()

    def __call__(self, entry: AuditEntry) -> None:
        if entry.outcome is AuditOutcome.REFUSED and entry.action in self.ACTIONS:
            self.by_status[entry.status] += 1


class TwinCollector(Collector):
    """Yields the twin's metric families on each scrape (see docs/plant/monitoring.md for the list)."""

    def __init__(self, twin: TwinServer, health: HealthCheck, refusals: RefusalCounter) -> None:
        self._twin = twin
        self._health = health
        self._refusals = refusals

    def collect(self) -> Iterator[Metric]:
        twin = self._twin
        line = twin.config.name
        yield from self._units(line)
        yield from self._historian(line)
        yield from self._opcua(line)
        yield from self._control(line)
        refused = CounterMetricFamily("linetwin_write_refusals", "Client writes refused, by OPC UA status code",
                                      labels=["line", "reason"])
        for status, n in sorted(self._refusals.by_status.items()):
            refused.add_metric([line, status], n)
        yield refused
        if twin.alarms is not None:
            conditions = list(twin.alarms.conditions.values())
            yield _gauge("linetwin_alarms_active", "Alarm conditions active", line,
                         sum(1 for c in conditions if c.state.active))
            yield _gauge("linetwin_alarms_unacknowledged", "Alarm conditions not acknowledged", line,
                         sum(1 for c in conditions if not c.state.acked))
        verdict = self._health.verdict()
        state = GaugeMetricFamily("linetwin_health", "1 for the twin's current health state (ready, degraded, "
                                  "not_ready), 0 for the others", labels=["line", "state"])
        for s in HealthState:
            state.add_metric([line, s.value], 1.0 if verdict.state is s else 0.0)
        yield state

    def _units(self, line: str) -> Iterator[Metric]:
        runtime = self._twin.runtime
        families = {
            "scans": CounterMetricFamily("linetwin_plc_scans", "PLC scans run (OPC UA sources: publishes "
                                         "received)", labels=["line", "unit"]),
            "failed_scans": CounterMetricFamily("linetwin_plc_failed_scans", "PLC scans that failed (link "
                                                "error)", labels=["line", "unit"]),
            "overruns": CounterMetricFamily("linetwin_plc_scan_overruns", "Scan slots skipped because a scan "
                                            "ran past the next one", labels=["line", "unit"]),
            "latency": GaugeMetricFamily("linetwin_plc_scan_duration_seconds", "Wall time of the last scan, reads "
                                         "and mirroring included", labels=["line", "unit"], unit="seconds"),
            "up": GaugeMetricFamily("linetwin_plc_link_up", "1 while the unit's PLC link is up",
                                    labels=["line", "unit"]),
            "reconnects": CounterMetricFamily("linetwin_plc_reconnects", "Reconnections after a PLC link outage",
                                              labels=["line", "unit"]),
            "mirrored": CounterMetricFamily("linetwin_samples_mirrored", "Samples mirrored into the address "
                                            "space", labels=["line", "unit"]),
            "bad": CounterMetricFamily("linetwin_samples_bad", "Mirrored samples with Bad quality",
                                       labels=["line", "unit"]),
            "writes": CounterMetricFamily("linetwin_plc_writes", "Setpoint writes to the PLC by outcome "
                                          "(accepted, refused, unknown)", labels=["line", "unit", "outcome"]),
        }
        if runtime is not None:
            for unit, health in runtime.health.items():
                stats = runtime.adapters[unit].stats
                labels = [line, unit]
                scans = getattr(stats, "scans", None)
                families["scans"].add_metric(labels, scans if scans is not None else getattr(stats, "publishes", 0))
                families["failed_scans"].add_metric(labels, getattr(stats, "failed_scans", 0))
                families["overruns"].add_metric(labels, getattr(stats, "overruns", 0))
                families["latency"].add_metric(labels, getattr(stats, "last_scan_duration_s", 0.0))
                families["up"].add_metric(labels, 1.0 if health.connected else 0.0)
                families["reconnects"].add_metric(labels, getattr(stats, "reconnects", 0))
                families["mirrored"].add_metric(labels, health.samples_mirrored)
                families["bad"].add_metric(labels, health.bad_samples)
                families["writes"].add_metric([*labels, "accepted"], stats.writes)
                families["writes"].add_metric([*labels, "refused"], stats.refused_writes)
                families["writes"].add_metric([*labels, "unknown"], stats.unknown_outcome_writes)
        yield from families.values()

    def _historian(self, line: str) -> Iterator[Metric]:
        historian = self._twin.historian
        if historian is None:
            return
        yield _gauge("linetwin_historian_queue_depth", "Samples queued for the historian's writer", line,
                     historian.recorder.queue_depth())
        buffer = getattr(historian.backend, "buffer", None)
        yield _gauge("linetwin_historian_forward_buffer_samples", "Samples in InfluxDB's store-and-forward buffer "
                     "on disk, waiting to be sent", line, buffer.samples if buffer is not None else 0)
        lost = CounterMetricFamily("linetwin_historian_lost_samples", "Samples lost: queue or forward buffer full, "
                                   "refused by InfluxDB", labels=["line"])
        lost.add_metric([line], historian.lost_samples())
        yield lost

    def _opcua(self, line: str) -> Iterator[Metric]:
        twin = self._twin
        sessions = GaugeMetricFamily("linetwin_opcua_sessions", "Activated client sessions by role",
                                     labels=["line", "role"])
        subs = GaugeMetricFamily("linetwin_opcua_subscriptions", "Live client subscriptions", labels=["line"])
        notes = GaugeMetricFamily("linetwin_opcua_notifications", "Notification messages published by the live "
                                  "subscriptions", labels=["line"])
        if twin.serving:
            roles = Counter(role_label(u) or "anonymous" for u in activated_session_users(twin.server))
            for role, n in sorted(roles.items()):
                sessions.add_metric([line, role], n)
            n_subs, n_notes = subscription_counts(twin.server)
            subs.add_metric([line], n_subs)
            notes.add_metric([line], n_notes)
        yield from (sessions, subs, notes)

    def _control(self, line: str) -> Iterator[Metric]:
        solves = CounterMetricFamily("linetwin_nmpc_solves", "NMPC solves started", labels=["line", "unit"])
        failed = CounterMetricFamily("linetwin_nmpc_failed_solves", "NMPC solves failed, late or non-finite",
                                     labels=["line", "unit"])
        fallbacks = CounterMetricFamily("linetwin_nmpc_fallbacks", "Supervisor fallbacks used",
                                        labels=["line", "unit"])
        last = GaugeMetricFamily("linetwin_nmpc_last_solve_seconds", "Wall time of the last NMPC solve",
                                 labels=["line", "unit"], unit="seconds")
        for unit, loop in self._twin.control_loops.items():
            labels = [line, unit]
            solves.add_metric(labels, loop.counters["solves"])
            failed.add_metric(labels, loop.counters["failed_solves"])
            fallbacks.add_metric(labels, loop.counters["fallbacks_used"])
            last.add_metric(labels, loop.solve_times_ms[-1] / 1000.0 if loop.solve_times_ms else 0.0)
        yield from (solves, failed, fallbacks, last)


def _gauge(name: str, documentation: str, line: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["line"])
    family.add_metric([line], value)
    return family
