"""The ``<unit>/model`` OPC UA object of a unit whose model runs in the twin (estimator, NMPC, surrogate watch,
forecasts): which parameter set they run on, how well it still fits, and the methods that switch it.

Node ids ``"<line>.<unit>.model.<name>"`` (read: every role, viewer included; the methods: engineer and up):

- ``parameter_set`` (String): id of the deployed parameter set (16 hex digits). Every estimate, prediction and
  forecast of the unit is made with it. Historized: HistoryRead raw gives the set deployed at the twin's start and
  at each switch (:meth:`twin_server.historian.service.Historian.historize_text`); the switches, with who asked, are
  events of the unit (origin ``parameter_set``; HistoryRead events on the unit object).
- ``pending_parameter_set`` (String): the set a switch waiting for the next batch start goes to ("" when none).
- ``declaration_hash`` (String): hash of the unit's model declaration; only sets of this declaration are accepted.
- ``innovation_nis`` (Double, historized, dimensionless): the estimator's normalised innovation squared of its
  last step; ``innovation_nis_low`` / ``innovation_nis_high``: its χ² band for that step; ``innovation_dof``
  (UInt32): that step's degrees of freedom (measured values used).
- ``ApplyParameterSet(set_id: String)``: deploy a stored set (:mod:`twin_server.parameter_deployment`).
- ``RollbackParameterSet()``: back to the set deployed before (or cancel a pending switch).

Both methods are checked and audited (:mod:`twin_server.method_calls`; old and new set id in the audit entry).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from asyncua import Server, ua

from plc_adapters.asyncua_seam import add_nodes, address_space
from twin_server.address_space import analog_properties, object_item, variable_item
from twin_server.audit import AuditTrail
from twin_server.method_calls import MethodArgument, add_checked_method

METHOD_ROLE = "engineer"
"""The role a user needs to call ApplyParameterSet / RollbackParameterSet (enforced by the security layer)."""
WAITING = ua.StatusCodes.BadWaitingForInitialData


class ModelNodes:
    """Creates and updates one unit's ``model`` object."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit: str, unit_node: ua.NodeId,
                 audit: AuditTrail) -> None:
        self._server = server
        self._write_attribute = address_space(server).write
        self._idx = namespace_index
        self._prefix = f"{line}.{unit}.model"
        self._unit_node = unit_node
        self._audit = audit
        self.object_id = ua.NodeId(self._prefix, namespace_index)
        self.method_roles: dict[ua.NodeId, str] = {}
        self.historized: list[ua.NodeId] = [self.node_id("innovation_nis")]
        """Numeric nodes the historian keeps."""
        self.on_value: Callable[[str, float | None, int, datetime], None] | None = None
        """Called with ``(node key, value, status, time)`` for every historized value set (the historian)."""

    def node_id(self, name: str) -> ua.NodeId:
        return ua.NodeId(f"{self._prefix}.{name}", self._idx)

    async def build(self, declaration_hash: str, on_apply: Callable[[str], Awaitable[None]],
                    on_rollback: Callable[[], Awaitable[None]]) -> None:
        idx = self._idx
        items = [object_item(self.object_id, idx, "model", self._unit_node, ua.NodeId(ua.ObjectIds.BaseObjectType),
                             "The unit's model in the twin: its deployed parameter set and how well it fits")]

        def scalar(name: str, variant: ua.Variant, data_type: int, description: str,
                   unit_code: str | None = None) -> None:
            nid = self.node_id(name)
            type_def = ua.ObjectIds.AnalogItemType if unit_code else ua.ObjectIds.BaseDataVariableType
            items.append(variable_item(nid, idx, name, self.object_id, variant, data_type, type_def, description))
            if unit_code:
                items.extend(analog_properties(nid, idx, unit_code, 0.0, 1e300))

        text = ua.Variant("", ua.VariantType.String)
        scalar("parameter_set", text, ua.ObjectIds.String,
               "Id of the deployed parameter set: every estimate, prediction and forecast of the unit is made with it")
        scalar("pending_parameter_set", text, ua.ObjectIds.String,
               "The parameter set a switch waiting for the next batch start goes to (empty: none)")
        scalar("declaration_hash", ua.Variant(declaration_hash, ua.VariantType.String), ua.ObjectIds.String,
               "Hash of the unit's model declaration; only parameter sets of this declaration are accepted")
        for name, description in (
                ("innovation_nis", "Normalised innovation squared of the estimator's last step (chi-square "
                                   "distributed while the deployed parameter set fits the plant)"),
                ("innovation_nis_low", "Lower edge of the NIS chi-square band for the last step"),
                ("innovation_nis_high", "Upper edge of the NIS chi-square band for the last step")):
            scalar(name, ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double, description, "C62")
        scalar("innovation_dof", ua.Variant(0, ua.VariantType.UInt32), ua.ObjectIds.UInt32,
               "Degrees of freedom of the last NIS (measured values the estimator step used)")
        results = await add_nodes(self._server, items)
        for it, res in zip(items, results, strict=True):
            if not res.StatusCode.is_good():
                raise RuntimeError(f"could not create model node {it.RequestedNewNodeId}: {res.StatusCode}")
        for name in ("innovation_nis", "innovation_nis_low", "innovation_nis_high"):
            await self.set(name, None, status=WAITING)
        methods: list[tuple[str, Callable[..., Awaitable[None]], tuple[MethodArgument, ...]]] = [
            ("ApplyParameterSet", on_apply,
             (MethodArgument("set_id", ua.VariantType.String, "Id of a stored parameter set (16 hex digits)"),)),
            ("RollbackParameterSet", on_rollback, ()),
        ]
        for name, action, inputs in methods:
            method_id = self.node_id(name)
            await add_checked_method(self._server, self.object_id, method_id, ua.QualifiedName(name, idx), action,
                                     self._audit, inputs=inputs, audit_name=f"{self._prefix}.{name}")
            self.method_roles[method_id] = METHOD_ROLE

    async def set(self, name: str, value: object, variant_type: ua.VariantType = ua.VariantType.Double,
                  status: int = ua.StatusCodes.Good) -> None:
        now = datetime.now(UTC)
        nid = self.node_id(name)
        if self.on_value is not None and nid in self.historized:
            self.on_value(str(nid.Identifier), None if value is None else float(value), status, now)  # type: ignore[arg-type]
        variant = ua.Variant(value, variant_type) if value is not None else ua.Variant()
        await self._write_attribute(
            nid, ua.AttributeIds.Value,
            ua.DataValue(variant, StatusCode=ua.StatusCode(status), SourceTimestamp=now, ServerTimestamp=now))
