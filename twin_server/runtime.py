"""The line runtime: owns one PLC adapter per unit and mirrors their samples into the address space.

Mirror path (hot path), report by exception: each adapter scan yields one list of samples; a sample whose published
value and status equal those last published for its tag (within the tag's ``report_deadband``,
:mod:`twin_server.mirror_settings`) costs one comparison and nothing else. The others each become one DataValue
(value, published status code, source timestamp), all written in one call straight into the server's address space
(the asyncua seam's ``write_values``: no client-style service round trip, subscriptions are notified by the
server's own data-change callbacks); only these go to the historian and the alarm conditions.

What "unchanged" means: the same published status code and the same value (``==``; within ``report_deadband`` when
one is set). A change of status alone (a link lost, an instrument out of range, a PLC's own Bad code) always goes
out, so a value that stops being fresh is never silent: a lost PLC link turns every tag of the unit Uncertain
(last usable value) within one scan and ``plc_connected`` false. A value that stays the same keeps the source
timestamp of the scan that first read it — the time of its last change, as OPC 10000-4 §7.11 asks of a
SourceTimestamp; ``UnitHealth.last_scan`` (and the ``/health`` endpoint) says the unit is still being read.

Setpoint path: :meth:`LineRuntime.write_setpoint` forwards to the unit's adapter, which validates
limits and rate before anything goes on the wire and raises ``WriteRefused`` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import Server, ua

from plc_adapters.adapter import AdapterFactory, PlcAdapter, adapter_for
from plc_adapters.asyncua_seam import address_space
from plc_adapters.errors import WriteRefusal, WriteRefused
from plc_adapters.quality import Quality
from plc_adapters.sample import Sample
from twin_server.address_space import LineAddressSpace
from twin_server.config import LineConfig, UnitConfig
from twin_server.historian.recorder import HistoryRecorder
from twin_server.status_codes import published_status

log = logging.getLogger("linetwin.runtime")

AlarmHook = Callable[[str, Sequence[Sample], bool], Awaitable[None]]
"""Awaited after each mirrored scan with (unit, samples, PLC connected): the alarm conditions' input."""

_LINK_LOSS = (Quality.BAD_COMMUNICATION_ERROR, Quality.BAD_NOT_CONNECTED)


@dataclass
class UnitHealth:
    """What the runtime knows of a unit's PLC link, for status lines and the address space."""

    connected: bool = False
    samples_mirrored: int = 0
    """Samples the adapter delivered (every tag of every scan)."""
    values_published: int = 0
    """Of those, the ones written to the address space (changed value or status: report by exception)."""
    bad_samples: int = 0
    last_scan: datetime | None = None


class LineRuntime:
    """Runs the line: adapters → address space, and setpoint writes → adapters.

    ``adapter_factory`` builds each unit's adapter; by default the one registered for the unit's connection kind
    (:func:`plc_adapters.adapter.adapter_for`)."""

    def __init__(self, config: LineConfig, server: Server, space: LineAddressSpace,
                 adapter_factory: AdapterFactory = adapter_for) -> None:
        self.config = config
        self._server = server
        self._write_attribute = address_space(server).write
        self._space = space
        self._adapters: dict[str, PlcAdapter] = {}
        self.health: dict[str, UnitHealth] = {u.name: UnitHealth() for u in config.units}
        self._node_of = {key: tn.node_id for key, tn in space.tag_nodes.items()}
        self._write_values = address_space(server).write_values
        self._published: dict[ua.NodeId, tuple[float | None, int]] = {}
        """Per tag node: the value and status code last written to it by the mirror (report by exception)."""
        self._deadband: dict[ua.NodeId, float] = {
            node_id: db for (unit, tag), node_id in self._node_of.items()
            if (db := config.mirror.report_deadband(unit, tag)) > 0.0}
        self._last_read: dict[ua.NodeId, datetime] = {}
        """Source timestamp of each tag's last usable (not Bad) sample: what a held value is stamped with."""
        self.alarm_hook: AlarmHook | None = None
        self.historian: HistoryRecorder | None = None
        """Set by the server: every mirrored sample and accepted setpoint is recorded (twin_server.historian)."""
        for unit in config.units:
            self._adapters[unit.name] = adapter_factory(
                unit.name, unit.connection, unit.tags, config.scan_period_s, on_samples=self._mirror_for(unit),
            )

    @property
    def adapters(self) -> dict[str, PlcAdapter]:
        return self._adapters

    async def start(self) -> None:
        for name, adapter in self._adapters.items():
            await adapter.start()
            conn = self.config.unit(name).connection
            log.info("unit %s: mirroring %s (scan period %.3f s)", name, conn.endpoint, self.config.scan_period_s)

    async def stop(self) -> None:
        for adapter in self._adapters.values():
            await adapter.stop()

    def _mirror_for(self, unit: UnitConfig) -> Callable[[list[Sample]], object]:
        async def mirror(samples: list[Sample]) -> None:
            await self.mirror_samples(unit.name, samples)
        return mirror

    async def mirror_samples(self, unit: str, samples: Sequence[Sample]) -> None:
        """Write one scan's changed samples into the address space (value, status code, source timestamp), then
        hand them to the historian and the alarm conditions (report by exception: see the module doc).

        A Bad sample that keeps the last usable value is published as Uncertain with that value and the source
        timestamp of the scan that read it (:func:`~twin_server.status_codes.published_status`); the samples
        themselves stay Bad.
        """
        server_ts = datetime.now(UTC)
        health = self.health[unit]
        bad = lost = 0
        last_read = self._last_read
        published = self._published
        deadband = self._deadband
        node_of = self._node_of
        changed: list[Sample] = []
        writes: list[tuple[ua.NodeId, ua.DataValue]] = []
        for s in samples:
            node_id = node_of.get((unit, s.tag))
            if node_id is None:
                continue
            quality = s.quality
            is_bad = quality.is_bad
            if is_bad:
                bad += 1
                lost += quality in _LINK_LOSS  # a Bad from the PLC itself (sensor failure ...) is no lost link
            value = s.value
            has_value = value is not None
            source_ts = s.source_timestamp
            if not is_bad:
                last_read[node_id] = source_ts
            elif has_value:  # the last usable value, stamped with the time it was read (not this scan's)
                source_ts = last_read.get(node_id, source_ts)
            status = published_status(quality, has_value)
            code = status.value
            before = published.get(node_id)
            if before is not None and before[1] == code:
                held = before[0]
                if held == value:
                    continue
                band = deadband.get(node_id)
                if band is not None and has_value and held is not None and abs(value - held) <= band:
                    continue
            published[node_id] = (value, code)
            changed.append(s)
            variant = ua.Variant(value, ua.VariantType.Double) if has_value else ua.Variant()
            writes.append((node_id, ua.DataValue(variant, StatusCode=status, SourceTimestamp=source_ts,
                                                 ServerTimestamp=server_ts)))
        if writes:
            await self._write_values(writes)
        connected = lost < len(samples) or not samples
        if connected != health.connected:
            await self._write_attribute(self._space.connection_nodes[unit], ua.AttributeIds.Value,
                                        ua.DataValue(ua.Variant(connected, ua.VariantType.Boolean),
                                                     SourceTimestamp=server_ts, ServerTimestamp=server_ts))
            health.connected = connected
        if self.historian is not None and changed:
            self.historian.record_scan(unit, changed, server_ts)
        health.samples_mirrored += len(samples)
        health.values_published += len(changed)
        health.bad_samples += bad
        health.last_scan = server_ts
        if self.alarm_hook is not None:
            await self.alarm_hook(unit, changed, connected)

    async def write_setpoint(self, unit: str, tag: str, value: float, source: str = "operator",
                             user: str = "") -> None:
        """Forward a setpoint to the unit's PLC. Raises ``WriteRefused`` (nothing written) on refusal.

        ``source`` (operator / mpc / recipe / fallback) and ``user`` go to the historian with the value."""
        adapter = self._adapters.get(unit)
        if adapter is None:
            raise WriteRefused(f"{unit}.{tag}", WriteRefusal.UNKNOWN_TAG, f"no unit '{unit}' in this line")
        await adapter.write(tag, value)
        node_id = self._node_of.get((unit, tag))
        if node_id is not None:
            # the caller (the write guard) writes the accepted value to the node itself: the next scan publishes
            # the PLC's read-back whatever the mirror published before
            self._published.pop(node_id, None)
        if self.historian is not None and node_id is not None:
            self.historian.record_setpoint(str(node_id.Identifier), value, source, user)

    def status_line(self) -> str:
        parts = []
        for name, h in self.health.items():
            adapter = self._adapters[name]
            good = sum(1 for s in adapter.last_samples.values() if s.quality is Quality.GOOD)
            state = "OK " if h.connected else "DOWN"
            if adapter.eu_mismatches:
                state += " EU-MISMATCH"
            parts.append(f"{name}: {state} {good}/{len(adapter.last_samples) or 0} good")
        return " | ".join(parts)
