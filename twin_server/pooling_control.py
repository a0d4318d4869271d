"""A chromatography skid's pooling loop in the twin: the mirrored run time, UV and conductivity in, the two cut
setpoints out through the guarded write path, and the ``control`` nodes that show what it decided and predicts.

Per run (:class:`~controllers.chromatography.pooling_run.PoolingRun`, strategy from the ``strategy`` node): the
loop follows the unit's last samples (only Good/Uncertain ones), feeds every new sample time of ``run_time`` with
the UV and conductivity of the same scan to the run (in a worker thread: an estimate takes up to a second; the OPC UA
server keeps serving and the samples that arrive meanwhile are taken in order after it), and writes
``cut_start_time`` / ``cut_stop_time`` through :meth:`twin_server.runtime.LineRuntime.write_setpoint` — the adapter's
guarded write (write limits, rate rule, refusal, write of unknown outcome reconciled by a read-back and audited) —
whenever the run's setpoints change. A refused write or one of unknown outcome is said (``last_event``, the
historian's events) and retried at the next sample. A ``run_time`` that goes back starts a new run. While a run
pools, the loop owns the two cut tags: an operator's write to them is refused (``BadInvalidState``).

Nodes (``<line>.<unit>.control.<name>``; every number with EngineeringUnits; read for viewers):
``strategy`` (writable, String ``threshold`` | ``model_based``; **engineer** role and up; audited as
``strategy_change``; applies from the next run — a run in progress keeps the strategy it started with, and its
model falls back to the thresholds by itself), ``strategy_in_use`` (``model`` | ``fixed_thresholds``),
``fallback_reason``, ``run_time_s``, ``collecting``, ``planned_cut_start_s``, ``planned_cut_stop_s``,
``predicted_peak_time_s`` / ``predicted_peak_concentration`` (mmol/l = mol/m3) with ``_std``,
``predicted_pool_purity`` / ``predicted_pool_yield`` (fractions) with ``_std``, ``predicted_pool_purity_at_confidence``
(the purity the pool reaches with the spec's confidence), counters ``samples``, ``replans``, ``setpoints_written``,
``writes_failed``, ``last_event``, and ``method_step_name`` (String: the name, in the unit's method, of the step the
skid's mirrored ``method_step`` tag shows; empty without that tag). A value with nothing behind it yet (no
estimate, no plan) is ``BadWaitingForInitialData``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime

from asyncua import Server, ua

from controllers.chromatography.pooling_plan import (
    CONDUCTIVITY,
    CUT_START,
    CUT_STOP,
    METHOD_STEP,
    RUN_TIME,
    STRATEGIES,
    UV,
    PoolingPlan,
)
from controllers.chromatography.pooling_run import PoolingRun, PoolingStatus, fast_column
from plc_adapters.asyncua_seam import add_nodes, address_space
from plc_adapters.errors import WriteOutcomeUnknown, WriteRefused
from twin_server.address_space import engineering_units, object_item, variable_item
from twin_server.background_task import cancel_and_wait
from twin_server.control_loop import usable_value
from twin_server.runtime import LineRuntime
from twin_server.write_guard import HandlerResult, WriteHandler

log = logging.getLogger("linetwin.pooling")

STRATEGY_ROLE = "engineer"
"""The role a user needs to change the pooling strategy (enforced by the security layer)."""
POLL_S = 0.02
"""Wall seconds between two looks at the unit's last samples (the mirror's scan sets how often they change)."""
WAITING = ua.StatusCodes.BadWaitingForInitialData

# node name -> (PoolingStatus field, UNECE unit code, description); a ``_std`` twin where the field has one
_PREDICTED: tuple[tuple[str, str, str, str], ...] = (
    ("planned_cut_start_s", "planned_start_s", "SEC", "Planned pool cut start (collection valve opens), s of run"),
    ("planned_cut_stop_s", "planned_stop_s", "SEC", "Planned pool cut stop (collection valve closes), s of run"),
    ("predicted_peak_time_s", "peak_time_s", "SEC", "Predicted product peak maximum, s of run"),
    ("predicted_peak_time_s_std", "peak_time_std_s", "SEC", "1 sigma of the predicted peak time"),
    ("predicted_peak_concentration", "peak_concentration_mol_per_m3", "M33", "Predicted product peak concentration"),
    ("predicted_peak_concentration_std", "peak_concentration_std_mol_per_m3", "M33",
     "1 sigma of the predicted peak concentration"),
    ("predicted_pool_purity", "pool_purity", "C62", "Predicted pool purity at the planned cuts (fraction)"),
    ("predicted_pool_purity_std", "pool_purity_std", "C62", "1 sigma of the predicted pool purity"),
    ("predicted_pool_purity_at_confidence", "pool_purity_at_confidence", "C62",
     "Pool purity reached with the spec's confidence (fraction)"),
    ("predicted_pool_yield", "pool_yield", "C62", "Predicted pool yield at the planned cuts (fraction)"),
    ("predicted_pool_yield_std", "pool_yield_std", "C62", "1 sigma of the predicted pool yield"),
)
_COUNTERS = ("samples", "replans", "setpoints_written", "writes_failed")


class PoolingNodes:
    """One unit's pooling ``control`` object and its variables (module docstring)."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit: str, unit_node: ua.NodeId) -> None:
        self._server = server
        self._write_attribute = address_space(server).write
        self._idx = namespace_index
        self._prefix = f"{line}.{unit}.control"
        self._unit_node = unit_node
        self.object_id = ua.NodeId(self._prefix, namespace_index)

    def node_id(self, name: str) -> ua.NodeId:
        return ua.NodeId(f"{self._prefix}.{name}", self._idx)

    async def build(self, strategy: str) -> None:
        idx = self._idx
        items = [object_item(self.object_id, idx, "control", self._unit_node, ua.NodeId(ua.ObjectIds.BaseObjectType),
                             "Online pooling of the product peak: estimate, planned cuts, fallback")]

        def scalar(name: str, variant: ua.Variant, data_type: int, description: str, unit_code: str | None = None,
                   writable: bool = False) -> None:
            nid = self.node_id(name)
            type_def = ua.ObjectIds.BaseAnalogType if unit_code else ua.ObjectIds.BaseDataVariableType
            items.append(variable_item(nid, idx, name, self.object_id, variant, data_type, type_def, description,
                                       writable=writable))
            if unit_code:
                items.append(variable_item(
                    ua.NodeId(f"{nid.Identifier}.EngineeringUnits", idx), idx, "EngineeringUnits", nid,
                    ua.Variant(engineering_units(unit_code), ua.VariantType.ExtensionObject),
                    ua.ObjectIds.EUInformation, ua.ObjectIds.PropertyType, "Engineering units (UNECE)",
                    is_property=True))

        text = ua.VariantType.String
        scalar("strategy", ua.Variant(strategy, text), ua.ObjectIds.String,
               "Pooling strategy of the next run: threshold | model_based (engineer role)", writable=True)
        scalar("strategy_in_use", ua.Variant("", text), ua.ObjectIds.String,
               "Who decides the cuts now: model | fixed_thresholds")
        scalar("fallback_reason", ua.Variant("", text), ua.ObjectIds.String, "Why the fixed thresholds decide")
        scalar("run_time_s", ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
               "Run time of the last sample taken, s", "SEC")
        scalar("collecting", ua.Variant(False, ua.VariantType.Boolean), ua.ObjectIds.Boolean,
               "True while the loop's pool is open")
        for name, _, code, description in _PREDICTED:
            scalar(name, ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double, description, code)
        for name in _COUNTERS:
            scalar(name, ua.Variant(0, ua.VariantType.UInt32), ua.ObjectIds.UInt32, name.replace("_", " "))
        scalar("last_event", ua.Variant("", text), ua.ObjectIds.String, "Last pooling event (plans, fallbacks, writes)")
        scalar("method_step_name", ua.Variant("", text), ua.ObjectIds.String,
               "Name of the method step the skid runs now (its method_step tag in the unit's method)")
        results = await add_nodes(self._server, items)
        for item, result in zip(items, results, strict=True):
            if not result.StatusCode.is_good():
                raise RuntimeError(f"could not create pooling node {item.RequestedNewNodeId}: {result.StatusCode}")
        for name, *_ in _PREDICTED:
            await self.set(name, None)

    async def set(self, name: str, value: object, variant_type: ua.VariantType = ua.VariantType.Double) -> None:
        """Set a node's value (None or NaN: ``BadWaitingForInitialData``)."""
        now = datetime.now(UTC)
        waiting = value is None or (isinstance(value, float) and not math.isfinite(value))
        variant = ua.Variant() if waiting else ua.Variant(value, variant_type)
        status = ua.StatusCode(WAITING if waiting else ua.StatusCodes.Good)
        await self._write_attribute(self.node_id(name), ua.AttributeIds.Value,
                                    ua.DataValue(variant, StatusCode=status, SourceTimestamp=now, ServerTimestamp=now))


class PoolingControlLoop:
    """The pooling loop of one unit (module docstring)."""

    def __init__(self, unit: str, plan: PoolingPlan, runtime: LineRuntime, nodes: PoolingNodes) -> None:
        self.unit = unit
        self.plan = plan
        self.strategy = plan.strategy
        """The strategy of the next run (the ``strategy`` node)."""
        self._runtime = runtime
        self._nodes = nodes
        self._column = fast_column(plan)
        self.run: PoolingRun | None = None
        """The current run (None before the first sample)."""
        self.runs = 0
        self._last_run_time: float | None = None
        self._written: dict[str, float] = {}
        self.counters = dict.fromkeys(("setpoints_written", "writes_failed"), 0)
        self.events: list[str] = []
        self._task: asyncio.Task[None] | None = None

    # -- set-up ---------------------------------------------------------------------------------
    async def build_nodes(self) -> None:
        await self._nodes.build(self.strategy)

    @property
    def writable_handlers(self) -> dict[ua.NodeId, WriteHandler]:
        return {self._nodes.node_id("strategy"): self.write_strategy}

    @property
    def audit_actions(self) -> dict[ua.NodeId, str]:
        return {self._nodes.node_id("strategy"): "strategy_change"}

    @property
    def write_roles(self) -> dict[ua.NodeId, str]:
        """Writable node → the role that may write it (for the security layer)."""
        return {self._nodes.node_id("strategy"): STRATEGY_ROLE}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name=f"pooling-{self.unit}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    # -- operator actions -------------------------------------------------------------------------
    async def write_strategy(self, variant: ua.Variant) -> HandlerResult:
        if variant.VariantType != ua.VariantType.String:
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch), f"expected a String, got {variant.VariantType.name}"
        value = str(variant.Value)
        if value not in STRATEGIES:
            return ua.StatusCode(ua.StatusCodes.BadOutOfRange), f"expected one of {' | '.join(STRATEGIES)}"
        previous, self.strategy = self.strategy, value
        await self._record(f"strategy {previous} -> {value} (from the next run)")
        await self._nodes.set("strategy", value, ua.VariantType.String)
        return ua.StatusCode(ua.StatusCodes.Good)

    def setpoint_owner(self, tag: str) -> str | None:
        """Why a client may not write ``tag`` now (this loop pools the current run), else None."""
        if tag not in (CUT_START, CUT_STOP) or self.run is None or self.run.done:
            return None
        return f"the {self.unit} pooling loop ({self.run.strategy}) sets {tag} during the run"

    def status_text(self) -> str:
        if self.run is None:
            return f"{self.unit} pooling: {self.strategy}, no run"
        status = self.run.status()
        return (f"{self.unit} pooling: {self.run.strategy} ({status.source}), run t={self._last_run_time or 0:.0f} s, "
                f"{'collecting' if status.collecting else 'not collecting'}")

    # -- the loop ---------------------------------------------------------------------------------
    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self._take_sample()
            except Exception as exc:  # keep the loop alive; say what happened
                await self._record(f"pooling step failed: {exc}")
                log.exception("unit %s: pooling step failed", self.unit)

    def _values(self) -> tuple[float, float, float] | None:
        samples = self._runtime.adapters[self.unit].last_samples
        values = [usable_value(samples.get(tag)) for tag in (RUN_TIME, UV, CONDUCTIVITY)]
        if any(v is None for v in values):
            return None
        run_time, uv, conductivity = (float(v) for v in values)  # type: ignore[arg-type]
        return run_time, uv, conductivity

    async def _take_sample(self) -> None:
        values = self._values()
        if values is None:
            return
        run_time, uv, conductivity = values
        if self.run is None or (self._last_run_time is not None and run_time < self._last_run_time - 1e-6):
            self.run = PoolingRun(self.plan, self.strategy, self._column, seed=self.plan.estimation.seed + self.runs)
            self.runs += 1
            self._written = {}
            await self._record(f"run {self.runs} started (strategy {self.strategy})")
        self._last_run_time = run_time
        run = self.run
        if run.snap(run_time) is None:
            return
        await asyncio.to_thread(run.step, run_time, uv, conductivity)
        await self._write_setpoints(run, run_time)
        await self._publish(run.status(), run_time)

    async def _write_setpoints(self, run: PoolingRun, run_time: float) -> None:
        start, stop = run.setpoints()
        source = "model" if run.status().source == "model" else "fallback"
        for tag, value in ((CUT_START, start), (CUT_STOP, stop)):
            if self._written.get(tag) == value or (tag not in self._written and value == 0.0):
                continue
            try:
                await self._runtime.write_setpoint(self.unit, tag, value, source=source)
            except (WriteRefused, WriteOutcomeUnknown) as exc:
                what = "outcome unknown" if isinstance(exc, WriteOutcomeUnknown) else "not written"
                self.counters["writes_failed"] += 1
                await self._record(f"t={run_time:.0f} s: {tag} = {value:.1f} s {what}: {exc.message}")
                continue
            self._written[tag] = value
            self.counters["setpoints_written"] += 1
            await self._record(f"t={run_time:.0f} s: {tag} = {value:.1f} s ({source})")

    async def _publish(self, status: PoolingStatus, run_time: float) -> None:
        n = self._nodes
        await n.set("run_time_s", run_time)
        await n.set("method_step_name", self.step_name(), ua.VariantType.String)
        await n.set("strategy_in_use", status.source, ua.VariantType.String)
        await n.set("fallback_reason", status.reason, ua.VariantType.String)
        await n.set("collecting", status.collecting, ua.VariantType.Boolean)
        for name, field, _, _ in _PREDICTED:
            await n.set(name, float(getattr(status, field)))
        counts = {"samples": status.samples, "replans": status.replans, **self.counters}
        for name in _COUNTERS:
            await n.set(name, counts[name], ua.VariantType.UInt32)

    def step_name(self) -> str:
        """The name of the method step the skid's mirrored ``method_step`` tag shows (1 = the method's first step);
        empty without the tag, a usable value or a step of that number."""
        step = usable_value(self._runtime.adapters[self.unit].last_samples.get(METHOD_STEP))
        names = self.plan.method.step_names()
        k = round(float(step)) if step is not None else 0
        return names[k - 1] if 1 <= k <= len(names) else ""

    async def _record(self, text: str) -> None:
        """Keep, log and publish (``last_event``) what the loop did; an event of the unit in the historian."""
        self.events.append(text)
        del self.events[:-1000]
        log.info("unit %s: %s", self.unit, text)
        if self._runtime.historian is not None:
            self._runtime.historian.record_event(self.unit, text, source="pooling")
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        await self._nodes.set("last_event", f"{stamp} {text}"[:500], ua.VariantType.String)
