"""The twin's OPC UA server: asyncua server + address space + line runtime + checked writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse, urlunparse

from asyncua import Server

from plc_adapters.asyncua_seam import (
    address_space,
    init_server,
    install_write_hook,
    release_subscription_loggers,
    stop_server,
)
from plc_adapters.long_lived_objects import collector_paused, freeze_long_lived, thaw
from process_models.plant_clock import PlantClock, WallPacedClock
from twin_server.address_space import LineAddressSpace, build_address_space
from twin_server.alarms.manager import AlarmManager
from twin_server.audit import AuditEntry, AuditOutcome, audit_reconciliation
from twin_server.config import LineConfig
from twin_server.control_loop import UnitControlLoop
from twin_server.control_nodes import ControlNodes
from twin_server.data_dir import line_data_dir
from twin_server.estimator_nodes import EstimatorNodes
from twin_server.forecast_nodes import ForecastNodes
from twin_server.heap_trim import TRIM_EVERY_S, HeapTrimmer
from twin_server.historian.service import Historian
from twin_server.library_log_limit import limit_library_logs
from twin_server.line_build import build_line_or_raise
from twin_server.method_calls import track_method_callers
from twin_server.metrics.endpoint import MetricsEndpoint
from twin_server.model_nodes import ModelNodes
from twin_server.parameter_deployment import unit_deployment
from twin_server.parameter_switch import VALUE_EVENT_SOURCE, ParameterSetSwitch
from twin_server.pid_file import TwinPidFile
from twin_server.pooling_control import PoolingControlLoop, PoolingNodes
from twin_server.runtime import AdapterFactory, LineRuntime
from twin_server.security.setup import TwinSecurity
from twin_server.surrogate_watch import build_surrogate_watch
from twin_server.write_guard import GuardedAttributeService

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan

log = logging.getLogger("linetwin.server")

PRODUCT_URI = "urn:linetwin"


def endpoint_with_port(endpoint: str, port: int) -> str:
    """The endpoint URL with its port replaced (``port`` 0 is not allowed: OPC UA clients need a real port)."""
    parsed = urlparse(endpoint)
    host = parsed.hostname or "127.0.0.1"
    return urlunparse(parsed._replace(netloc=f"{host}:{port}"))


class TwinServer:
    """Serves one line over OPC UA and mirrors its PLCs.

    ``endpoint`` overrides ``[server] endpoint`` of the config (e.g. another port for tests).
    ``data_dir``: the line's data directory (history, security, …; :mod:`twin_server.data_dir`); default
    ``$LINETWIN_DATA_DIR``, else ``$XDG_DATA_HOME/linetwin/<line>``. While the twin runs, ``DATA/twin.pid`` holds
    its process id (``linetwin restore`` refuses then).
    ``plans``: the control plans (unit name -> plan) already built by :func:`twin_server.line_build.build_line`;
    without them :meth:`start` builds them (once), raising :class:`~twin_server.config.ConfigError` on failure.
    ``heap_trim_every_s``: seconds between two :func:`~twin_server.heap_trim.trim_heap` calls while serving (freed C
    heap given back to the system, issue 21); None: never.
    """

    def __init__(self, config: LineConfig, endpoint: str | None = None,
                 adapter_factory: AdapterFactory | None = None, data_dir: Path | None = None,
                 plans: Mapping[str, ControlPlan] | None = None, plant_clock: PlantClock | None = None,
                 heap_trim_every_s: float | None = TRIM_EVERY_S) -> None:
        self.config = config
        self.heap_trimmer = HeapTrimmer(heap_trim_every_s) if heap_trim_every_s is not None else None
        self._plans = dict(plans) if plans is not None else None
        self.plant_clock: PlantClock = plant_clock if plant_clock is not None else WallPacedClock(bench_speed(config))
        """The line's plant time: control loops' batch clocks and alarm on-delays (plant seconds)."""
        self.endpoint = endpoint or config.server.endpoint
        self._adapter_factory = adapter_factory
        self._server: Server | None = None
        self.space: LineAddressSpace | None = None
        self.runtime: LineRuntime | None = None
        self.control_loops: dict[str, UnitControlLoop] = {}
        self.pooling_loops: dict[str, PoolingControlLoop] = {}
        """The chromatography units' pooling loops (a unit whose control plan is a pooling plan)."""
        self.forecasts: dict[str, ForecastNodes | None] = {}
        """Each controlled unit's ``forecast`` object (None for a kind whose plan forecasts nothing)."""
        self.data = line_data_dir(config, data_dir)
        self.security = TwinSecurity(config, self.data.security)
        self.audit = self.security.audit
        self.guard: GuardedAttributeService | None = None
        self.alarms: AlarmManager | None = None
        self.historian: Historian | None = None
        self._pid_lock: TwinPidFile | None = None
        self.metrics: MetricsEndpoint | None = None
        """The ``/metrics`` and ``/health`` endpoint while serving, when ``[metrics] enabled``."""
        self.serving = False
        """True from the end of :meth:`start` to the beginning of :meth:`stop` (the health check's *ready*)."""

    @property
    def server(self) -> Server:
        if self._server is None:
            raise RuntimeError("twin server is not started")
        return self._server

    async def start(self) -> None:
        limit_library_logs()  # asyncua's one ERROR line per refused request, rate-limited like ours
        if self._plans is None:
            self._plans = build_line_or_raise(self.config)
        self._pid_lock = TwinPidFile.acquire(self.data.pid_file)
        with collector_paused():  # ~2 million long-lived objects at 10,000 tags: see long_lived_objects
            server = await self._build()
            freeze_long_lived()  # before the collector runs again: its first run would traverse them all
        log.debug("the twin's long-lived objects frozen out of the cyclic collector")
        assert self.historian is not None and self.runtime is not None and self.space is not None
        try:
            await server.start()
        except BaseException:
            thaw()  # not serving: what was built may be collected
            raise
        self._server = server
        await self.security.started(server)
        self.historian.start()
        await self.runtime.start()
        for loop in self.control_loops.values():
            await loop.start()
        for pooling in self.pooling_loops.values():
            await pooling.start()
        if self.config.metrics.enabled:
            self.metrics = MetricsEndpoint(self, self.config.metrics)
            await self.metrics.start()
        if self.heap_trimmer is not None:
            self.heap_trimmer.start()
        self.serving = True
        log.info("serving line '%s' at %s (%d units, %d tags)", self.config.name, self.endpoint,
                 len(self.config.units), len(self.space.tag_nodes))

    async def _build(self) -> Server:
        """The asyncua server with the line's address space, history, alarms, write guard, control loops and
        security, not started yet."""
        server = Server()
        await init_server(server)  # the standard address space: a copy after the first servers of a process
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"linetwin — {self.config.name}")
        await server.set_application_uri(f"urn:linetwin:{self.config.name}")
        server.product_uri = PRODUCT_URI
        await self.security.prepare(server, self.endpoint, f"urn:linetwin:{self.config.name}")
        track_method_callers(server)
        self.space = await build_address_space(server, self.config)
        kwargs = {"adapter_factory": self._adapter_factory} if self._adapter_factory else {}
        self.runtime = LineRuntime(self.config, server, self.space, **kwargs)
        self.historian = Historian(self.config, self.data.history)
        await self.historian.attach(server, self.space)
        self.historian.attach_audit(self.audit)
        self.runtime.historian = self.historian.recorder
        for unit_name, adapter in self.runtime.adapters.items():
            adapter.on_write_reconciled = audit_reconciliation(self.audit, f"{self.config.name}.{unit_name}")
        self.alarms = AlarmManager(server, self.config, self.space, self.audit, clock=self.plant_clock.now)
        await self.alarms.build()
        await self.historian.attach_alarms(self.alarms)
        self.runtime.alarm_hook = self.alarms.on_scan
        guard = GuardedAttributeService(address_space(server), self.space.tag_by_node(), self.runtime.write_setpoint,
                                        audit=self.audit, setpoint_owner=self._setpoint_owner)
        install_write_hook(server, guard.write)
        release_subscription_loggers(server)  # asyncua's logger per subscription, else kept for the process's life
        self.guard = guard
        for unit in self.config.units:
            if unit.control and self._is_pooling(unit.name):
                pooling = await self._build_pooling_loop(server, unit.name)
                guard.handlers.update(pooling.writable_handlers)
                guard.action_names.update(pooling.audit_actions)
                guard.write_roles.update(pooling.write_roles)
                self.pooling_loops[unit.name] = pooling
            elif unit.control:
                loop = await self._build_control_loop(server, unit.name)
                guard.handlers.update(loop.writable_handlers)
                guard.action_names.update(loop.audit_actions)
                self.control_loops[unit.name] = loop
        await self.security.protect(server, self.space.namespace_index, self.space.tag_by_node(), guard)
        self.alarms.authorize = self.security.operator_or_above
        return server

    def _is_pooling(self, unit_name: str) -> bool:
        from controllers.chromatography.pooling_plan import PoolingPlan

        assert self._plans is not None
        return isinstance(self._plans.get(unit_name), PoolingPlan)

    async def _build_pooling_loop(self, server: Server, unit_name: str) -> PoolingControlLoop:
        assert self.space is not None and self.runtime is not None and self._plans is not None
        plan = self._plans[unit_name]
        nodes = PoolingNodes(server, self.space.namespace_index, self.config.name, unit_name,
                             self.space.unit_nodes[unit_name])
        loop = PoolingControlLoop(unit_name, plan, self.runtime, nodes)  # type: ignore[arg-type]
        await loop.build_nodes()
        log.info("unit %s: pooling loop (strategy %s, window %g-%g s, purity >= %g with probability %g)", unit_name,
                 loop.strategy, plan.spec.window_start_s, plan.spec.window_end_s,  # type: ignore[attr-defined]
                 plan.spec.purity_min, plan.spec.confidence)  # type: ignore[attr-defined]
        return loop

    async def _build_control_loop(self, server: Server, unit_name: str) -> UnitControlLoop:
        assert self.space is not None and self.runtime is not None
        unit = self.config.unit(unit_name)
        assert self._plans is not None
        plan = self._plans[unit.name]
        nodes = ControlNodes(server, self.space.namespace_index, self.config.name, unit.name,
                             self.space.unit_nodes[unit.name], audit=self.audit)
        loop = UnitControlLoop(unit.name, plan, self.runtime, nodes, clock=self.plant_clock)
        await loop.build_nodes()
        if self.alarms is not None:
            loop.alarms = await self.alarms.loop_alarms(unit.name, {m.tag: m.to_model for m in plan.measurements},
                                                        {m.tag: m.output for m in plan.measurements})
        unit_node = self.space.unit_nodes[unit.name]
        loop.estimator_nodes = EstimatorNodes(server, self.space.namespace_index, self.config.name, unit.name,
                                              unit_node, plan)
        await loop.estimator_nodes.build()
        forecast = ForecastNodes(server, self.space.namespace_index, self.config.name, unit.name, unit_node,
                                 loop.core, self.audit) if plan.forecast_outputs else None
        if forecast is not None:
            await forecast.build()
        self.forecasts[unit.name] = forecast
        if self.historian is not None:
            nodes.on_value = self.historian.recorder.record_value
            await self.historian.historize_values(server, nodes.numeric_scalars)
            for extra in (loop.estimator_nodes.nodes, forecast.nodes if forecast is not None else None):
                if extra is not None:
                    extra.on_value = self.historian.recorder.record_value
                    await self.historian.historize_values(server, extra.numeric_scalars)
        await self._build_parameter_switch(server, loop)
        if unit.surrogate:
            loop.surrogate_watch = await build_surrogate_watch(server, self.space.namespace_index, self.config.name,
                                                               unit.name, self.space.unit_nodes[unit.name],
                                                               unit.surrogate, plan, loop.record_event)
            if self.alarms is not None:
                loop.surrogate_watch.drift_alarm = await self.alarms.surrogate_drift_alarm(
                    unit.name, loop.surrogate_watch.options.disagreement_threshold)
        log.info("unit %s: control loop (%s, estimator every %g s, controller every %g s, mode %s)", unit.name,
                 plan.strategy, plan.estimator_period_s, plan.controller_period_s, plan.initial_mode)
        return loop

    async def _build_parameter_switch(self, server: Server, loop: UnitControlLoop) -> None:
        """The unit's ``model`` object: its deployed parameter set (history in the data dir), Apply/Rollback, the
        NIS nodes and the ``parameter_set_mismatch`` alarm."""
        assert self.space is not None
        unit = self.config.unit(loop.unit)
        deployment = unit_deployment(unit.name, unit.kind, unit.model, loop.plan.model, self.data.parameter_sets)
        nodes = ModelNodes(server, self.space.namespace_index, self.config.name, unit.name,
                           self.space.unit_nodes[unit.name], self.audit)
        switch = ParameterSetSwitch(unit.name, deployment, nodes, loop.core, lambda: loop.batch_running,
                                    loop.record_event)
        if self.alarms is not None:
            switch.innovation_alarm = await self.alarms.innovation_alarm(unit.name)
            switch.band = switch.innovation_alarm.band
        await switch.build()
        if self.historian is not None:
            switch.keep_history(await self.historian.historize_text(server, nodes.node_id("parameter_set"),
                                                                    unit.name, VALUE_EVENT_SOURCE))
        if self.historian is not None:
            nodes.on_value = self.historian.recorder.record_value
            await self.historian.historize_values(server, nodes.historized)
        loop.parameter_sets = switch

    def _setpoint_owner(self, unit: str, tag: str) -> str | None:
        loop = self.control_loops.get(unit) or self.pooling_loops.get(unit)
        return loop.setpoint_owner(tag) if loop is not None else None

    def status_line(self) -> str:
        """The runtime's PLC status plus each control loop's state (for the CLI)."""
        parts = [self.runtime.status_line()] if self.runtime is not None else []
        parts += [loop.status_text() for loop in self.control_loops.values()]
        parts += [pooling.status_text() for pooling in self.pooling_loops.values()]
        if self.alarms is not None:
            parts.append(self.alarms.status_text())
        if self.historian is not None:
            parts.append(self.historian.status_text())
        return " | ".join(parts)

    async def stop(self) -> None:
        """Stop cleanly: control loops, PLC links closed, OPC UA server, historian flushed and closed, an audit
        entry ``server_stop`` (when the server had started), the audit store closed."""
        was_serving, self.serving = self.serving, False
        if self.heap_trimmer is not None:
            await self.heap_trimmer.stop()
        if self.metrics is not None:
            await self.metrics.stop()
            self.metrics = None
        for loop in self.control_loops.values():
            await loop.stop()
        for pooling in self.pooling_loops.values():
            await pooling.stop()
        if self.runtime is not None:
            await self.runtime.stop()
        if self._server is not None:
            await stop_server(self._server)  # its nodes freed at once by reference counting (see the seam)
            self._server = None
            thaw()  # what is left of this twin (cycles) may be collected once it is garbage
        if was_serving:
            self.audit.flush()  # refusal summaries still being counted: into the history too, before it closes
            self.audit.record(AuditEntry("server_stop", "server", self.config.name, AuditOutcome.ACCEPTED,
                                         reason="clean stop (PLC links closed, history flushed)"))
        if self.historian is not None:
            await self.historian.stop_alarms()
            await asyncio.to_thread(self.historian.close)
            self.historian = None
        await self.security.close()
        if self._pid_lock is not None:
            self._pid_lock.release()
            self._pid_lock = None
        log.info("line '%s' stopped", self.config.name)


def bench_speed(config: LineConfig) -> float:
    """Plant seconds per wall second of the line: the control loops' ``time_scale`` (set for a HIL bench running
    N× real time), 1 for a real plant."""
    scales = {float(u.control["time_scale"]) for u in config.units if u.control and "time_scale" in u.control}
    return max(scales) if scales else 1.0
