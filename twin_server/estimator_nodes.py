"""The ``<unit>/estimator`` object: the EKF's state, online parameters and innovations, published and historized.

Node ids ``"<line>.<unit>.estimator.<name>"``, all read-only (every role that may browse the unit, viewer included,
may read them and their history). Values in SI, in the unit the model declares (``EngineeringUnits``; a unit
without a UNECE code is given as text with ``UnitId = -1``):

* ``state_<state>`` / ``state_<state>_std``: the estimate of every scalar model state and its 1 σ;
* ``parameter_<p>`` (AnalogItemType, ``EURange`` = the configured bounds) / ``parameter_<p>_std``: every online
  parameter's estimate and 1 σ; ``parameter_<p>_relative_halfwidth`` (1.96 σ / |value|); ``parameter_<p>_deployed``
  (the value the NMPC uses when it does not use the online one); ``parameter_<p>_source`` (String: ``online`` or
  ``deployed``: which value the NMPC predicts with now);
* ``online_halfwidth_limit``: the gate's limit (:mod:`controllers.online_parameters`);
* ``innovation_<output>`` / ``innovation_<output>_std``: each measured output's innovation (measured − predicted)
  of the last estimator step and its predicted 1 σ (Bad_NoData on a step that did not use the output);
* ``estimate_time_s``: batch time of the estimate.

Every numeric node is historized (HistoryRead gives the state and parameter trajectories and the residuals); a
change of a ``parameter_<p>_source`` is a control-loop event (log, historian event, ``last_event``).
"""

from __future__ import annotations

import math

from asyncua import Server, ua

from controllers.batch_control import BatchControl
from controllers.control_plan import ControlPlan
from twin_server.unit_object_nodes import UnitObjectNodes

NO_DATA = ua.StatusCodes.BadNoData


class EstimatorNodes:
    """Builds and updates one unit's estimator object."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit: str, unit_node: ua.NodeId,
                 plan: ControlPlan) -> None:
        self.plan = plan
        self.nodes = UnitObjectNodes(server, namespace_index, line, unit, unit_node, "estimator",
                                     "State and parameter estimator (EKF): estimates, online parameters, innovations")
        self._sources: dict[str, str] = {}
        self._scalar_states: set[str] = set()
        self._scalar_outputs: set[str] = set()

    async def build(self) -> None:
        n, model = self.nodes, self.plan.model
        for v in model.declaration.states:
            if v.size != 1:
                continue  # a distributed state (a population balance's CSD) is not a scalar node
            self._scalar_states.add(v.name)
            n.scalar(f"state_{v.name}", f"Estimate of {v.description}", v.unit)
            n.scalar(f"state_{v.name}_std", f"Standard deviation (1σ) of the estimate of {v.description}", v.unit)
        for p in self.plan.online_parameters:
            n.scalar(f"parameter_{p.name}", f"Online estimate of {p.name} (kept in [lower, upper] = EURange)", p.unit,
                     eu_range=(p.lower, p.upper))
            n.scalar(f"parameter_{p.name}_std", f"Standard deviation (1σ) of the online estimate of {p.name}", p.unit)
            n.scalar(f"parameter_{p.name}_relative_halfwidth",
                     f"95 % interval half-width of {p.name} relative to its value (1.96σ/|value|)", "C62")
            n.scalar(f"parameter_{p.name}_deployed", f"Deployed value of {p.name} (the NMPC's when not online)",
                     p.unit)
            n.scalar(f"parameter_{p.name}_source", f"Which {p.name} the NMPC predicts with: online | deployed",
                     variant_type=ua.VariantType.String)
        n.scalar("online_halfwidth_limit", "The NMPC uses an online value while its relative 95 % half-width is at "
                                           "most this", "C62")
        outputs = {v.name: v for v in model.declaration.outputs}
        for m in self.plan.measurements:
            v = outputs[m.output]
            if v.size != 1:
                continue
            self._scalar_outputs.add(m.output)
            n.scalar(f"innovation_{m.output}", f"Innovation (measured - predicted) of {v.description}", v.unit)
            n.scalar(f"innovation_{m.output}_std", f"Predicted 1σ of the innovation of {v.description}", v.unit)
        n.scalar("estimate_time_s", "Batch time of the estimate (s)", "SEC")
        await n.build()
        await n.set("online_halfwidth_limit", self.plan.online_halfwidth_limit)

    async def publish(self, core: BatchControl) -> list[str]:
        """Publish the core's current estimate; returns a text per online parameter whose source changed."""
        est = core.estimate
        if est is None:
            return []
        n = self.nodes
        await n.set("estimate_time_s", float(est.time_s))
        for name, value in est.states.items():
            if name not in self._scalar_states:
                continue
            await _set_finite(n, f"state_{name}", float(value))  # type: ignore[arg-type]
            await _set_finite(n, f"state_{name}_std", float(est.std[name]))  # type: ignore[arg-type]
        changes: list[str] = []
        for name, s in core.online_parameter_states().items():
            await _set_finite(n, f"parameter_{name}", s.value)
            await _set_finite(n, f"parameter_{name}_std", s.std)
            await _set_finite(n, f"parameter_{name}_relative_halfwidth", s.relative_halfwidth)
            await n.set(f"parameter_{name}_deployed", s.deployed)
            await n.set(f"parameter_{name}_source", s.source, ua.VariantType.String)
            previous = self._sources.get(name)
            if previous is not None and previous != s.source:
                changes.append(f"t={est.time_s:.0f} s: NMPC uses the {s.source} {name} ({s.value:.4g}; 95 % "
                               f"half-width {s.relative_halfwidth:.1%} of it, limit "
                               f"{self.plan.online_halfwidth_limit:.1%})")
            self._sources[name] = s.source
        for m in self.plan.measurements:
            if m.output not in self._scalar_outputs:
                continue
            if m.output in est.innovation:
                await n.set(f"innovation_{m.output}", float(est.innovation[m.output]))  # type: ignore[arg-type]
                await n.set(f"innovation_{m.output}_std", float(est.innovation_std.get(m.output, math.nan)))  # type: ignore[arg-type]
            else:
                await n.set(f"innovation_{m.output}", None, status=NO_DATA)
                await n.set(f"innovation_{m.output}_std", None, status=NO_DATA)
        return changes

    def batch_started(self) -> None:
        """A new batch's first source is not a change."""
        self._sources.clear()


async def _set_finite(nodes: UnitObjectNodes, name: str, value: float) -> None:
    if math.isfinite(value):
        await nodes.set(name, value)
    else:
        await nodes.set(name, None, status=ua.StatusCodes.BadOutOfRange)
