"""Who may do what to which node: the role needed to write a node's Value, to call a method, to read history.

The twin registers its client-writable nodes (commanded tags, control mode and targets → ``operator``) and
methods (StartBatch / StopBatch → ``operator``); everything else is read-only to every role. Rules:

- Write: a node that does not exist → ``BadNodeIdUnknown``; any attribute other than Value, a ``viewer``, or a
  node registered for a higher role → ``BadUserAccessDenied``. What passes goes on to the write guard (types,
  limits, rates, ownership).
- Call: the method's registered role (standard ns=0 methods of the Server object: ``viewer``;
  RequestServerStateChange and any unregistered method: ``admin``).
- HistoryRead: ``viewer`` and up.
- AddNodes / DeleteNodes / AddReferences / DeleteReferences: refused for everyone (the address space is built
  from the line config).

The same table is published as each twin node's ``RolePermissions`` attribute; ``UserRolePermissions``,
``UserAccessLevel`` and ``UserExecutable`` are answered for the session's role (:mod:`.sessions`).
"""

from __future__ import annotations

import functools

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole

from plc_adapters.asyncua_seam import AddressSpaceView
from twin_server.security.identity import TwinUser
from twin_server.security.roles import Role

WELL_KNOWN_ROLE_IDS: dict[Role, ua.NodeId] = {
    Role.VIEWER: ua.NodeId(ua.ObjectIds.WellKnownRole_Observer),
    Role.OPERATOR: ua.NodeId(ua.ObjectIds.WellKnownRole_Operator),
    Role.ENGINEER: ua.NodeId(ua.ObjectIds.WellKnownRole_Engineer),
    Role.ADMIN: ua.NodeId(ua.ObjectIds.WellKnownRole_SecurityAdmin),
}
"""The OPC UA well-known role of each twin role (OPC 10000-3 §4.9.2 / 10000-5 Annex F)."""
P = ua.PermissionType
VIEW_PERMISSIONS = P.Browse | P.Read | P.ReadRolePermissions | P.ReceiveEvents | P.ReadHistory
ADMIN_METHODS = {ua.NodeId(ua.ObjectIds.Server_RequestServerStateChange)}


def role_of(user: User) -> Role | None:
    """The twin role of a session's user; None for the server's own (internal) writes."""
    if isinstance(user, TwinUser):
        return user.twin_role
    if user.role is UserRole.Admin and not isinstance(user, TwinUser):
        return None  # asyncua's internal session / server-side code
    return Role.VIEWER


def is_internal(user: User) -> bool:
    return not isinstance(user, TwinUser) and user.role is UserRole.Admin


class NodeAccess:
    """The role table of one server's nodes."""

    def __init__(self, nodes: AddressSpaceView, namespace_index: int) -> None:
        self._nodes = nodes
        self.namespace_index = namespace_index
        self.write_roles: dict[ua.NodeId, Role] = {}
        self.call_roles: dict[ua.NodeId, Role] = {}

    def allow_write(self, node: ua.NodeId, role: Role) -> None:
        self.write_roles[node] = role

    def allow_call(self, method: ua.NodeId, role: Role) -> None:
        self.call_roles[method] = role

    def exists(self, node: ua.NodeId) -> bool:
        return self._nodes.exists(node)

    def write_role(self, node: ua.NodeId) -> Role | None:
        """The least role that may write the node's Value; None: nobody (read-only)."""
        return self.write_roles.get(node)

    def call_role(self, method: ua.NodeId) -> Role:
        if method in self.call_roles:
            return self.call_roles[method]
        if method.NamespaceIndex == 0 and method not in ADMIN_METHODS:
            return Role.VIEWER
        return Role.ADMIN

    def write_refusal(self, user: User, wv: ua.WriteValue) -> tuple[int, str] | None:
        """``(status code, reason)`` when ``user`` may not write ``wv``; None: let the write guard decide."""
        if is_internal(user):
            return None
        if not self.exists(wv.NodeId):
            return ua.StatusCodes.BadNodeIdUnknown, "no such node"
        role = role_of(user) or Role.VIEWER
        if wv.AttributeId != ua.AttributeIds.Value:
            return ua.StatusCodes.BadUserAccessDenied, "only Values are writable over OPC UA (no role may change " \
                                                       f"attribute {ua.AttributeIds(wv.AttributeId).name})"
        needed = self.write_role(wv.NodeId)
        if needed is None:
            if role < Role.OPERATOR:
                return ua.StatusCodes.BadUserAccessDenied, f"role {role.label} may not write"
            if wv.NodeId.NamespaceIndex != self.namespace_index:
                return ua.StatusCodes.BadUserAccessDenied, "not a node of the twin"
            return None  # a twin node that is not writable: the guard answers BadNotWritable
        if role < needed:
            return ua.StatusCodes.BadUserAccessDenied, f"needs role {needed.label}, user has {role.label}"
        return None

    def call_refusal(self, user: User, method: ua.NodeId) -> str | None:
        if is_internal(user):
            return None
        role = role_of(user) or Role.VIEWER
        needed = self.call_role(method)
        return None if role >= needed else f"needs role {needed.label}, user has {role.label}"

    @staticmethod
    def history_refusal(user: User) -> str | None:
        return None if is_internal(user) or (role_of(user) or Role.VIEWER) >= Role.VIEWER else "no role"

    # --- RolePermissions ---------------------------------------------------------------------------------

    def role_permissions(self, node: ua.NodeId) -> list[ua.RolePermissionType]:
        return list(self._role_permissions(self.write_role(node), self.call_roles.get(node)))

    @staticmethod
    @functools.cache
    def _role_permissions(wr: Role | None, cr: Role | None) -> tuple[ua.RolePermissionType, ...]:
        """The RolePermissions of a node written by ``wr`` and above, called by ``cr`` and above (a handful of
        distinct pairs per line: made once each, not once per node — a 10,000-tag line has 30,000 nodes)."""
        out = []
        for role, role_id in WELL_KNOWN_ROLE_IDS.items():
            perms = VIEW_PERMISSIONS
            if wr is not None and role >= wr:
                perms |= P.Write
            if cr is not None and role >= cr:
                perms |= P.Call
            out.append(ua.RolePermissionType(RoleId=role_id, Permissions=perms))
        return tuple(out)

    def user_role_permissions(self, node: ua.NodeId, user: User) -> list[ua.RolePermissionType]:
        role = role_of(user)
        if role is None:
            return self.role_permissions(node)
        return [rp for rp in self.role_permissions(node) if rp.RoleId == WELL_KNOWN_ROLE_IDS[role]]

    def publish_role_permissions(self) -> int:
        """Set the ``RolePermissions`` attribute of every node in the twin's namespace; returns how many."""
        count = 0
        values: dict[tuple[Role | None, Role | None], ua.DataValue] = {}  # one DataValue per distinct pair
        for node_id in self._nodes.node_ids():
            if node_id.NamespaceIndex != self.namespace_index:
                continue
            key = (self.write_role(node_id), self.call_roles.get(node_id))
            value = values.get(key)
            if value is None:
                value = ua.DataValue(ua.Variant(list(self._role_permissions(*key)), ua.VariantType.ExtensionObject))
                values[key] = value
            self._nodes.set_attribute(node_id, ua.AttributeIds.RolePermissions, value)
            count += 1
        return count
