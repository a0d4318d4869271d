"""The ``<unit>/forecast`` object: the ``Forecast(profile, horizon_s)`` method and the last forecast's nodes.

``Forecast`` (role **viewer** and up — it changes nothing in the plant or the twin but its own forecast nodes;
checked and audited as a ``call`` like every twin method, :mod:`twin_server.method_calls`):

* inputs: ``profile`` (String): the input programme as JSON (:mod:`controllers.forecasting`: ``{"time_s": [...],
  "<manipulated tag>": [...], "interpolation": "linear" | "zoh"}``, times in s from the forecast's start, values in
  the tag's engineering unit) or an empty string for the NMPC's current plan (MPC mode), the recipe (AUTO) or the
  last setpoint held (MANUAL); ``horizon_s`` (Double): seconds to forecast, ``0 < horizon_s <= 2 × batch duration``;
* output: ``forecast`` (String): JSON with ``time_s`` and, per quality quantity, ``mean`` / ``low`` / ``high``
  (the 95 % band) / ``std`` in its engineering unit, plus ``source``, ``start_s`` and ``sigma_points``;
* refusals: a malformed profile → ``BadInvalidArgument``; a profile value outside the input's limits or a horizon out
  of range → ``BadOutOfRange``; no batch running (no estimate) → ``BadInvalidState``; a simulation that fails →
  ``BadInternalError`` (with the reason in the audit trail).

Nodes (``"<line>.<unit>.forecast.<name>"``, read-only, written by each successful call): ``time_s`` (array, s from
the forecast's start), per quantity ``<q>``, ``<q>_low``, ``<q>_high`` (arrays, the quantity's unit, for SCADA
trends) and the horizon-end values ``<q>_end``, ``<q>_end_low``, ``<q>_end_high`` (scalars, historized); ``source``
(String), ``start_s`` (batch time the forecast starts from), ``wall_time_ms``.

One forecast per unit runs at a time (another call waits for it); it runs in a worker thread on a snapshot of the
estimate, so the control loop keeps its period.
"""

from __future__ import annotations

import asyncio
import json
import math

from asyncua import Server, ua

from controllers.batch_control import BatchControl
from controllers.forecasting import (
    NoEstimate,
    ProfileError,
    QualityForecast,
    check_horizon,
    parse_profile,
    prepare_forecast,
)
from process_models.forecast import ForecastError
from twin_server.audit import AuditTrail
from twin_server.method_calls import MethodArgument, MethodRefused, add_checked_method
from twin_server.unit_object_nodes import UnitObjectNodes

METHOD_NAME = "Forecast"
METHOD_ROLE = "viewer"
"""The least role that may call Forecast (registered with the security layer by the method's browse name)."""
MAX_HORIZON_BATCHES = 2.0
"""The longest horizon, in batch durations."""
INPUTS = (MethodArgument("profile", ua.VariantType.String,
                         'input programme as JSON {"time_s": [...], "<tag>": [...]} (tag units), or "" for the '
                         "NMPC's plan / the recipe / the held setpoint"),
          MethodArgument("horizon_s", ua.VariantType.Double, "seconds to forecast from the current estimate"))
OUTPUTS = (MethodArgument("forecast", ua.VariantType.String,
                          "JSON: time_s, per quantity mean/low/high (95 %)/std in its unit, source, start_s"),)


class ForecastNodes:
    """Builds one unit's forecast object and answers its Forecast calls from the unit's control core."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit: str, unit_node: ua.NodeId,
                 core: BatchControl, audit: AuditTrail) -> None:
        self._server = server
        self._core = core
        self._audit = audit
        self.nodes = UnitObjectNodes(server, namespace_index, line, unit, unit_node, "forecast",
                                     "What-if forecasts of the quality outputs with a 95 % band (Forecast method)")
        self.method_id = self.nodes.node_id(METHOD_NAME)
        self._lock = asyncio.Lock()
        self.last: QualityForecast | None = None

    async def build(self) -> None:
        n, plan = self.nodes, self._core.plan
        published = {o.name: o for o in plan.published}
        n.array("time_s", "Forecast time grid, s from the forecast's start", "SEC")
        for name in plan.forecast_outputs:
            o = published[name]
            n.array(name, f"Forecast mean of {o.description}", o.unit_code, o.eu_range)
            n.array(f"{name}_low", f"Lower end of the 95 % band of {o.description}", o.unit_code, o.eu_range)
            n.array(f"{name}_high", f"Upper end of the 95 % band of {o.description}", o.unit_code, o.eu_range)
            n.scalar(f"{name}_end", f"Forecast {o.description} at the horizon's end", o.unit_code, o.eu_range)
            n.scalar(f"{name}_end_low", f"Lower 95 % bound of {o.description} at the horizon's end", o.unit_code,
                     o.eu_range)
            n.scalar(f"{name}_end_high", f"Upper 95 % bound of {o.description} at the horizon's end", o.unit_code,
                     o.eu_range)
        n.scalar("source", "Input programme of the last forecast: profile | nmpc_plan | recipe | hold",
                 variant_type=ua.VariantType.String)
        n.scalar("start_s", "Batch time of the estimate the last forecast starts from (s)", "SEC")
        n.scalar("wall_time_ms", "Wall time the last forecast took", "C26")
        await n.build()
        await add_checked_method(self._server, n.object_id, self.method_id,
                                 ua.QualifiedName(METHOD_NAME, self.method_id.NamespaceIndex), self.forecast,
                                 self._audit, inputs=INPUTS, outputs=OUTPUTS, audit_name=n.key(METHOD_NAME))

    async def forecast(self, profile: str, horizon_s: float) -> list[object]:
        """The Forecast method's action (module docstring)."""
        plan = self._core.plan
        try:
            horizon = check_horizon(horizon_s, MAX_HORIZON_BATCHES * plan.batch_duration_s)
            parsed = parse_profile(profile, plan) if profile.strip() else None
        except ProfileError as exc:
            code = ua.StatusCodes.BadOutOfRange if exc.out_of_range else ua.StatusCodes.BadInvalidArgument
            raise MethodRefused(code, str(exc)) from None
        async with self._lock:
            try:
                run = prepare_forecast(self._core, parsed, horizon)
            except NoEstimate as exc:
                raise MethodRefused(ua.StatusCodes.BadInvalidState, str(exc)) from None
            try:
                result = await asyncio.to_thread(run)
            except ForecastError as exc:
                raise MethodRefused(ua.StatusCodes.BadInternalError, str(exc)) from None
            await self._publish(result)
        self.last = result
        return [json.dumps(result.as_json(), allow_nan=False)]

    async def _publish(self, f: QualityForecast) -> None:
        n = self.nodes
        await n.set("time_s", [float(t) for t in f.times_s])
        for name in f.mean:
            for suffix, values in (("", f.mean[name]), ("_low", f.low[name]), ("_high", f.high[name])):
                await n.set(f"{name}{suffix}", [float(v) for v in values])
                end = float(values[-1])
                await n.set(f"{name}_end{suffix}", end if math.isfinite(end) else None,
                            status=ua.StatusCodes.Good if math.isfinite(end) else ua.StatusCodes.BadOutOfRange)
        await n.set("source", f.source, ua.VariantType.String)
        await n.set("start_s", f.start_s)
        await n.set("wall_time_ms", f.wall_time_s * 1000.0)
