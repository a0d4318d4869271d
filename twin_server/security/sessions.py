"""Hooks into asyncua's sessions: logins, logouts, Call, HistoryRead, node management and per-user attributes.

asyncua's session calls its method service without the user and has no audit. Every client session's services
pass through :class:`SessionHooks`, installed by the asyncua seam (:func:`plc_adapters.asyncua_seam.
install_session_hooks`, the only place that touches asyncua's sessions):

- CreateSession: a client certificate refused by the validator is audited (``login``, refused);
- ActivateSession: the identity token is checked by :class:`~.identity.TwinUserManager`; success and
  failure are audited with user, role, client application URI and address, and the reason of a refusal;
- CloseSession: ``logout`` is audited;
- Call: each method's role is checked (:class:`~.node_access.NodeAccess`); refused → BadUserAccessDenied;
  every call is audited with its arguments and status;
- Call: a method id that does not exist → ``BadMethodInvalid``; an argument larger than the value limit →
  ``BadEncodingLimitsExceeded``;
- HistoryRead: ``viewer`` and up; audit rows of event history (logins, refusals, who wrote what) only from
  ``[security] audit_events_role`` up (:data:`~twin_server.historian.audit_history.AUDIT_EVENTS_VISIBLE`);
- event subscriptions: AuditEvents reach only sessions with the audit role (:meth:`SessionHooks.admit_event`,
  installed as the asyncua seam's event filter); process alarms reach everyone;
- Read, Call, HistoryRead, CreateMonitoredItems: more operations than ``[security.limits]`` allow →
  ``BadTooManyOperations`` (:mod:`.request_limits`), a ReadAtTime with too many times per node likewise;
- Read: ``UserRolePermissions``, ``UserAccessLevel`` and ``UserExecutable`` are answered for the user;
- node management (AddNodes, DeleteNodes, AddReferences, DeleteReferences) is refused for everyone, already at
  the service level (:class:`NoNodeManagement`), and audited.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import PermissionRuleset, User, UserRole

from plc_adapters.asyncua_seam import SERVICE_REFUSALS, AddressSpaceView, ServiceError, SessionServiceHooks, SessionView
from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail
from twin_server.historian.audit_history import AUDIT_EVENTS_VISIBLE
from twin_server.security.identity import CURRENT_LOGIN, LoginAttempt, TwinUser
from twin_server.security.node_access import NodeAccess, is_internal, role_of
from twin_server.security.pki import CHANNEL_SECURED
from twin_server.security.request_limits import RequestLimits
from twin_server.security.roles import Role

log = logging.getLogger("linetwin.security")

NODE_MANAGEMENT = {
    ua.NodeId(ua.ObjectIds.AddNodesRequest_Encoding_DefaultBinary): "add_nodes",
    ua.NodeId(ua.ObjectIds.DeleteNodesRequest_Encoding_DefaultBinary): "delete_nodes",
    ua.NodeId(ua.ObjectIds.AddReferencesRequest_Encoding_DefaultBinary): "add_references",
    ua.NodeId(ua.ObjectIds.DeleteReferencesRequest_Encoding_DefaultBinary): "delete_references",
    ua.NodeId(ua.ObjectIds.RegisterServerRequest_Encoding_DefaultBinary): "register_server",
    ua.NodeId(ua.ObjectIds.RegisterServer2Request_Encoding_DefaultBinary): "register_server",
}
CURRENT_CALLER: contextvars.ContextVar[User | None] = contextvars.ContextVar("linetwin_caller", default=None)
"""The session user while a method call runs (asyncua's method service does not pass it to the method)."""

NODE_MANAGEMENT_REASON = "the address space is built from the line config; no client may add or delete nodes"


def user_label(user: User | None) -> str:
    if isinstance(user, TwinUser):
        return user.label
    return "server" if user is not None and user.role is UserRole.Admin else "anonymous"


def role_label(user: User | None) -> str:
    role = role_of(user) if user is not None else None
    return role.label if role is not None else ("internal" if user is not None and is_internal(user) else "")


def client_label(user: User | None) -> str:
    return user.client if isinstance(user, TwinUser) else ""


def _address(name: Any) -> str:
    if isinstance(name, tuple) and len(name) >= 2:
        return f"{name[0]}:{name[1]}"
    return str(name or "")


class NoNodeManagement(PermissionRuleset):
    """Service-level ruleset: node management refused for every user (and audited); all other services pass."""

    def __init__(self, audit: AuditTrail) -> None:
        self._audit = audit

    def check_validity(self, user: Any, action_type_id: ua.NodeId, body: Any) -> bool:
        action = NODE_MANAGEMENT.get(action_type_id)
        if action is None:
            return True
        self._audit.record(AuditEntry(action=action, user=user_label(user), node="(address space)",
                                      outcome=AuditOutcome.REFUSED, status="BadUserAccessDenied",
                                      reason=NODE_MANAGEMENT_REASON, role=role_label(user),
                                      client=client_label(user)))
        return False


class SessionHooks(SessionServiceHooks):
    """The security hooks of every client session (installed through :func:`~plc_adapters.asyncua_seam.
    install_session_hooks`)."""

    def __init__(self, nodes: AddressSpaceView, access: NodeAccess, audit: AuditTrail,
                 channel_secured: Callable[[Any], bool] | None = None, limits: RequestLimits | None = None,
                 audit_events_role: Role = Role.ENGINEER) -> None:
        self.nodes = nodes
        self.channel_secured = channel_secured
        self.access = access
        self.audit = audit
        self.limits = limits or RequestLimits()
        self.audit_events_role = audit_events_role
        self.sessions: dict[ua.NodeId, SessionView] = {}
        """Activated client sessions by session id (for the event filter)."""

    def sees_audit(self, user: User | None) -> bool:
        """Whether ``user`` may see audit content (login and audit events, audit rows of event history)."""
        if user is not None and is_internal(user):
            return True
        role = (role_of(user) if user is not None else None) or Role.VIEWER
        return role >= self.audit_events_role

    def admit_event(self, event: Any, session_id: ua.NodeId) -> bool:
        """The asyncua seam's event filter: an AuditEvent (any AuditEventType: it has ``ClientAuditEntryId``) goes
        only to sessions with the audit role; every other event to everyone. A subscription of a session the
        hooks never saw activate is the server's own."""
        if not hasattr(event, "ClientAuditEntryId"):
            return True
        view = self.sessions.get(session_id)
        return view is None or self.sees_audit(view.user)

    def _check_count(self, session: SessionView, action: str, what: str, count: int) -> None:
        """Refuse (and audit) a request with more operations than ``[security.limits]`` allow."""
        why = self.limits.too_many(what, count)
        if why is not None:
            self._record(action, session.user, "(request)", AuditOutcome.REFUSED, "BadTooManyOperations", reason=why)
            raise ServiceError(ua.StatusCodes.BadTooManyOperations)

    def _record(self, action: str, user: User | None, node: str, outcome: AuditOutcome, status: str,
                old: object = None, new: object = None, reason: str = "", name: str | None = None,
                role: str | None = None, client: str | None = None) -> None:
        self.audit.record(AuditEntry(action=action, user=name if name is not None else user_label(user), node=node,
                                     outcome=outcome, status=status, old_value=old, new_value=new, reason=reason,
                                     role=role if role is not None else role_label(user),
                                     client=client if client is not None else client_label(user)))

    def _client(self, session: SessionView) -> str:
        return " ".join(x for x in (session.notes.get("client_uri", ""), _address(session.peer)) if x)

    async def on_create(self, session: SessionView, params: ua.CreateSessionParameters,
                        proceed: Callable[[ua.CreateSessionParameters], Awaitable[Any]]) -> Any:
        desc = params.ClientDescription
        session.notes["client_uri"] = (desc.ApplicationUri or "") if desc is not None else ""
        secured = self.channel_secured(session.peer) if self.channel_secured is not None else True
        token = CHANNEL_SECURED.set(secured)
        try:
            return await proceed(params)
        except SERVICE_REFUSALS as exc:
            code = ua.StatusCode(exc.code)
            self._record("login", None, "(session)", AuditOutcome.REFUSED, code.name, name="(unknown)",
                         role="", client=self._client(session), reason="client application certificate refused")
            raise
        finally:
            CHANNEL_SECURED.reset(token)

    def on_activate(self, session: SessionView, params: ua.ActivateSessionParameters,
                    proceed: Callable[[ua.ActivateSessionParameters], Any]) -> Any:
        token = params.UserIdentityToken
        kind = "anonymous"
        if isinstance(token, ua.UserNameIdentityToken):
            kind = "username"
        elif isinstance(token, ua.X509IdentityToken):
            kind = "certificate"
        attempt = LoginAttempt(token=kind, address=_address(session.peer),
                               client_uri=session.notes.get("client_uri", ""),
                               user_name=(token.UserName or "")[:256] if kind == "username" else "")
        reset = CURRENT_LOGIN.set(attempt)
        try:
            result = proceed(params)
        except SERVICE_REFUSALS as exc:
            code = ua.StatusCode(exc.code)
            self._record("login", None, "(session)", AuditOutcome.REFUSED, code.name,
                         name=attempt.user_name or kind, role="", client=self._client(session),
                         reason=attempt.refusal or f"{kind} identity token refused", new=kind)
            raise
        finally:
            CURRENT_LOGIN.reset(reset)
        self._record("login", session.user, "(session)", AuditOutcome.ACCEPTED, "Good", new=kind)
        self.sessions[session.session_id] = session
        return result

    async def on_close(self, session: SessionView, proceed: Callable[[], Awaitable[None]]) -> None:
        was_active = session.activated
        self.sessions.pop(session.session_id, None)
        await proceed()
        if was_active:
            self._record("logout", session.user, "(session)", AuditOutcome.ACCEPTED, "Good")

    async def on_call(self, session: SessionView, params: list[ua.CallMethodRequest],
                      proceed: Callable[[list[ua.CallMethodRequest]], Awaitable[list[ua.CallMethodResult]]],
                      ) -> list[ua.CallMethodResult]:
        user = session.user
        self._check_count(session, "call", "max_nodes_per_call", len(params))
        results: list[ua.CallMethodResult | None] = [None] * len(params)
        allowed: list[int] = []
        for i, req in enumerate(params):
            code, why = self._call_refusal(user, req)
            if why is None:
                allowed.append(i)
                continue
            results[i] = ua.CallMethodResult(StatusCode=ua.StatusCode(code))
            self._record("call", user, _node_text(req.MethodId), AuditOutcome.REFUSED, ua.StatusCode(code).name,
                         new=_args(req), reason=why)
        if allowed:
            caller = CURRENT_CALLER.set(user)
            try:
                done = await proceed([params[i] for i in allowed])
            finally:
                CURRENT_CALLER.reset(caller)
            for i, res in zip(allowed, done, strict=True):
                results[i] = res
                if params[i].MethodId.NamespaceIndex == self.access.namespace_index:
                    continue  # the twin's own methods audit themselves, with their reason (method_calls)
                good = res.StatusCode.is_good()
                self._record("call", user, _node_text(params[i].MethodId),
                             AuditOutcome.ACCEPTED if good else AuditOutcome.REFUSED, res.StatusCode.name,
                             new=_args(params[i]), reason="" if good else "the method refused the call")
        return [r for r in results if r is not None]

    def _call_refusal(self, user: User, req: ua.CallMethodRequest) -> tuple[int, str | None]:
        """``(status, reason)`` of a refused method call, ``(Good, None)`` when it may go on."""
        if not self.access.exists(req.MethodId):
            return ua.StatusCodes.BadMethodInvalid, "no such method"
        why = self.access.call_refusal(user, req.MethodId)
        if why is not None:
            return ua.StatusCodes.BadUserAccessDenied, why
        for arg in req.InputArguments or []:
            too_large = self.limits.value_too_large(getattr(arg, "Value", None))
            if too_large is not None:
                return ua.StatusCodes.BadEncodingLimitsExceeded, f"an argument of {too_large}"
        return ua.StatusCodes.Good, None

    async def on_history_read(self, session: SessionView, params: ua.HistoryReadParameters,
                              proceed: Callable[[ua.HistoryReadParameters], Awaitable[list[ua.HistoryReadResult]]],
                              ) -> list[ua.HistoryReadResult]:
        self._check_count(session, "history_read", "max_nodes_per_history_read", len(params.NodesToRead))
        details = params.HistoryReadDetails
        if isinstance(details, ua.ReadAtTimeDetails) and len(details.ReqTimes or []) > \
                self.limits.max_read_at_time_times:
            self._record("history_read", session.user, "(request)", AuditOutcome.REFUSED, "BadTooManyOperations",
                         reason=f"{len(details.ReqTimes)} ReadAtTime times, more than [security.limits] "
                                f"max_read_at_time_times = {self.limits.max_read_at_time_times}")
            return [ua.HistoryReadResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadTooManyOperations))
                    for _ in params.NodesToRead]
        why = self.access.history_refusal(session.user)
        if why is not None:
            for rv in params.NodesToRead:
                self._record("history_read", session.user, _node_text(rv.NodeId), AuditOutcome.REFUSED,
                             "BadUserAccessDenied", reason=why)
            return [ua.HistoryReadResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadUserAccessDenied))
                    for _ in params.NodesToRead]
        token = AUDIT_EVENTS_VISIBLE.set(self.sees_audit(session.user))
        try:
            return await proceed(params)
        finally:
            AUDIT_EVENTS_VISIBLE.reset(token)

    async def on_create_monitored_items(self, session: SessionView, params: ua.CreateMonitoredItemsParameters,
                                        proceed: Callable[[ua.CreateMonitoredItemsParameters], Awaitable[Any]],
                                        ) -> Any:
        self._check_count(session, "create_monitored_items", "max_monitored_items_per_call",
                          len(params.ItemsToCreate or []))
        return await proceed(params)

    async def on_read(self, session: SessionView, params: ua.ReadParameters,
                      proceed: Callable[[ua.ReadParameters], Awaitable[list[ua.DataValue]]]) -> list[ua.DataValue]:
        self._check_count(session, "read", "max_nodes_per_read", len(params.NodesToRead or []))
        results = await proceed(params)
        for i, rv in enumerate(params.NodesToRead):
            if rv.AttributeId in _USER_ATTRIBUTES and i < len(results) and results[i].StatusCode.is_good() \
                    or rv.AttributeId == ua.AttributeIds.UserRolePermissions:
                replaced = self._user_attribute(session.user, rv)
                if replaced is not None:
                    results[i] = replaced
        return results

    def _user_attribute(self, user: User, rv: ua.ReadValueId) -> ua.DataValue | None:
        access, node = self.access, rv.NodeId
        if not access.exists(node):
            return None
        if rv.AttributeId == ua.AttributeIds.UserRolePermissions:
            if node.NamespaceIndex != access.namespace_index:
                return None
            perms = access.user_role_permissions(node, user)
            return ua.DataValue(ua.Variant(perms, ua.VariantType.ExtensionObject))
        if rv.AttributeId == ua.AttributeIds.UserAccessLevel:
            level = self.nodes.read(node, ua.AttributeIds.AccessLevel)
            if level.Value is None or level.Value.Value is None:
                return None
            mask = int(level.Value.Value)
            probe = ua.WriteValue(NodeId=node, AttributeId=ua.AttributeIds.Value)
            if access.write_refusal(user, probe) is not None or access.write_role(node) is None:
                mask &= ~ua.AccessLevel.CurrentWrite.mask
            return ua.DataValue(ua.Variant(mask, ua.VariantType.Byte))
        if rv.AttributeId == ua.AttributeIds.UserExecutable:
            executable = self.nodes.read(node, ua.AttributeIds.Executable)
            if executable.Value is None:
                return None
            allowed = bool(executable.Value.Value) and access.call_refusal(user, node) is None
            return ua.DataValue(ua.Variant(allowed, ua.VariantType.Boolean))
        return None


_USER_ATTRIBUTES = {ua.AttributeIds.UserAccessLevel, ua.AttributeIds.UserExecutable}


def _node_text(node: ua.NodeId) -> str:
    return str(node.Identifier) if node.NamespaceIndex != 0 else f"i={node.Identifier}"


def _args(req: ua.CallMethodRequest) -> object:
    args = [a.Value for a in (req.InputArguments or [])]
    return args or None
