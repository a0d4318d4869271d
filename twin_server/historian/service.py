"""Wiring the historian into the twin server: open the backend, choose what is historized, mark the nodes
(``Historizing`` = True, ``AccessLevel`` HistoryRead bit) and install the HistoryRead service.

What is historized: every tag of the line config whose ``historize`` is not false (mirrored samples: value,
status code, source and server timestamps), the numeric control nodes (estimates and their 1σ, target,
batch time, NMPC solve time, counters), every setpoint the PLC accepted (value and source: operator / mpc /
recipe / fallback), every control event, every alarm state change (:mod:`.alarm_history`) and every audit entry
(:mod:`.audit_history`). Security: HistoryRead is allowed to every role (viewer and up).

With alarms (:meth:`Historian.attach_alarms`): the alarm-event sink, and the line's ``historian_data_loss``
condition, active while samples are being lost (queue or store-and-forward buffer full).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from asyncua import Server, ua

from plc_adapters.asyncua_seam import address_space, install_history_reader
from twin_server.historian.history_read import HistoryReadService
from twin_server.historian.recorder import HistoryRecorder
from twin_server.historian.records import HistoryBackend
from twin_server.historian.settings import HistorianSettings
from twin_server.historian.timebase import now_us

if TYPE_CHECKING:
    from twin_server.address_space import LineAddressSpace
    from twin_server.alarms.history_loss_alarm import HistoryLossAlarm
    from twin_server.alarms.manager import AlarmManager
    from twin_server.audit import AuditTrail
    from twin_server.config import LineConfig

log = logging.getLogger("linetwin.historian")


def open_backend(settings: HistorianSettings, data_dir: Path) -> HistoryBackend:
    """The configured store (SQLite file in ``data_dir``, or InfluxDB with its forward buffer there)."""
    if settings.backend == "influxdb":
        from twin_server.historian.influx_store import InfluxStore

        return InfluxStore(settings.influx, data_dir, settings.forward_buffer_samples)
    from twin_server.historian.sqlite_store import SqliteStore

    return SqliteStore(data_dir)


class Historian:
    """The twin's historian: a recorder (hot-path calls) in front of a backend, and its HistoryRead service.

    ``data_dir``: the historian's folder (the twin passes its line data dir's ``history/``); ``None``: a temporary
    directory removed at :meth:`close` (said so in the log).
    """

    def __init__(self, config: LineConfig, data_dir: Path | None = None) -> None:
        self.settings = config.historian
        resolved = data_dir
        self._temporary = resolved is None
        if resolved is None:
            resolved = Path(tempfile.mkdtemp(prefix=f"linetwin-{config.name}-history-"))
            log.info("history kept in a temporary directory %s (removed at stop; pass --data-dir to keep it)",
                     resolved)
        self.data_dir = resolved
        self.backend = open_backend(self.settings, resolved)
        self.recorder = HistoryRecorder(self.backend, self.settings.flush_interval_s, self.settings.batch_size,
                                        self.settings.queue_size, self.settings.retention_days * 86400.0)
        self.keys: dict[ua.NodeId, str] = {}
        self._config = config
        self.loss_alarm: HistoryLossAlarm | None = None
        self.history_read: HistoryReadService | None = None

    async def attach(self, server: Server, space: LineAddressSpace) -> None:
        """Historize the config's tags, mark their nodes and install the HistoryRead service."""
        for (unit, tag), tn in space.tag_nodes.items():
            th = self.settings.tag(unit, tag)
            if not th.historize:
                continue
            key = str(tn.node_id.Identifier)
            self.recorder.historize_tag(unit, tag, key, th.deadband)
            self.keys[tn.node_id] = key
        for node_id in list(self.keys):
            await mark_historizing(server, node_id)
        nodes = address_space(server)
        per_read = min(self.settings.max_values_per_read, self._config.security.limits.max_history_values)
        service = HistoryReadService(nodes.exists, self.backend, self.keys, per_read, now_us)
        sources = {**space.unit_nodes, self._config.name: space.line_node}  # the line: its own alarms
        for unit, node_id in sources.items():  # control and alarm events: event history of the unit object
            service.event_sources[node_id] = unit
            notifier = nodes.read(node_id, ua.AttributeIds.EventNotifier).Value.Value or 0
            await nodes.write(node_id, ua.AttributeIds.EventNotifier, ua.DataValue(
                ua.Variant(int(notifier) | ua.EventNotifier.HistoryRead.mask, ua.VariantType.Byte)))
        install_history_reader(server, service.read_history)
        self.history_read = service
        await _advertise_capabilities(server)

    async def historize_values(self, server: Server, node_ids: list[ua.NodeId]) -> None:
        """Historize nodes the twin writes itself (control estimates, statistics)."""
        for node_id in node_ids:
            key = str(node_id.Identifier)
            self.recorder.historize_value(key)
            self.keys[node_id] = key
            await mark_historizing(server, node_id)

    async def historize_text(self, server: Server, node_id: ua.NodeId, unit: str,
                             origin: str) -> Callable[[str], None]:
        """Historize a String node whose values the twin keeps as event rows of ``unit`` with origin ``origin``
        (HistoryRead raw answers them as the node's values); returns the function that keeps a new value."""
        assert self.history_read is not None, "attach() first"
        self.history_read.text_series[node_id] = (unit, origin)
        await mark_historizing(server, node_id)
        return lambda text: self.recorder.record_event(unit, text, source=origin)

    async def attach_alarms(self, alarms: AlarmManager) -> None:
        """Historize every alarm event, and create the ``historian_data_loss`` condition."""
        from twin_server.historian.alarm_history import AlarmHistorySink

        alarms.sinks.append(AlarmHistorySink(self.recorder))
        self.loss_alarm = await alarms.history_loss_alarm(self.lost_samples, self.settings.loss_alarm_severity,
                                                          self.settings.loss_alarm_clear_s)

    def attach_audit(self, audit: AuditTrail) -> None:
        """Keep every audit entry as an event of its unit (or of the line): :mod:`.audit_history`."""
        from twin_server.historian.audit_history import AuditHistorySink

        audit.sinks.append(AuditHistorySink(self.recorder, self._config.name, [u.name for u in self._config.units]))

    def lost_samples(self) -> int:
        """Samples lost since the start: dropped from the full queue, from the full store-and-forward buffer, or
        refused by InfluxDB as malformed."""
        buffer = getattr(self.backend, "buffer", None)
        return (self.recorder.dropped + (buffer.dropped if buffer is not None else 0)
                + int(getattr(self.backend, "refused", 0)))

    async def stop_alarms(self) -> None:
        if self.loss_alarm is not None:
            await self.loss_alarm.stop()

    def start(self) -> None:
        self.recorder.start()
        if self.loss_alarm is not None:
            self.loss_alarm.start()
        log.info("historian: %s in %s (%d nodes historized, flush every %g s)", self.backend.name, self.data_dir,
                 len(self.keys), self.settings.flush_interval_s)

    def close(self) -> None:
        """Flush, close the store (and remove a temporary data directory)."""
        self.recorder.stop()
        self.backend.close()
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def status_text(self) -> str:
        return self.recorder.status_text()


async def mark_historizing(server: Server, node_id: ua.NodeId) -> None:
    """``Historizing`` = True and the HistoryRead bit in ``AccessLevel`` / ``UserAccessLevel``."""
    nodes = address_space(server)
    await nodes.write(node_id, ua.AttributeIds.Historizing, ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)))
    for attr in (ua.AttributeIds.AccessLevel, ua.AttributeIds.UserAccessLevel):
        current = nodes.read(node_id, attr).Value.Value or 0
        await nodes.write(node_id, attr, ua.DataValue(
            ua.Variant(int(current) | ua.AccessLevel.HistoryRead.mask, ua.VariantType.Byte)))


async def _advertise_capabilities(server: Server) -> None:
    """HistoryServerCapabilities: raw, processed and at-time reads are supported; nothing is updated."""
    nodes = address_space(server)
    flags = {
        ua.ObjectIds.HistoryServerCapabilities_AccessHistoryDataCapability: True,
        ua.ObjectIds.HistoryServerCapabilities_AccessHistoryEventsCapability: True,
        ua.ObjectIds.HistoryServerCapabilities_InsertDataCapability: False,
        ua.ObjectIds.HistoryServerCapabilities_ReplaceDataCapability: False,
        ua.ObjectIds.HistoryServerCapabilities_UpdateDataCapability: False,
        ua.ObjectIds.HistoryServerCapabilities_DeleteRawCapability: False,
        ua.ObjectIds.HistoryServerCapabilities_DeleteAtTimeCapability: False,
    }
    for oid, value in flags.items():
        nid = ua.NodeId(oid)
        if nodes.exists(nid):
            await nodes.write(nid, ua.AttributeIds.Value, ua.DataValue(ua.Variant(value, ua.VariantType.Boolean)))
