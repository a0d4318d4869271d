"""A unit's surrogate beside its physics model, live: the ``<unit>/surrogate`` OPC UA object.

Node ids ``"<line>.<unit>.surrogate.<name>"``, all read-only (any role that may browse the unit, viewer
included, may read them; there is nothing to write, so no management role is involved):

* ``surrogate_<output>`` / ``physics_<output>`` (AnalogItemType, the published output's unit): the output one
  estimator period ahead of the last state estimate, predicted by the surrogate and by the physics model;
* ``disagreement_nrmse`` (fraction) over the window, ``disagreement_threshold``, ``drift`` (Boolean),
  ``in_envelope`` (Boolean: the estimate lies in the surrogate's validity envelope);
* ``artifact_version``, ``artifact_path``, ``artifact_test_nrmse_max``, ``artifact_declaration_hash``;
* ``prediction_model``: the model the unit's NMPC predicts with now (``physics`` or ``surrogate``);
* ``last_event``: the last drift event (also in the control loop's events and the log).

With alarms, :attr:`SurrogateWatch.drift_alarm` is the unit's ``surrogate_drift`` condition: active while
``drift`` is True (see :mod:`twin_server.alarms.surrogate_alarm`).

:class:`SurrogateWatch` is driven by the unit's control loop after every estimator step
(:mod:`process_models.surrogates.monitor` does the numerics).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from asyncua import Server, ua

from controllers.control_plan import PublishedOutput
from plc_adapters.asyncua_seam import add_nodes, address_space
from process_models.declaration import CompiledModel
from process_models.surrogates.twin_options import SurrogateOptions
from twin_server.address_space import analog_properties, object_item, variable_item
from twin_server.alarms.surrogate_alarm import SurrogateDriftAlarm

log = logging.getLogger("linetwin.surrogate")


class SurrogateWatch:
    """Loads a unit's surrogate, builds its nodes, and publishes each comparison with the physics model."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit: str, unit_node: ua.NodeId,
                 options: SurrogateOptions, model: CompiledModel, published: Sequence[PublishedOutput],
                 record: Callable[[str], Awaitable[None]]) -> None:
        from process_models.surrogates.artifact import load_artifact  # torch only for units with a surrogate
        from process_models.surrogates.monitor import SurrogateMonitor

        self.artifact = load_artifact(options.path, model)
        self.published = tuple(published)
        self.monitor = SurrogateMonitor(self.artifact, model, [o.output for o in self.published],
                                        options.disagreement_threshold, options.window)
        self.options = options
        self._server, self._write_attribute, self._idx = server, address_space(server).write, namespace_index
        self._prefix = f"{line}.{unit}.surrogate"
        self._unit, self._unit_node = unit, unit_node
        self._record = record
        self.object_id = ua.NodeId(self._prefix, namespace_index)
        self.readings = 0
        self.drift_alarm: SurrogateDriftAlarm | None = None
        """The unit's ``surrogate_drift`` condition (set by the server when the line has alarms)."""

    def node_id(self, name: str) -> ua.NodeId:
        return ua.NodeId(f"{self._prefix}.{name}", self._idx)

    async def build(self) -> None:
        idx = self._idx
        items = [object_item(self.object_id, idx, "surrogate", self._unit_node,
                             ua.NodeId(ua.ObjectIds.BaseObjectType),
                             "Neural surrogate of this unit's model, run beside the physics model")]
        props: list[ua.AddNodesItem] = []

        def scalar(name: str, variant: ua.Variant, data_type: int, description: str,
                   unit_code: str | None = None) -> None:
            nid = self.node_id(name)
            type_def = ua.ObjectIds.AnalogItemType if unit_code else ua.ObjectIds.BaseDataVariableType
            items.append(variable_item(nid, idx, name, self.object_id, variant, data_type, type_def, description))
            if unit_code:
                props.extend(analog_properties(nid, idx, unit_code, -1e300, 1e300))

        double = (ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double)
        for o in self.published:
            scalar(f"surrogate_{o.name}", *double, f"Surrogate prediction of {o.description}", o.unit_code)
            scalar(f"physics_{o.name}", *double, f"Physics-model prediction of {o.description}", o.unit_code)
        scalar("disagreement_nrmse", *double, "Surrogate vs physics NRMSE over the window (fraction)", "C62")
        scalar("disagreement_threshold", *double, "Drift threshold of disagreement_nrmse (fraction)", "C62")
        for name, text in (("drift", "True while disagreement_nrmse exceeds disagreement_threshold"),
                           ("in_envelope", "True when the state estimate lies in the surrogate's validity envelope")):
            scalar(name, ua.Variant(False, ua.VariantType.Boolean), ua.ObjectIds.Boolean, text)
        meta = self.artifact.metadata
        texts = {"artifact_version": (self.artifact.version, "Surrogate artifact version (hash of its weights)"),
                 "artifact_path": (str(self.options.path), "Surrogate artifact directory"),
                 "artifact_declaration_hash": (self.artifact.declaration_hash, "Declaration hash it was trained on"),
                 "prediction_model": ("physics", "Model the unit's NMPC predicts with now: physics | surrogate"),
                 "last_event": ("", "Last surrogate drift event")}
        for name, (value, text) in texts.items():
            scalar(name, ua.Variant(value, ua.VariantType.String), ua.ObjectIds.String, text)
        scalar("artifact_test_nrmse_max", ua.Variant(float(meta["metrics"]["test_nrmse_max"]), ua.VariantType.Double),
               ua.ObjectIds.Double, "Largest held-out test NRMSE of the artifact (fraction)", "C62")
        results = await add_nodes(self._server, items + props)
        for it, res in zip(items + props, results, strict=True):
            if not res.StatusCode.is_good():
                raise RuntimeError(f"could not create surrogate node {it.RequestedNewNodeId}: {res.StatusCode}")
        await self.set("disagreement_threshold", self.options.disagreement_threshold)

    async def set(self, name: str, value: object, variant_type: ua.VariantType = ua.VariantType.Double,
                  status: int = ua.StatusCodes.Good) -> None:
        now = datetime.now(UTC)
        await self._write_attribute(
            self.node_id(name), ua.AttributeIds.Value,
            ua.DataValue(ua.Variant(value, variant_type), StatusCode=ua.StatusCode(status), SourceTimestamp=now,
                         ServerTimestamp=now))

    async def update(self, time_s: float, states: dict, inputs: dict[str, float], parameters: dict[str, float],
                     interval_s: float, prediction_model: str) -> None:
        """Compare surrogate and physics from the estimate at ``time_s`` over the next ``interval_s`` s."""
        reading = self.monitor.update(time_s, states, inputs, parameters, interval_s)
        self.readings += 1
        for o in self.published:
            for source, values in (("surrogate", reading.surrogate_outputs), ("physics", reading.physics_outputs)):
                value = o.from_si(values[o.output])
                ok = math.isfinite(value)
                await self.set(f"{source}_{o.name}", value if ok else 0.0,
                               status=ua.StatusCodes.Good if ok else ua.StatusCodes.BadOutOfRange)
        finite = math.isfinite(reading.disagreement)
        await self.set("disagreement_nrmse", reading.disagreement if finite else 0.0,
                       status=ua.StatusCodes.Good if finite else ua.StatusCodes.BadOutOfRange)
        await self.set("drift", reading.drift, ua.VariantType.Boolean)
        await self.set("in_envelope", reading.in_envelope, ua.VariantType.Boolean)
        await self.set("prediction_model", prediction_model, ua.VariantType.String)
        if self.drift_alarm is not None:
            await self.drift_alarm.update(reading.drift, reading.disagreement)
        if reading.drift_started:
            text = (f"t={time_s:.0f} s: surrogate drift: disagreement {reading.disagreement:.2%} > "
                    f"{self.options.disagreement_threshold:.2%} over the last {self.monitor.window} comparisons")
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            await self.set("last_event", f"{stamp} {text}", ua.VariantType.String)
            log.warning("unit %s: %s", self._unit, text)
            await self._record(text)
