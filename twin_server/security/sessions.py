"""Hooks into asyncua's sessions: logins, logouts, Call, HistoryRead, node management and per-user attributes.

asyncua's ``InternalSession`` calls its method service without the user and has no audit. Every external
session is wrapped when it is created (``iserver.create_session``):

- ``create_session``: a client certificate refused by the validator is audited (``login``, refused);
- ``activate_session``: the identity token is checked by :class:`~.identity.TwinUserManager`; success and
  failure are audited with user, role, client application URI and address, and the reason of a refusal;
- ``close_session``: ``logout`` is audited;
- ``call``: each method's role is checked (:class:`~.node_access.NodeAccess`); refused → BadUserAccessDenied;
  every call is audited with its arguments and status;
- ``history_read``: ``viewer`` and up;
- ``read``: ``UserRolePermissions``, ``UserAccessLevel`` and ``UserExecutable`` are answered for the user;
- node management (AddNodes, DeleteNodes, AddReferences, DeleteReferences) is refused for everyone, already at
  the service level (:class:`NoNodeManagement`), and audited.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import PermissionRuleset, User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession, SessionState

from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail
from twin_server.security.identity import CURRENT_LOGIN, LoginAttempt, TwinUser
from twin_server.security.node_access import NodeAccess, is_internal, role_of
from twin_server.security.pki import CHANNEL_SECURED

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


class SessionHooks:
    """Installs the wrappers on every external session of ``iserver``."""

    def __init__(self, iserver: InternalServer, access: NodeAccess, audit: AuditTrail,
                 channel_secured: Callable[[Any], bool] | None = None) -> None:
        self.iserver = iserver
        self.channel_secured = channel_secured
        self.access = access
        self.audit = audit

    def install(self) -> None:
        original = self.iserver.create_session

        def create_session(name: str, user: User = User(role=UserRole.Anonymous),  # noqa: B008 (asyncua's default)
                           external: bool = False) -> InternalSession:
            session = original(name, user=user, external=external)
            if external:
                self._wrap(session)
            return session

        self.iserver.create_session = create_session  # type: ignore[method-assign]

    def _record(self, action: str, user: User | None, node: str, outcome: AuditOutcome, status: str,
                old: object = None, new: object = None, reason: str = "", name: str | None = None,
                role: str | None = None, client: str | None = None) -> None:
        self.audit.record(AuditEntry(action=action, user=name if name is not None else user_label(user), node=node,
                                     outcome=outcome, status=status, old_value=old, new_value=new, reason=reason,
                                     role=role if role is not None else role_label(user),
                                     client=client if client is not None else client_label(user)))

    def _wrap(self, session: InternalSession) -> None:  # noqa: C901 - one closure per wrapped service
        hooks = self
        client_uri = {"uri": ""}
        orig_create = session.create_session
        orig_activate = session.activate_session
        orig_close = session.close_session
        orig_call = session.call
        orig_history = session.history_read
        orig_read = session.read

        def client() -> str:
            return " ".join(x for x in (client_uri["uri"], _address(session.name)) if x)

        async def create_session(params: ua.CreateSessionParameters, sockname: Any = None) -> Any:
            desc = params.ClientDescription
            client_uri["uri"] = (desc.ApplicationUri or "") if desc is not None else ""
            secured = hooks.channel_secured(session.name) if hooks.channel_secured is not None else True
            token = CHANNEL_SECURED.set(secured)
            try:
                return await orig_create(params, sockname=sockname)
            except (ServiceError, ua.UaStatusCodeError) as exc:
                code = ua.StatusCode(exc.code)
                hooks._record("login", None, "(session)", AuditOutcome.REFUSED, code.name, name="(unknown)",
                              role="", client=client(), reason="client application certificate refused")
                raise
            finally:
                CHANNEL_SECURED.reset(token)

        def activate_session(params: ua.ActivateSessionParameters, peer_certificate: Any) -> Any:
            token = params.UserIdentityToken
            kind = "anonymous"
            if isinstance(token, ua.UserNameIdentityToken):
                kind = "username"
            elif isinstance(token, ua.X509IdentityToken):
                kind = "certificate"
            attempt = LoginAttempt(token=kind, address=_address(session.name), client_uri=client_uri["uri"],
                                   user_name=(token.UserName or "")[:256] if kind == "username" else "")
            reset = CURRENT_LOGIN.set(attempt)
            try:
                result = orig_activate(params, peer_certificate)
            except (ServiceError, ua.UaStatusCodeError) as exc:
                code = ua.StatusCode(exc.code)
                hooks._record("login", None, "(session)", AuditOutcome.REFUSED, code.name,
                              name=attempt.user_name or kind, role="", client=client(),
                              reason=attempt.refusal or f"{kind} identity token refused",
                              new=kind)
                raise
            finally:
                CURRENT_LOGIN.reset(reset)
            hooks._record("login", session.user, "(session)", AuditOutcome.ACCEPTED, "Good", new=kind)
            return result

        async def close_session(delete_subs: bool = True) -> None:
            was_active = session.state == SessionState.Activated
            await orig_close(delete_subs)
            if was_active:
                hooks._record("logout", session.user, "(session)", AuditOutcome.ACCEPTED, "Good")

        async def call(params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
            user = session.user
            results: list[ua.CallMethodResult | None] = [None] * len(params)
            allowed: list[int] = []
            for i, req in enumerate(params):
                why = hooks.access.call_refusal(user, req.MethodId)
                if why is None:
                    allowed.append(i)
                    continue
                results[i] = ua.CallMethodResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadUserAccessDenied))
                hooks._record("call", user, _node_text(req.MethodId), AuditOutcome.REFUSED, "BadUserAccessDenied",
                              new=_args(req), reason=why)
            if allowed:
                caller = CURRENT_CALLER.set(user)
                try:
                    done = await orig_call([params[i] for i in allowed])
                finally:
                    CURRENT_CALLER.reset(caller)
                for i, res in zip(allowed, done, strict=True):
                    results[i] = res
                    if params[i].MethodId.NamespaceIndex == hooks.access.namespace_index:
                        continue  # the twin's own methods audit themselves, with their reason (method_calls)
                    good = res.StatusCode.is_good()
                    hooks._record("call", user, _node_text(params[i].MethodId),
                                  AuditOutcome.ACCEPTED if good else AuditOutcome.REFUSED, res.StatusCode.name,
                                  new=_args(params[i]), reason="" if good else "the method refused the call")
            return [r for r in results if r is not None]

        async def history_read(params: ua.HistoryReadParameters) -> list[ua.HistoryReadResult]:
            why = hooks.access.history_refusal(session.user)
            if why is not None:
                for rv in params.NodesToRead:
                    hooks._record("history_read", session.user, _node_text(rv.NodeId), AuditOutcome.REFUSED,
                                  "BadUserAccessDenied", reason=why)
                return [ua.HistoryReadResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadUserAccessDenied))
                        for _ in params.NodesToRead]
            return await orig_history(params)

        async def read(params: ua.ReadParameters) -> list[ua.DataValue]:
            results = await orig_read(params)
            for i, rv in enumerate(params.NodesToRead):
                if rv.AttributeId in _USER_ATTRIBUTES and i < len(results) and results[i].StatusCode.is_good() \
                        or rv.AttributeId == ua.AttributeIds.UserRolePermissions:
                    replaced = hooks._user_attribute(session.user, rv)
                    if replaced is not None:
                        results[i] = replaced
            return results

        session.create_session = create_session  # type: ignore[method-assign]
        session.activate_session = activate_session  # type: ignore[method-assign]
        session.close_session = close_session  # type: ignore[method-assign]
        session.call = call  # type: ignore[method-assign]
        session.history_read = history_read  # type: ignore[method-assign]
        session.read = read  # type: ignore[method-assign]

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
            level = self.iserver.aspace.read_attribute_value(node, ua.AttributeIds.AccessLevel)
            if level.Value is None or level.Value.Value is None:
                return None
            mask = int(level.Value.Value)
            probe = ua.WriteValue(NodeId=node, AttributeId=ua.AttributeIds.Value)
            if access.write_refusal(user, probe) is not None or access.write_role(node) is None:
                mask &= ~ua.AccessLevel.CurrentWrite.mask
            return ua.DataValue(ua.Variant(mask, ua.VariantType.Byte))
        if rv.AttributeId == ua.AttributeIds.UserExecutable:
            executable = self.iserver.aspace.read_attribute_value(node, ua.AttributeIds.Executable)
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
