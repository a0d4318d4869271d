"""Wires the twin's security into an asyncua server (called from :class:`twin_server.server.TwinServer`).

``prepare`` (before the address space is built): data dir, audit store, PKI and server certificate, endpoints
(SecurityPolicy None only with ``[security] allow_none = true``), identity tokens, the user manager and the
service-level ruleset. ``protect`` (once the address space, write guard and control loops exist): the node
role table, RolePermissions attributes, the write-path role check, write auditing and the session hooks.
``started`` (after ``server.start``): AuditEvents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User

from plc_adapters.asyncua_seam import (
    address_space,
    channel_secured,
    install_event_filter,
    install_session_hooks,
    set_message_limit,
    set_user_manager,
)
from plc_adapters.tag_map import Direction
from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail
from twin_server.config import LineConfig
from twin_server.security.audit_events import AuditEventPublisher
from twin_server.security.audit_key import load_or_create_key
from twin_server.security.audit_refusals import RefusalAggregator
from twin_server.security.audit_store import AUDIT_DB, AuditStore
from twin_server.security.identity import TwinUserManager
from twin_server.security.lockout import LoginLockout
from twin_server.security.node_access import NodeAccess, is_internal, role_of
from twin_server.security.pki import ClientCertificateValidator, PkiPaths, ensure_server_certificate
from twin_server.security.roles import Role
from twin_server.security.sessions import NoNodeManagement, SessionHooks
from twin_server.security.users_file import USERS_FILE

log = logging.getLogger("linetwin.security")

OPERATOR_METHODS = {"StartBatch", "StopBatch", "Acknowledge", "Confirm", "AddComment"}
"""Methods an operator may call (by browse name, in the twin's namespace); any other twin method needs admin."""
ENGINEER_METHODS = {"ApplyParameterSet", "RollbackParameterSet"}
"""Methods an engineer may call (a unit's parameter set, twin_server/model_nodes.py)."""
VIEWER_METHODS = {"Forecast"}
"""Methods every role may call, viewer included (a what-if forecast changes nothing in the plant:
:mod:`twin_server.forecast_nodes`)."""

PKI_DIR = "pki"
SUPPRESSED_SUMMARY_S = 60.0
"""How often the audit log's suppressed lines are summed up in one line."""


def data_paths(security_dir: Path) -> tuple[Path, Path, PkiPaths, Path]:
    """``(security dir, users file, PKI, audit store)`` of a line's security folder (``DATA/security``)."""
    return security_dir, security_dir / USERS_FILE, PkiPaths(security_dir / PKI_DIR), security_dir / AUDIT_DB


class TwinSecurity:
    """Users, roles, PKI and the audit trail of one twin server."""

    def __init__(self, config: LineConfig, security_dir: Path) -> None:
        self.config = config
        self.settings = config.security
        self.data_dir, self.users_path, self.pki, self.audit_path = data_paths(security_dir)
        self.store: AuditStore | None = None
        self.audit = AuditTrail(value_chars=self.settings.audit_value_chars,
                                refusals=RefusalAggregator(burst=self.settings.audit_refusals_per_minute))
        self.users: TwinUserManager | None = None
        self.access: NodeAccess | None = None
        self._events: AuditEventPublisher | None = None
        self._summary: asyncio.Task[None] | None = None

    @property
    def endpoint_summary(self) -> str:
        policies = list(self.settings.policies) + (["None"] if self.settings.allow_none else [])
        return ", ".join(policies)

    async def prepare(self, server: Server, endpoint: str, application_uri: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.settings.resolved_audit_key_file(self.data_dir)
        self.store = AuditStore(self.audit_path, load_or_create_key(key_file), max_bytes=self.settings.audit_max_bytes,
                                segments=self.settings.audit_segments, key_file=key_file)
        self.audit.sinks.append(self.store)
        if self.settings.policies:
            host = urlparse(endpoint).hostname or "127.0.0.1"
            await ensure_server_certificate(self.pki, application_uri, host)
            await server.load_certificate(str(self.pki.certificate))
            await server.load_private_key(str(self.pki.private_key))
            server.set_certificate_validator(ClientCertificateValidator(self.pki))  # type: ignore[arg-type]
        server.set_security_policy(self.settings.policy_types(),
                                   permission_ruleset=NoNodeManagement(self.audit))  # type: ignore[arg-type]
        tokens: list[type] = [ua.UserNameIdentityToken, ua.X509IdentityToken]
        if self.settings.anonymous == "viewer":
            tokens.insert(0, ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        server.allow_remote_admin(False)
        set_message_limit(server, self.settings.limits.max_message_bytes)
        lockout = LoginLockout(max_failures=self.settings.max_failed_logins, lockout_s=self.settings.lockout_s,
                               throttle_after=self.settings.login_throttle_after,
                               throttle_s=self.settings.login_throttle_s,
                               throttle_max_s=self.settings.login_throttle_max_s)
        self.users = TwinUserManager(self.users_path, self.settings.anonymous == "viewer", lockout)
        set_user_manager(server, self.users)
        if self.settings.allow_none:
            log.warning("SecurityPolicy None endpoint enabled ([security] allow_none = true): traffic on it is "
                        "neither signed nor encrypted — for the demo only, not for production")
        if not self.users.users().exists():
            log.warning("no users file at %s: only anonymous (%s) access until `linetwin user add`",
                        self.users_path, self.settings.anonymous)
        self.audit.record(AuditEntry(action="config_load", user="server", node=self.config.source,
                                     outcome=AuditOutcome.ACCEPTED, role="internal",
                                     new_value={"line": self.config.name, "endpoints": self.endpoint_summary,
                                                "anonymous": self.settings.anonymous},
                                     reason=f"data dir {self.data_dir}"))

    async def protect(self, server: Server, namespace_index: int, tag_nodes: dict[ua.NodeId, Any],
                      guard: Any) -> None:
        """Register client-writable nodes and operator methods, publish RolePermissions, hook writes and
        sessions. ``tag_nodes``: node → TagNode; ``guard``: the GuardedAttributeService (its ``handlers``)."""
        nodes = address_space(server)
        access = NodeAccess(nodes, namespace_index)
        for node_id, tag_node in tag_nodes.items():
            if tag_node.tag.direction is Direction.COMMANDED:
                access.allow_write(node_id, Role.OPERATOR)
        write_roles = getattr(guard, "write_roles", {})
        for node_id in getattr(guard, "handlers", {}):
            access.allow_write(node_id, Role.parse(write_roles[node_id]) if node_id in write_roles else Role.OPERATOR)
        for node_id in nodes.node_ids():
            if node_id.NamespaceIndex != namespace_index:
                continue
            if nodes.attribute(node_id, ua.AttributeIds.NodeClass) != ua.NodeClass.Method:
                continue
            name = nodes.attribute(node_id, ua.AttributeIds.BrowseName).Name
            role = (Role.VIEWER if name in VIEWER_METHODS else Role.OPERATOR if name in OPERATOR_METHODS
                    else Role.ENGINEER if name in ENGINEER_METHODS else Role.ADMIN)
            access.allow_call(node_id, role)
        for method in (ua.ObjectIds.AcknowledgeableConditionType_Acknowledge,
                       ua.ObjectIds.AcknowledgeableConditionType_Confirm):
            access.allow_call(ua.NodeId(method), Role.OPERATOR)
        count = access.publish_role_permissions()
        self.access = access
        guard.authorize = self.authorize_write
        guard.audit = self.audit  # the guard audits every decision (old/new value, reason), role refusals included
        hooks = SessionHooks(nodes, access, self.audit, lambda peer: channel_secured(server, peer),
                             limits=self.settings.limits, audit_events_role=Role.parse(self.settings.audit_events_role))
        install_session_hooks(server, hooks)
        install_event_filter(server, hooks.admit_event)
        if hasattr(guard, "limits"):
            guard.limits = self.settings.limits
        log.info("roles: %d writable nodes, %d methods, RolePermissions on %d nodes", len(access.write_roles),
                 len(access.call_roles), count)

    async def started(self, server: Server) -> None:
        self._events = AuditEventPublisher(server)
        await self._events.start()
        self.audit.sinks.append(self._events)
        self._summary = asyncio.create_task(self._summarise_suppressed(), name="linetwin-audit-log-summary")

    async def _summarise_suppressed(self) -> None:
        """Every minute, one log line summing up the audit log lines the rate limit suppressed."""
        while True:
            await asyncio.sleep(SUPPRESSED_SUMMARY_S)
            self.audit.log_suppressed()

    async def close(self) -> None:
        self.audit.flush()  # summaries of refusals still being counted
        if self._summary is not None:
            self._summary.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._summary
            self._summary = None
            self.audit.log_suppressed()
        if self._events is not None:
            await self._events.stop()
            self.audit.sinks.remove(self._events)
            self._events = None
        if self.store is not None:
            self.audit.sinks.remove(self.store)
            self.store.close()
            self.store = None

    # --- write path ----------------------------------------------------------------------------------------

    @staticmethod
    def operator_or_above(user: User | None) -> int | None:
        """Role check for operator actions outside the write path (alarm Acknowledge / Confirm):
        ``BadUserAccessDenied`` below operator, else None."""
        if user is not None and is_internal(user):
            return None
        role = (role_of(user) if user is not None else None) or Role.VIEWER
        return None if role >= Role.OPERATOR else ua.StatusCodes.BadUserAccessDenied

    def authorize_write(self, user: User, node_id: ua.NodeId,
                        attribute_id: int) -> tuple[ua.StatusCode, str] | None:
        """The role check the write guard asks first: a Bad status when ``user`` may not write the node.
        Attributes other than Value are left to the guard (it refuses them all, with the truthful code)."""
        assert self.access is not None
        if attribute_id != ua.AttributeIds.Value:
            return None
        refusal = self.access.write_refusal(user, ua.WriteValue(NodeId=node_id, AttributeId=attribute_id))
        return None if refusal is None else (ua.StatusCode(refusal[0]), refusal[1])

