"""The line runtime: owns one PLC adapter per unit and mirrors their samples into the address space.

Mirror path (hot path): each adapter scan yields one list of samples; each becomes one DataValue
(value, PLC status code, source timestamp) written straight into the server's address space
(the asyncua seam's ``address_space(server).write``: no client-style service round trip, subscriptions are
notified by the server's own data-change callbacks).

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
        """Write one scan's samples into the address space (value, status code, source timestamp).

        A Bad sample that keeps the last usable value is published as Uncertain with that value and the source
        timestamp of the scan that read it (:func:`~twin_server.status_codes.published_status`); the samples
        themselves stay Bad.
        """
        server_ts = datetime.now(UTC)
        health = self.health[unit]
        bad = lost = 0
        write = self._write_attribute
        last_read = self._last_read
        for s in samples:
            node_id = self._node_of.get((unit, s.tag))
            if node_id is None:
                continue
            if s.quality.is_bad:
                bad += 1
                lost += s.quality in _LINK_LOSS  # a Bad from the PLC itself (sensor failure ...) is no lost link
            has_value = s.value is not None
            source_ts = s.source_timestamp
            if not s.quality.is_bad:
                last_read[node_id] = source_ts
            elif has_value:  # the last usable value, stamped with the time it was read (not this scan's)
                source_ts = last_read.get(node_id, source_ts)
            variant = ua.Variant(s.value, ua.VariantType.Double) if has_value else ua.Variant()
            dv = ua.DataValue(variant, StatusCode=published_status(s.quality, has_value),
                              SourceTimestamp=source_ts, ServerTimestamp=server_ts)
            await write(node_id, ua.AttributeIds.Value, dv)
        connected = lost < len(samples) or not samples
        if connected != health.connected:
            await write(self._space.connection_nodes[unit], ua.AttributeIds.Value,
                        ua.DataValue(ua.Variant(connected, ua.VariantType.Boolean), SourceTimestamp=server_ts,
                                     ServerTimestamp=server_ts))
            health.connected = connected
        if self.historian is not None:
            self.historian.record_scan(unit, samples, server_ts)
        health.samples_mirrored += len(samples)
        health.bad_samples += bad
        health.last_scan = server_ts
        if self.alarm_hook is not None:
            await self.alarm_hook(unit, samples, connected)

    async def write_setpoint(self, unit: str, tag: str, value: float, source: str = "operator",
                             user: str = "") -> None:
        """Forward a setpoint to the unit's PLC. Raises ``WriteRefused`` (nothing written) on refusal.

        ``source`` (operator / mpc / recipe / fallback) and ``user`` go to the historian with the value."""
        adapter = self._adapters.get(unit)
        if adapter is None:
            raise WriteRefused(f"{unit}.{tag}", WriteRefusal.UNKNOWN_TAG, f"no unit '{unit}' in this line")
        await adapter.write(tag, value)
        if self.historian is not None and (node_id := self._node_of.get((unit, tag))) is not None:
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
