"""The line's alarm conditions: built from the config, fed by the runtime and the control loops, reported as
OPC UA condition events to every notifier up the chain (unit → line → Server).

Feeding:

- :meth:`AlarmManager.on_scan` is the runtime's alarm hook, awaited after each scan is mirrored. A unit without
  limit alarms costs one dict lookup; for the others only tags that have an alarm are evaluated. A Bad sample
  leaves its limit alarm as it is (the communication-loss condition says why).
- :meth:`AlarmManager.loop_alarms` gives a control loop its :class:`~twin_server.alarms.loop_alarms.LoopAlarms`.

Every state change is one event per notifier (asyncua delivers an event only to monitored items on the node it is
emitted from, so the chain is walked here) and is handed to every sink in :attr:`AlarmManager.sinks` (e.g. an
alarm-event historian).

Time: limit on-delays count plant seconds read from ``clock`` (the twin passes its plant clock's ``now``; the
default, ``time.monotonic``, is plant time of a real plant running at 1×).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User

from plc_adapters.asyncua_seam import address_space, trigger_event
from plc_adapters.sample import Sample
from plc_adapters.tag import quantity_text
from process_models.engineering_units import UNITS_BY_CODE
from twin_server.address_space import LineAddressSpace
from twin_server.alarms.condition import AlarmCondition, ConditionKind
from twin_server.alarms.condition_methods import install_condition_methods
from twin_server.alarms.history_loss_alarm import HistoryLossAlarm
from twin_server.alarms.innovation_alarm import InnovationAlarm
from twin_server.alarms.limits import LimitEvaluator, LimitState
from twin_server.alarms.loop_alarms import LoopAlarms
from twin_server.alarms.nodes import add_condition_nodes, build_notifier_chain
from twin_server.alarms.surrogate_alarm import SurrogateDriftAlarm
from twin_server.audit import AuditTrail
from twin_server.config import LineConfig

log = logging.getLogger("linetwin.alarms")

AlarmSink = Callable[[AlarmCondition, Any], None]
"""Called with the condition and its event (emitted from the Server object) after every state change."""
Authorize = Callable[[User | None], int | None]
"""Acknowledge/Confirm role check: the calling session's user → a Bad status code to refuse, or ``None``."""

_WORDS = {LimitState.HIGH_HIGH: "above high-high limit", LimitState.HIGH: "above high limit",
          LimitState.LOW: "below low limit", LimitState.LOW_LOW: "below low-low limit"}


def allow_all(user: User | None) -> int | None:
    """The default role check: everyone may acknowledge and confirm (the security layer replaces it with
    operator-and-up)."""
    return None


class AlarmManager:
    """All conditions of one line."""

    def __init__(self, server: Server, config: LineConfig, space: LineAddressSpace, audit: AuditTrail,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self._config = config
        self._space = space
        self.audit = audit
        self.authorize: Authorize = allow_all
        self.sinks: list[AlarmSink] = []
        self._clock = clock
        self.conditions: dict[ua.NodeId, AlarmCondition] = {}
        self._limits: dict[str, dict[str, tuple[AlarmCondition, LimitEvaluator]]] = {}
        self._held: dict[str, dict[str, float | None]] = {}
        """Per unit and limit-alarmed tag: its last usable value (None while its samples are not usable)."""
        self._waiting: dict[str, set[str]] = {}
        """Per unit: the tags whose limit evaluator waits out an on-delay (fed their held value every scan)."""
        self._comms: dict[str, AlarmCondition] = {}
        self._folders: dict[ua.NodeId, ua.NodeId] = {}

    # -- building ------------------------------------------------------------------------------
    def _condition(self, unit: str, name: str, kind: ConditionKind, severity: int, message: str,
                   **extra: Any) -> AlarmCondition:
        idx = self._space.namespace_index
        source = self._space.unit_nodes[unit]
        self._folders.setdefault(source, ua.NodeId(f"{self._config.name}.{unit}.alarms", idx))
        condition = AlarmCondition(
            name=name, kind=kind, node_id=ua.NodeId(f"{self._config.name}.{unit}.alarms.{name}", idx), unit=unit,
            source_node=source, source_name=unit, severity=severity,
            notifiers=(source, self._space.line_node, ua.NodeId(ua.ObjectIds.Server)), **extra)
        condition.state.message = message
        self.conditions[condition.node_id] = condition
        return condition

    async def build(self) -> None:
        """Create the notifier chain, the condition nodes, and bind Acknowledge, Confirm and ConditionRefresh."""
        for unit in self._config.units:
            limits: dict[str, tuple[AlarmCondition, LimitEvaluator]] = {}
            for tag_name, cfg in unit.alarms.limits.items():
                tag_node = self._space.tag_nodes[(unit.name, tag_name)].node_id
                cond = self._condition(unit.name, f"{tag_name}_limit", ConditionKind.LIMIT, cfg.severity,
                                       f"{unit.name}.{tag_name} within limits", input_node=tag_node, limits=cfg)
                limits[tag_name] = (cond, LimitEvaluator(cfg))
            if limits:
                self._limits[unit.name] = limits
            if unit.alarms.comms_loss:
                self._comms[unit.name] = self._condition(
                    unit.name, "comms_loss", ConditionKind.OFF_NORMAL, unit.alarms.comms_loss_severity,
                    f"{unit.name}: PLC link up", input_node=self._space.connection_nodes[unit.name])
        await build_notifier_chain(self._server, self._space.line_node, list(self._space.unit_nodes.values()))
        await self._add_nodes(list(self.conditions.values()))
        install_condition_methods(self._server, self)

    async def _add_nodes(self, conditions: list[AlarmCondition]) -> None:
        folders = {c.source_node: self._folders[c.source_node] for c in conditions}
        await add_condition_nodes(self._server, self._space.namespace_index, folders, conditions)

    async def loop_alarms(self, unit: str, measured_to_si: dict[str, Callable[[float], float]],
                          output_of_tag: dict[str, str]) -> LoopAlarms:
        """The conditions of a unit's control loop: NMPC fallback in use and estimator divergence."""
        options = self._config.unit(unit).alarms
        fallback = self._condition(unit, "nmpc_fallback", ConditionKind.ALARM, options.fallback_severity,
                                   f"{unit}: control loop uses its setpoints (no fallback)")
        created = [fallback]
        divergence = None
        bounds_si: dict[str, float] = {}
        for tag, bound in options.innovation_bounds.items():
            if tag in output_of_tag:
                to_si = measured_to_si[tag]
                bounds_si[output_of_tag[tag]] = abs(to_si(bound) - to_si(0.0))
        if bounds_si:
            divergence = self._condition(unit, "estimator_divergence", ConditionKind.ALARM,
                                         options.divergence_severity, f"{unit}: estimator innovations within bounds")
            created.append(divergence)
        await self._add_nodes(created)
        return LoopAlarms(self, unit, fallback, divergence, bounds_si)

    async def innovation_alarm(self, unit: str) -> InnovationAlarm:
        """The ``parameter_set_mismatch`` condition of a unit's control loop (the estimator's NIS out of its χ² band
        for the on-delay: :mod:`twin_server.alarms.innovation_alarm`)."""
        from process_models.innovation_consistency import NisBand

        options = self._config.unit(unit).alarms
        cond = self._condition(unit, "parameter_set_mismatch", ConditionKind.ALARM, options.innovation_severity,
                               f"{unit}: estimator innovations consistent with the deployed parameter set")
        await self._add_nodes([cond])
        return InnovationAlarm(self, unit, cond, NisBand(options.innovation_probability),
                               options.innovation_on_delay_s, options.innovation_sides)

    async def surrogate_drift_alarm(self, unit: str, threshold: float) -> SurrogateDriftAlarm:
        """The ``surrogate_drift`` condition of a unit with ``[units.<unit>.surrogate]``."""
        cond = self._condition(unit, "surrogate_drift", ConditionKind.ALARM,
                               self._config.unit(unit).alarms.surrogate_drift_severity,
                               f"{unit}: surrogate agrees with physics")
        await self._add_nodes([cond])
        return SurrogateDriftAlarm(self, unit, cond, threshold)

    async def history_loss_alarm(self, lost: Callable[[], int], severity: int,
                                 clear_after_s: float) -> HistoryLossAlarm:
        """The line's ``historian_data_loss`` condition (source: the line object; events to the line and the
        Server object)."""
        line, idx = self._config.name, self._space.namespace_index
        source = self._space.line_node
        self._folders.setdefault(source, ua.NodeId(f"{line}.alarms", idx))
        cond = AlarmCondition(name="historian_data_loss", kind=ConditionKind.ALARM,
                              node_id=ua.NodeId(f"{line}.alarms.historian_data_loss", idx), unit=line,
                              source_node=source, source_name=line, severity=severity,
                              notifiers=(source, ua.NodeId(ua.ObjectIds.Server)))
        cond.state.message = f"{line}: historian keeps every sample"
        self.conditions[cond.node_id] = cond
        await self._add_nodes([cond])
        return HistoryLossAlarm(self, cond, lost, clear_after_s)

    # -- feeding -------------------------------------------------------------------------------
    async def on_scan(self, unit: str, samples: Sequence[Sample], connected: bool) -> None:
        """The runtime's hook, after one scan of ``unit`` was mirrored. ``samples`` are the scan's changed samples
        (report by exception); a limit waiting out its on-delay is fed its held value again on every scan, so a
        value that crossed a limit and then stays constant still activates the alarm when the delay is over."""
        comms = self._comms.get(unit)
        if comms is not None and comms.state.active == connected:
            if connected:
                await self.set_inactive(comms, f"{unit}: PLC link back up")
            else:
                await self.set_active(comms, f"{unit}: PLC link down (no answer from its PLC)")
        limits = self._limits.get(unit)
        if limits is None:
            return
        now = self._clock()
        held = self._held.setdefault(unit, {})
        fed: set[str] = set()
        for s in samples:
            entry = limits.get(s.tag)
            if entry is None:
                continue
            fed.add(s.tag)
            if s.value is None or s.quality.is_bad:
                held[s.tag] = None  # not usable: no on-delay runs out on it
                continue
            held[s.tag] = s.value
            await self._feed(unit, s.tag, s.value, now, *entry)
        waiting = self._waiting.get(unit)
        for tag in list(waiting) if waiting else ():
            value = held.get(tag)
            if tag not in fed and value is not None:
                await self._feed(unit, tag, value, now, *limits[tag])

    async def _feed(self, unit: str, tag: str, value: float, now: float, cond: AlarmCondition,
                    evaluator: LimitEvaluator) -> None:
        """One usable value of ``unit``.``tag`` into its limit evaluator; report the condition when its state
        changes."""
        level = evaluator.update(value, now)
        waiting = self._waiting.setdefault(unit, set())
        if evaluator.pending is not None:
            waiting.add(tag)
        else:
            waiting.discard(tag)
        current = cond.state.limit_state
        if (level.value if level is not None else None) == current:
            return
        symbol = UNITS_BY_CODE[self._config.unit(unit).tag(tag).unit_code].symbol
        if level is None:
            await self.set_inactive(cond, f"{unit}.{tag} back within limits "
                                          f"({quantity_text(value, symbol, '.4g')})", value=value)
        else:
            limit = evaluator.config.limit(level)
            await self.set_active(cond, f"{unit}.{tag} {quantity_text(value, symbol, '.4g')} "
                                        f"{_WORDS[level]} {quantity_text(limit, symbol, '.4g')}",
                                  limit_state=level.value, value=value)

    async def set_active(self, cond: AlarmCondition, message: str, limit_state: str | None = None,
                         value: float | None = None) -> None:
        if cond.state.activate(message, limit_state, value):
            log.warning("alarm %s active: %s", cond.label, message)
            await self.emit(cond)

    async def set_inactive(self, cond: AlarmCondition, message: str, value: float | None = None) -> None:
        if cond.state.deactivate(message, value):
            log.info("alarm %s cleared: %s", cond.label, message)
            await self.emit(cond)

    # -- reporting -----------------------------------------------------------------------------
    async def emit(self, cond: AlarmCondition) -> None:
        """Report the condition's state: its state variables, a new EventId, one event per notifier, then the
        sinks."""
        cond.new_event_id()
        write = address_space(self._server).write
        for suffix, value in cond.variable_values().items():
            await write(ua.NodeId(f"{cond.node_id.Identifier}.{suffix}", cond.node_id.NamespaceIndex),
                        ua.AttributeIds.Value, ua.DataValue(value))
        event = None
        for notifier in cond.notifiers:
            event = cond.build_event(notifier)
            await trigger_event(self._server, event)
        for sink in self.sinks:
            try:
                sink(cond, event)
            except Exception:  # a broken sink must not stop alarms; say so
                log.exception("alarm sink %r failed for %s", sink, cond.label)

    def status_text(self) -> str:
        """One line for the CLI's status: how many conditions are active and unacknowledged, and which are active."""
        active = [f"{c.unit}.{c.name}" for c in self.conditions.values() if c.state.active]
        unacked = sum(1 for c in self.conditions.values() if not c.state.acked)
        listed = f" ({', '.join(active[:3])}{', …' if len(active) > 3 else ''})" if active else ""
        return f"alarms: {len(active)} active{listed}, {unacked} unacknowledged"

    def retained(self) -> list[AlarmCondition]:
        """Conditions a client should know of (Retain = True), for ConditionRefresh."""
        return [c for c in self.conditions.values() if c.state.retain]
