"""Contract tests of the asyncua seam (plc_adapters.asyncua_seam): one per hook, each through a real asyncua server
and client over loopback — the twin's hooks and the virtual OPC UA PLC's. Each fails when asyncua stops calling the
hooked function or changes what it passes, so a new asyncua version that would silently bypass a role check or the
write guard is caught here first. See the README, "Moving the asyncua / pymodbus pin".

The tests share one server (module scope: starting an asyncua server is most of a test's time) with every hook
installed once; each test looks only at what its own sessions did."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import gc
import logging
import re
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import pytest_asyncio
from asyncua import Client, Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from plc_adapters import asyncua_seam as seam
from plc_adapters.long_lived_objects import collector_paused
from tests.conftest import free_tcp_port, wait_until
from twin_server.audit import AuditEntry, AuditTrail
from twin_server.security.sessions import NoNodeManagement

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "urn:linetwin:test:seam"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MESSAGE_LIMIT = 256 * 1024


@dataclass
class Logins:
    """The identity hook: a user manager that records every attempt; ``viewer`` / ``operator`` log in with the
    password ``pw``, anyone else is refused."""

    attempts: list[tuple[Any, str | None, str | None]] = field(default_factory=list)

    def get_user(self, asyncua_server: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        self.attempts.append((asyncua_server, username, password))
        if username in ("viewer", "operator") and password == "pw":
            return User(role=UserRole.User, name=username)
        return None


class Recorder(seam.SessionServiceHooks):
    """Session hooks that record what reaches them (session id, step, detail), refuse Calls and HistoryReads by
    viewers and answer UserAccessLevel 0."""

    def __init__(self) -> None:
        self.events: list[tuple[ua.NodeId, str, Any]] = []

    def of(self, session_id: ua.NodeId) -> list[tuple[str, Any]]:
        return [(step, detail) for sid, step, detail in self.events if sid == session_id]

    def session_of(self, application_uri: str) -> ua.NodeId:
        return next(sid for sid, step, detail in self.events if step == "create" and detail == application_uri)

    async def on_create(self, session: seam.SessionView, params: ua.CreateSessionParameters, proceed: Any) -> Any:
        self.events.append((session.session_id, "create", params.ClientDescription.ApplicationUri))
        return await proceed(params)

    def on_activate(self, session: seam.SessionView, params: ua.ActivateSessionParameters, proceed: Any) -> Any:
        result = proceed(params)
        self.events.append((session.session_id, "activate", session.user.name))
        return result

    async def on_close(self, session: seam.SessionView, proceed: Any) -> None:
        self.events.append((session.session_id, "close", session.activated))
        await proceed()

    async def on_call(self, session: seam.SessionView, params: list[ua.CallMethodRequest],
                      proceed: Any) -> list[ua.CallMethodResult]:
        self.events.append((session.session_id, "call", session.user.name))
        if session.user.name == "viewer":
            return [ua.CallMethodResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)) for _ in params]
        return await proceed(params)

    async def on_history_read(self, session: seam.SessionView, params: ua.HistoryReadParameters,
                              proceed: Any) -> list[ua.HistoryReadResult]:
        self.events.append((session.session_id, "history_read", session.user.name))
        if session.user.name == "viewer":
            return [ua.HistoryReadResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadUserAccessDenied))
                    for _ in params.NodesToRead]
        return await proceed(params)

    async def on_create_monitored_items(self, session: seam.SessionView, params: ua.CreateMonitoredItemsParameters,
                                        proceed: Any) -> Any:
        self.events.append((session.session_id, "monitored_items", len(params.ItemsToCreate)))
        return await proceed(params)

    def user_of(self, session_id: ua.NodeId) -> str | None:
        return next((detail for step, detail in reversed(self.of(session_id)) if step == "activate"), None)

    async def on_read(self, session: seam.SessionView, params: ua.ReadParameters, proceed: Any) -> list[ua.DataValue]:
        results = await proceed(params)
        for i, rv in enumerate(params.NodesToRead):
            if rv.AttributeId == ua.AttributeIds.UserAccessLevel:
                results[i] = ua.DataValue(ua.Variant(0, ua.VariantType.Byte))
        return results


@dataclass
class Bench:
    server: Server
    url: str
    idx: int
    tank: ua.NodeId
    level: ua.NodeId
    alarm_limit: ua.NodeId
    method: ua.NodeId
    logins: Logins
    sessions: Recorder
    writes: list[tuple[list[ua.NodeId], str | None]] = field(default_factory=list)
    history_asked: list[ua.HistoryReadParameters] = field(default_factory=list)
    audited: list[AuditEntry] = field(default_factory=list)
    peers: list[tuple[Any, ua.NodeId]] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bench() -> AsyncIterator[Bench]:
    """A real asyncua server with every seam hook installed: writes recorded, refused to all but the operator,
    whose writes go on to asyncua's own write; history answered with three values, sessions recorded, node
    management refused and audited."""
    server = Server()
    await seam.init_server(server)
    url = f"opc.tcp://127.0.0.1:{free_tcp_port()}/seam/"
    server.set_endpoint(url)
    audited: list[AuditEntry] = []
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity],
                               permission_ruleset=NoNodeManagement(AuditTrail(sinks=[audited.append])))
    logins = Logins()
    seam.set_user_manager(server, logins)
    idx = await server.register_namespace(NS)
    tank = await server.nodes.objects.add_object(ua.NodeId("tank", idx), ua.QualifiedName("tank", idx))
    level = await tank.add_variable(ua.NodeId("tank.level", idx), ua.QualifiedName("level", idx), 1.5)
    await level.set_writable()
    alarm_limit = await tank.add_variable(ua.NodeId("tank.alarm_limit", idx), ua.QualifiedName("alarm_limit", idx),
                                          9.0)  # read-only: asyncua's own write refuses it

    async def drain(parent: ua.NodeId) -> list[ua.Variant]:
        return [ua.Variant("drained", ua.VariantType.String)]

    method = await tank.add_method(ua.NodeId("tank.Drain", idx), ua.QualifiedName("Drain", idx), drain, [],
                                   [ua.VariantType.String])
    b = Bench(server, url, idx, tank.nodeid, level.nodeid, alarm_limit.nodeid, method.nodeid, logins, Recorder(),
              audited=audited)

    async def refuse_viewers(params: ua.WriteParameters, user: User) -> list[ua.StatusCode]:
        b.writes.append(([wv.NodeId for wv in params.NodesToWrite], user.name))
        if user.name == "operator":
            return await asyncua_write(params, user)
        return [ua.StatusCode(ua.StatusCodes.BadUserAccessDenied) for _ in params.NodesToWrite]

    async def three_values(params: ua.HistoryReadParameters) -> list[ua.HistoryReadResult]:
        b.history_asked.append(params)
        values = [ua.DataValue(ua.Variant(float(i), ua.VariantType.Double), SourceTimestamp=T0 + timedelta(seconds=i),
                               ServerTimestamp=T0 + timedelta(seconds=i)) for i in range(3)]
        return [ua.HistoryReadResult(HistoryData=ua.HistoryData(DataValues=values)) for _ in params.NodesToRead]

    class Peers(seam.SessionServiceHooks):
        async def on_create(self, session: seam.SessionView, params: ua.CreateSessionParameters,
                            proceed: Any) -> Any:
            b.peers.append((session.peer, session.session_id))
            return await proceed(params)

    asyncua_write = seam.install_write_hook(server, refuse_viewers)
    seam.install_history_reader(server, three_values)
    seam.install_session_hooks(server, b.sessions)
    seam.install_session_hooks(server, Peers())

    def operators_only_for_secrets(event: Any, session_id: ua.NodeId) -> bool:
        message = getattr(event, "Message", None)
        secret = message is not None and str(message.Text or "").startswith("secret")
        return not secret or b.sessions.user_of(session_id) == "operator"

    seam.install_event_filter(server, operators_only_for_secrets)
    seam.set_message_limit(server, MESSAGE_LIMIT)
    seam.release_subscription_loggers(server)
    async with server:
        yield b


def _client(bench: Bench, user: str, application_uri: str) -> Client:
    client = Client(bench.url)
    client.application_uri = application_uri
    client.set_user(user)
    client.set_password("pw")
    return client


async def test_hooked_asyncua_signatures_are_those_the_seam_was_written_for():
    """A change of any hooked signature is named here (hook, asyncua's new parameters, the expected ones)."""
    assert seam.signature_drift() == []
    assert seam.parameter_list(lambda a, b=1, *c, **d: None) == "(a, b=<default>, *c, **d)"


async def test_a_write_by_a_viewer_is_refused_by_the_write_hook_and_the_server_own_writes_bypass_it(bench: Bench):
    """Write hook (AttributeService.write): a client's write reaches the hook with its session's user; the hook's
    BadUserAccessDenied reaches the client and nothing changes; the server's own writes never reach the hook."""
    await bench.server.get_node(bench.level).write_value(2.5)  # the server's own write: not a client's
    assert bench.writes == []
    async with _client(bench, "viewer", "urn:test:write") as client:
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.get_node(bench.level).write_value(9.0)
        assert await client.get_node(bench.level).read_value() == 2.5
    assert bench.writes == [([bench.level], "viewer")]


async def test_a_write_the_hook_hands_on_is_taken_by_asyncua_own_write_with_its_access_checks(bench: Bench):
    """Write hook, asyncua's own write (returned by ``install_write_hook``; the virtual PLC hands on what it does not
    refuse): the value reaches the node, and asyncua's access-level check still refuses a read-only node."""
    async with _client(bench, "operator", "urn:test:write-on") as client:
        await client.get_node(bench.level).write_value(6.5)
        assert await client.get_node(bench.level).read_value() == 6.5
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):  # asyncua's answer to a node without CurrentWrite
            await client.get_node(bench.alarm_limit).write_value(1.0)
        assert await client.get_node(bench.alarm_limit).read_value() == 9.0
    assert [(nodes, user) for nodes, user in bench.writes if user == "operator"] == [
        ([bench.level], "operator"), ([bench.alarm_limit], "operator")]


async def test_a_published_value_keeps_its_value_beside_a_bad_status_for_readers_and_subscribers(bench: Bench):
    """Address space, publish (the node's Value attribute and its data-change callbacks; the virtual PLC's failed
    sensor): a value published with Bad_SensorFailure keeps its value for a client's Read and subscription, where
    asyncua's ``write_attribute_value`` would null it; a missing node is said, not raised."""
    nodes = seam.address_space(bench.server)
    node = ua.NodeId("tank.sensor", bench.idx)
    tank = bench.server.get_node(bench.tank)
    await tank.add_variable(node, ua.QualifiedName("sensor", bench.idx), 1.0)
    assert nodes.publish(ua.NodeId("nowhere", bench.idx), ua.DataValue(ua.Variant(1.0))) is None
    seen: list[ua.DataValue] = []

    class Handler:
        def datachange_notification(self, node: Any, value: float, data: Any) -> None:
            seen.append(data.monitored_item.Value)

    held = ua.DataValue(ua.Variant(7.25, ua.VariantType.Double),
                        StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure), SourceTimestamp=T0)
    async with _client(bench, "viewer", "urn:test:publish") as client:
        subscription = await client.create_subscription(20, Handler())
        await subscription.subscribe_data_change(client.get_node(node))
        await wait_until(lambda: len(seen) == 1, 10.0, what="the initial value")
        await asyncio.gather(*(nodes.publish(node, held) or []))
        await wait_until(lambda: len(seen) == 2, 10.0, what="the published value at the subscriber")
        read = await client.get_node(node).read_data_value(raise_on_bad_status=False)
    for got in (seen[1], read):
        assert (got.Value.Value, got.StatusCode.value, got.SourceTimestamp) == (7.25, ua.StatusCodes.BadSensorFailure,
                                                                              T0)


async def test_closing_client_sessions_ends_them_as_a_timeout_does_and_the_connection_stays(bench: Bench):
    """Session expiry (each connection's session, InternalSession.close_session; the virtual PLC's expired
    sessions): a client's session ends (the session hooks see it close), its next request on the same connection
    is refused (asyncua answers a request without a session BadUserAccessDenied), and the client can open a new
    session on the server."""
    client = _client(bench, "viewer", "urn:test:expiry")
    await client.connect()
    try:
        assert await client.get_node(bench.level).read_value() is not None
        assert await seam.close_client_sessions(bench.server) == 1
        assert ("close", True) in bench.sessions.of(bench.sessions.session_of("urn:test:expiry"))
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.get_node(bench.level).read_value()
    finally:
        with contextlib.suppress(ua.UaError, ConnectionError, TimeoutError):
            await client.disconnect()
    async with _client(bench, "viewer", "urn:test:expiry-after") as again:
        assert await again.get_node(bench.level).read_value() is not None


async def test_the_listening_port_is_the_one_the_server_listens_on(bench: Bench):
    """Listening port (the binary server's port; the virtual PLC binds port 0): the port clients reach; an error
    before the server is started."""
    assert seam.listening_port(bench.server) == urlparse(bench.url).port
    with pytest.raises(RuntimeError, match="not started"):
        seam.listening_port(Server())


async def test_history_read_goes_through_our_history_reader(bench: Bench):
    """History hook (HistoryManager.read_history): a client's HistoryRead reaches our reader, its answer the
    client; asyncua's own history storage refuses to historize."""
    with pytest.raises(ua.UaError, match="historizes nodes from the line config"):
        await bench.server.historize_node_data_change(bench.server.get_node(bench.level))
    async with _client(bench, "operator", "urn:test:history") as client:
        got = await client.get_node(bench.level).read_raw_history(T0, T0 + timedelta(minutes=1))
    assert [dv.Value.Value for dv in got] == [0.0, 1.0, 2.0]
    assert [p.NodesToRead[0].NodeId for p in bench.history_asked] == [bench.level]
    assert isinstance(bench.history_asked[0].HistoryReadDetails, ua.ReadRawModifiedDetails)


async def test_a_login_attempt_reaches_the_identity_hook_and_its_refusal_refuses_the_session(bench: Bench):
    """Identity hook (UserManager.get_user): every ActivateSession asks our user manager with the token's user
    name and password; ``None`` refuses the login."""
    before = len(bench.logins.attempts)
    async with _client(bench, "operator", "urn:test:login"):
        pass
    stranger = Client(bench.url)
    stranger.set_user("stranger")
    stranger.set_password("wrong")
    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
        async with stranger:
            pass
    assert [(name, password) for _, name, password in bench.logins.attempts[before:]] == [("operator", "pw"),
                                                                                       ("stranger", "wrong")]


async def test_session_create_activate_and_close_reach_the_session_hooks(bench: Bench):
    """Session hooks (InternalServer.create_session; the session's create/activate/close): each step of a
    client's session passes through our hooks, with the client's description and the logged-in user."""
    async with _client(bench, "operator", "urn:test:session"):
        pass
    session = bench.sessions.session_of("urn:test:session")
    await wait_until(lambda: ("close", True) in bench.sessions.of(session), 10.0, what="the hook to see the close")
    steps = bench.sessions.of(session)
    assert steps[:3] == [("create", "urn:test:session"), ("activate", "operator"), ("close", True)]
    assert set(steps[3:]) <= {("close", False)}  # asyncua closes again when the connection goes


async def test_a_call_by_an_unauthorised_role_is_refused_by_the_call_hook(bench: Bench):
    """Call hook (the session's call): a viewer's Call is refused with BadUserAccessDenied before the method runs;
    an operator's runs."""
    async with _client(bench, "viewer", "urn:test:call-viewer") as client:
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.get_node(bench.tank).call_method(bench.method)
    async with _client(bench, "operator", "urn:test:call-operator") as client:
        assert await client.get_node(bench.tank).call_method(bench.method) == "drained"
    assert ("call", "viewer") in bench.sessions.of(bench.sessions.session_of("urn:test:call-viewer"))
    assert ("call", "operator") in bench.sessions.of(bench.sessions.session_of("urn:test:call-operator"))


async def test_history_read_and_read_of_a_client_pass_through_the_session_hooks(bench: Bench):
    """HistoryRead and Read hooks (the session's history_read / read): the history hook's refusal of a viewer
    reaches the client before our reader is asked; the read hook answers UserAccessLevel for the user."""
    asked = len(bench.history_asked)
    async with _client(bench, "viewer", "urn:test:read") as client:
        node = client.get_node(bench.level)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await node.read_raw_history(T0, T0 + timedelta(minutes=1))
        assert (await node.read_attribute(ua.AttributeIds.UserAccessLevel)).Value.Value == 0
        level = (await node.read_attribute(ua.AttributeIds.AccessLevel)).Value.Value
        assert level & ua.AccessLevel.CurrentWrite.mask
    assert ("history_read", "viewer") in bench.sessions.of(bench.sessions.session_of("urn:test:read"))
    assert len(bench.history_asked) == asked


async def test_node_management_is_refused_through_the_permission_ruleset(bench: Bench):
    """Node management (PermissionRuleset.check_validity): a client's AddNodes is refused with
    BadUserAccessDenied and audited; the twin still builds its space through the internal session."""
    async with _client(bench, "operator", "urn:test:add-nodes") as client:
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.nodes.objects.add_folder(ua.NodeId("intruder", bench.idx), "intruder")
    item = ua.AddNodesItem(RequestedNewNodeId=ua.NodeId("tank.note", bench.idx),
                           BrowseName=ua.QualifiedName("note", bench.idx), NodeClass=ua.NodeClass.Variable,
                           ParentNodeId=bench.tank, ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasComponent),
                           TypeDefinition=ua.NodeId(ua.ObjectIds.BaseDataVariableType))
    item.NodeAttributes = ua.VariableAttributes(DisplayName=ua.LocalizedText("note"),
                                                DataType=ua.NodeId(ua.ObjectIds.String),
                                                Value=ua.Variant("", ua.VariantType.String))
    (result,) = await seam.add_nodes(bench.server, [item])
    assert result.StatusCode.is_good()
    ref = ua.AddReferencesItem(SourceNodeId=bench.level, ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasProperty),
                               IsForward=True, TargetNodeId=ua.NodeId("tank.note", bench.idx),
                               TargetNodeClass=ua.NodeClass.Variable)
    assert all(r.is_good() for r in await seam.add_references(bench.server, [ref]))
    nodes = seam.address_space(bench.server)
    assert nodes.exists(ua.NodeId("tank.note", bench.idx))
    assert not nodes.exists(ua.NodeId("intruder", bench.idx))
    assert [(e.action, e.status) for e in bench.audited] == [("add_nodes", "BadUserAccessDenied")]


async def test_address_space_writes_reach_subscribers_and_set_attributes_are_read_by_clients(bench: Bench):
    """The address space (AddressSpace.read/write_attribute_value, the node's attributes): the twin's direct
    writes notify a client's subscription; an attribute the twin adds is readable by clients."""
    nodes = seam.address_space(bench.server)
    assert bench.level in nodes.node_ids()
    assert nodes.attribute(bench.level, ua.AttributeIds.NodeClass) == ua.NodeClass.Variable
    assert nodes.attribute(ua.NodeId("nowhere", bench.idx), ua.AttributeIds.NodeClass) is None
    perms = [ua.RolePermissionType(RoleId=ua.NodeId(ua.ObjectIds.WellKnownRole_Observer),
                                   Permissions=ua.PermissionType.Browse)]
    nodes.set_attribute(bench.level, ua.AttributeIds.RolePermissions,
                        ua.DataValue(ua.Variant(perms, ua.VariantType.ExtensionObject)))
    await nodes.write(bench.level, ua.AttributeIds.Value, ua.DataValue(ua.Variant(3.0, ua.VariantType.Double)))
    seen: list[float] = []

    class Handler:
        def datachange_notification(self, node: Any, value: float, data: Any) -> None:
            seen.append(value)

    async with _client(bench, "viewer", "urn:test:address-space") as client:
        node = client.get_node(bench.level)
        read_back = (await node.read_attribute(ua.AttributeIds.RolePermissions)).Value.Value
        assert [p.RoleId for p in read_back] == [perms[0].RoleId]
        subscription = await client.create_subscription(20, Handler())
        await subscription.subscribe_data_change(node)
        await wait_until(lambda: 3.0 in seen, 10.0, what="the initial value")
        status = await nodes.write(bench.level, ua.AttributeIds.Value,
                                   ua.DataValue(ua.Variant(4.0, ua.VariantType.Double)))
        assert status.is_good()
        await wait_until(lambda: 4.0 in seen, 10.0, what="the twin's direct write at the subscriber")
    assert nodes.read(bench.level, ua.AttributeIds.Value).Value.Value == 4.0
    assert seam.internal_user(bench.server).role is UserRole.Admin


async def test_event_subscriptions_are_found_and_triggered_and_the_channel_security_is_known(bench: Bench):
    """ConditionRefresh's view of a subscription (its event monitored items, the owning session) and the
    secure channel of a session's connection (SecurityPolicy None: not secured)."""
    events: list[Any] = []

    class Handler:
        def event_notification(self, event: Any) -> None:
            events.append(event)

    async with _client(bench, "viewer", "urn:test:events") as client:
        subscription = await client.create_subscription(20, Handler())
        await subscription.subscribe_events(client.nodes.server)
        session_id = bench.sessions.session_of("urn:test:events")
        peer = next(p for p, sid in bench.peers if sid == session_id)
        assert seam.channel_secured(bench.server, peer) is False
        assert seam.channel_secured(bench.server, ("192.0.2.1", 1)) is True  # no such connection
        found = seam.event_subscription(bench.server, subscription.subscription_id)
        assert found is not None and found.session_id == session_id
        assert [node for node, _ in found.items] == [ua.NodeId(ua.ObjectIds.Server)]
        assert seam.event_subscription(bench.server, 999_999) is None
        generator = await bench.server.get_event_generator()
        generator.event.Message = ua.LocalizedText("to one item")
        await found.trigger(generator.event, found.items[0][1])
        await wait_until(lambda: any(e.Message.Text == "to one item" for e in events), 10.0, what="the event")
        generator.event.Message = ua.LocalizedText("to every subscriber")
        await seam.trigger_event(bench.server, generator.event)
        await wait_until(lambda: any(e.Message.Text == "to every subscriber" for e in events), 10.0,
                         what="the broadcast event")


async def test_the_event_filter_decides_which_subscriptions_get_a_broadcast_event(bench: Bench):
    """Event filter (SubscriptionService.trigger_event): an event sent to every subscription reaches only the
    subscriptions of sessions the filter admits (here: "secret…" events only to the operator); others reach all."""
    got: dict[str, list[str]] = {"viewer": [], "operator": []}

    def handler(user: str) -> Any:
        class Handler:
            def event_notification(self, event: Any) -> None:
                got[user].append(event.Message.Text)
        return Handler()

    async with _client(bench, "viewer", "urn:test:filter-viewer") as viewer, \
            _client(bench, "operator", "urn:test:filter-operator") as operator:
        for user, client in (("viewer", viewer), ("operator", operator)):
            subscription = await client.create_subscription(20, handler(user))
            await subscription.subscribe_events(client.nodes.server)
        generator = await bench.server.get_event_generator()
        generator.event.Message = ua.LocalizedText("secret: who logged in")
        await seam.trigger_event(bench.server, generator.event)
        generator.event.Message = ua.LocalizedText("public: tank level high")
        await seam.trigger_event(bench.server, generator.event)
        await wait_until(lambda: "public: tank level high" in got["viewer"] and
                         "public: tank level high" in got["operator"], 10.0, what="the public event at both")
    assert "secret: who logged in" in got["operator"]
    assert "secret: who logged in" not in got["viewer"]


async def test_create_monitored_items_passes_through_the_session_hook(bench: Bench):
    """CreateMonitoredItems hook (the session's create_monitored_items): a client's request reaches our hook with
    its items."""
    async with _client(bench, "viewer", "urn:test:monitored") as client:
        subscription = await client.create_subscription(20, None)
        await subscription.subscribe_data_change([client.get_node(bench.level), client.get_node(bench.tank)])
    session = bench.sessions.session_of("urn:test:monitored")
    assert ("monitored_items", 2) in bench.sessions.of(session)


async def test_the_message_limit_refuses_a_request_larger_than_it(bench: Bench):
    """Message limit (Server.limits, asyncua's TransportLimits): a request beyond it is refused before it is
    decoded; one within it is served."""
    async with _client(bench, "operator", "urn:test:message-limit") as client:
        node = client.get_node(bench.level)
        with pytest.raises((ua.UaError, ConnectionError, TimeoutError)):
            await node.write_value(ua.DataValue(ua.Variant(b"x" * (2 * MESSAGE_LIMIT), ua.VariantType.ByteString)))
    async with _client(bench, "operator", "urn:test:message-small") as client:
        assert await client.get_node(bench.level).read_value() is not None


async def test_hooks_installed_later_run_first_and_the_server_internal_session_is_never_hooked(bench: Bench):
    """Runs last: it adds two more session hooks to the shared server (both pass everything on)."""
    order: list[str] = []

    class Tag(seam.SessionServiceHooks):
        def __init__(self, name: str) -> None:
            self.name = name

        async def on_call(self, session: seam.SessionView, params: list[ua.CallMethodRequest],
                          proceed: Any) -> list[ua.CallMethodResult]:
            order.append(self.name)
            return await proceed(params)

    seam.install_session_hooks(bench.server, Tag("first"))
    seam.install_session_hooks(bench.server, Tag("second"))
    assert await bench.server.get_node(bench.tank).call_method(bench.method) == "drained"
    assert order == []  # the server's own call: internal session
    async with _client(bench, "operator", "urn:test:order") as client:
        await client.get_node(bench.tank).call_method(bench.method)
    assert order == ["second", "first"]


async def test_a_batch_value_write_reaches_subscribers_and_follows_asyncua_write_rules(bench: Bench):
    """Batch value write (AddressSpaceView.write_values): every value of the batch reaches a client's subscription;
    a Bad status nulls the value (as AddressSpace.write_attribute_value does); a node that does not exist is
    skipped and not counted."""
    tank = bench.server.get_node(bench.tank)
    a = await tank.add_variable(ua.NodeId("tank.batch_a", bench.idx), ua.QualifiedName("batch_a", bench.idx), 0.0)
    b = await tank.add_variable(ua.NodeId("tank.batch_b", bench.idx), ua.QualifiedName("batch_b", bench.idx), 0.0)
    nodes = seam.address_space(bench.server)
    seen: dict[ua.NodeId, list[ua.DataValue]] = {a.nodeid: [], b.nodeid: []}

    class Handler:
        def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
            seen[node.nodeid].append(data.monitored_item.Value)

    async with _client(bench, "viewer", "urn:test:batch") as client:
        subscription = await client.create_subscription(20, Handler())
        await subscription.subscribe_data_change([client.get_node(a.nodeid), client.get_node(b.nodeid)])
        await wait_until(lambda: all(seen.values()), 10.0, what="the initial values")
        written = await nodes.write_values([
            (a.nodeid, ua.DataValue(ua.Variant(5.0, ua.VariantType.Double))),
            (b.nodeid, ua.DataValue(ua.Variant(6.0, ua.VariantType.Double),
                                    StatusCode=ua.StatusCode(ua.StatusCodes.BadDeviceFailure))),
            (ua.NodeId("tank.nowhere", bench.idx), ua.DataValue(ua.Variant(7.0, ua.VariantType.Double))),
        ])
        assert written == 2
        await wait_until(lambda: len(seen[a.nodeid]) == 2 and len(seen[b.nodeid]) == 2, 10.0, what="both writes")
    assert seen[a.nodeid][-1].Value.Value == 5.0
    assert seen[b.nodeid][-1].StatusCode.value == ua.StatusCodes.BadDeviceFailure
    assert seen[b.nodeid][-1].Value.Value is None
    assert nodes.read(b.nodeid, ua.AttributeIds.Value).Value.Value is None


async def test_a_batch_value_write_notifies_monitored_items_as_asyncua_own_write_does(bench: Bench):
    """The batch write hands asyncua's monitored items each value without their deep copy: the notifications of a
    node written by it are those of a node written by asyncua's own write_attribute_value, to a subscriber with an
    absolute deadband of 1.0 (a change within the band is not sent) and to one without a filter (every change),
    status changes included; the values written are left as they were."""
    nodes = seam.address_space(bench.server)
    tank = bench.server.get_node(bench.tank)
    fast = (await tank.add_variable(ua.NodeId("tank.band_fast", bench.idx), "band_fast", 0.0)).nodeid
    slow = (await tank.add_variable(ua.NodeId("tank.band_slow", bench.idx), "band_slow", 0.0)).nodeid
    banded: dict[ua.NodeId, list[tuple[float, int]]] = {fast: [], slow: []}
    every: dict[ua.NodeId, list[tuple[float, int]]] = {fast: [], slow: []}

    class Handler:
        def __init__(self, seen: dict[ua.NodeId, list[tuple[float, int]]]) -> None:
            self.seen = seen

        def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
            dv = data.monitored_item.Value
            self.seen[node.nodeid].append((dv.Value.Value, dv.StatusCode.value))

    def sequence() -> list[ua.DataValue]:
        uncertain = ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)
        return [ua.DataValue(ua.Variant(v, ua.VariantType.Double), StatusCode=status or ua.StatusCode())
                for v, status in ((10.0, None), (10.5, None), (12.0, None), (12.0, uncertain), (13.5, uncertain),
                                  (20.0, None))]

    written = sequence()
    async with _client(bench, "viewer", "urn:test:deadband") as client:
        with_band = await client.create_subscription(20, Handler(banded))
        plain = await client.create_subscription(20, Handler(every))
        for node in (fast, slow):
            await with_band.deadband_monitor(client.get_node(node), 1.0)
            await plain.subscribe_data_change(client.get_node(node))
        await wait_until(lambda: all(banded.values()) and all(every.values()), 10.0, what="the initial values")
        for i, (value, same) in enumerate(zip(written, sequence(), strict=True), start=2):
            assert await nodes.write_values([(fast, value)]) == 1
            await nodes.write(slow, ua.AttributeIds.Value, same)
            await wait_until(lambda i=i: len(every[fast]) == len(every[slow]) == i, 10.0, what=f"notification {i}")
        await wait_until(lambda: banded[fast] and banded[fast][-1][0] == 20.0 and banded[slow][-1][0] == 20.0, 10.0,
                         what="the last value through the deadband")
    assert every[fast] == every[slow]
    assert banded[fast] == banded[slow]
    assert (10.5, 0) in every[fast] and (10.5, 0) not in banded[fast]
    assert written == sequence()  # not changed by the notifications


def _folder_items(idx: int, prefix: str, n: int) -> list[ua.AddNodesItem]:
    from twin_server.address_space import analog_properties, object_item, variable_item

    folder = ua.NodeId(f"{prefix}", idx)
    items = [object_item(folder, idx, prefix, ua.NodeId(ua.ObjectIds.ObjectsFolder),
                         ua.NodeId(ua.ObjectIds.FolderType), f"{prefix} folder", reference=ua.ObjectIds.Organizes)]
    for i in range(n):
        node = ua.NodeId(f"{prefix}.v{i}", idx)
        items.append(variable_item(node, idx, f"v{i}", folder, ua.Variant(0.0, ua.VariantType.Double),
                                   ua.ObjectIds.Double, ua.ObjectIds.AnalogItemType, f"variable {i}"))
        items += analog_properties(node, idx, "CEL", 0.0, 100.0)
    return items


def _shape(nodes: seam.AddressSpaceView, bench: Bench, node: ua.NodeId, prefix: str) -> tuple:
    """A node as data, its own id and the ids it refers to written relative to ``prefix``: attributes (value and
    status, not timestamps) and references."""
    data = bench.server.iserver.aspace[node]

    def rel(n: Any) -> str:
        return str(n).replace(prefix, "P")

    attributes = {a: (rel(v.value.Value.Value) if v.value and v.value.Value else None, v.value.StatusCode)
                  for a, v in data.attributes.items()}
    references = sorted((str(r.ReferenceTypeId), r.IsForward, rel(r.NodeId), r.NodeClass, rel(r.BrowseName),
                         rel(r.DisplayName), rel(r.TypeDefinition)) for r in data.references)
    return attributes, references


async def test_bulk_node_creation_makes_the_nodes_add_nodes_makes_and_refuses_what_it_refuses(bench: Bench):
    """Bulk node creation (add_nodes_in_bulk, asyncua's NodeManagementService helpers): the same nodes (attributes
    and references of the folder, the variables and their properties) as asyncua's AddNodes; a client browses
    them; the same refusals per item."""
    nodes = seam.address_space(bench.server)
    n = 30
    by_asyncua = _folder_items(bench.idx, "slow", n)
    by_bulk = _folder_items(bench.idx, "bulk", n)
    assert all(r.StatusCode.is_good() for r in await seam.add_nodes(bench.server, by_asyncua))
    results = await seam.add_nodes_in_bulk(bench.server, by_bulk)
    assert all(r.StatusCode.is_good() for r in results)
    assert [r.AddedNodeId for r in results] == [item.RequestedNewNodeId for item in by_bulk]
    for slow, bulk in zip(by_asyncua, by_bulk, strict=True):
        assert _shape(nodes, bench, bulk.RequestedNewNodeId, "bulk") == \
            _shape(nodes, bench, slow.RequestedNewNodeId, "slow"), bulk.RequestedNewNodeId
    objects = bench.server.iserver.aspace[ua.NodeId(ua.ObjectIds.ObjectsFolder)]
    assert sum(r.NodeId == ua.NodeId("bulk", bench.idx) for r in objects.references) == 1
    async with _client(bench, "viewer", "urn:test:bulk") as client:
        children = await client.get_node(ua.NodeId("bulk", bench.idx)).get_children()
        assert {c.nodeid.Identifier for c in children} == {f"bulk.v{i}" for i in range(n)}
        props = await client.get_node(ua.NodeId("bulk.v7", bench.idx)).get_properties()
        assert {(await p.read_browse_name()).Name for p in props} == {"EURange", "EngineeringUnits"}

    def again(item: ua.AddNodesItem, **changes: Any) -> ua.AddNodesItem:
        copy = ua.AddNodesItem(**{f: getattr(item, f) for f in ("ParentNodeId", "ReferenceTypeId",
                                                               "RequestedNewNodeId", "BrowseName", "NodeClass",
                                                               "NodeAttributes", "TypeDefinition")})
        for key, value in changes.items():
            setattr(copy, key, value)
        return copy

    variable, eu_range = by_bulk[1], by_bulk[2]
    refused = await seam.add_nodes_in_bulk(bench.server, [
        again(variable),
        again(variable, RequestedNewNodeId=ua.NodeId("bulk.orphan", bench.idx),
              ParentNodeId=ua.NodeId("bulk.none", bench.idx)),
        again(eu_range, RequestedNewNodeId=ua.NodeId("bulk.v0.EURange2", bench.idx)),  # a second EURange
        again(variable, RequestedNewNodeId=ua.NodeId("", bench.idx)),
        again(variable, RequestedNewNodeId=ua.NodeId("bulk.typo", bench.idx),
              TypeDefinition=ua.NodeId("NoSuchType", bench.idx)),
    ])
    assert [r.StatusCode.value for r in refused] == [
        ua.StatusCodes.BadNodeIdExists, ua.StatusCodes.BadParentNodeIdInvalid, ua.StatusCodes.BadBrowseNameDuplicated,
        ua.StatusCodes.BadNodeIdInvalid, ua.StatusCodes.BadTypeDefinitionInvalid]
    assert not nodes.exists(ua.NodeId("bulk.orphan", bench.idx))
    assert not nodes.exists(ua.NodeId("bulk.v0.EURange2", bench.idx))


async def test_bulk_references_are_the_references_add_references_makes_and_refused_alike(bench: Bench):
    """Bulk references (add_references_in_bulk): HasCondition-like references from one source to many targets end as
    asyncua's AddReferences makes them; an existing one is Good and not doubled, a contradicting direction, a
    missing source or target are refused with asyncua's codes."""
    nodes = seam.address_space(bench.server)
    for prefix in ("rslow", "rbulk"):
        assert all(r.StatusCode.is_good() for r in await seam.add_nodes_in_bulk(
            bench.server, _folder_items(bench.idx, prefix, 20)))

    def refs(prefix: str) -> list[ua.AddReferencesItem]:
        return [ua.AddReferencesItem(SourceNodeId=ua.NodeId(prefix, bench.idx),
                                     ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasCondition), IsForward=True,
                                     TargetNodeId=ua.NodeId(f"{prefix}.v{i}", bench.idx),
                                     TargetNodeClass=ua.NodeClass.Unspecified if i % 2 else ua.NodeClass.Variable)
                for i in range(20)]

    assert all(s.is_good() for s in await seam.add_references(bench.server, refs("rslow")))
    assert all(s.is_good() for s in await seam.add_references_in_bulk(bench.server, refs("rbulk")))
    assert _shape(nodes, bench, ua.NodeId("rbulk", bench.idx), "rbulk") == \
        _shape(nodes, bench, ua.NodeId("rslow", bench.idx), "rslow")
    first = refs("rbulk")[0]
    backwards = ua.AddReferencesItem(SourceNodeId=first.SourceNodeId, ReferenceTypeId=first.ReferenceTypeId,
                                     IsForward=False, TargetNodeId=first.TargetNodeId)
    nowhere = ua.AddReferencesItem(SourceNodeId=ua.NodeId("rbulk.none", bench.idx),
                                   ReferenceTypeId=first.ReferenceTypeId, TargetNodeId=first.TargetNodeId)
    to_nowhere = ua.AddReferencesItem(SourceNodeId=first.SourceNodeId, ReferenceTypeId=first.ReferenceTypeId,
                                      TargetNodeId=ua.NodeId("rbulk.none", bench.idx))
    statuses = await seam.add_references_in_bulk(bench.server, [first, backwards, nowhere, to_nowhere])
    assert [s.value for s in statuses] == [ua.StatusCodes.Good, ua.StatusCodes.BadReferenceNotAllowed,
                                           ua.StatusCodes.BadSourceNodeIdInvalid,
                                           ua.StatusCodes.BadTargetNodeIdInvalid]
    assert _shape(nodes, bench, ua.NodeId("rbulk", bench.idx), "rbulk") == \
        _shape(nodes, bench, ua.NodeId("rslow", bench.idx), "rslow")


async def test_server_holdings_count_a_client_session_its_subscription_and_items_until_it_leaves(bench: Bench):
    """What the server holds (the soak benchmark's sessions, subscriptions, monitored items) follows a client that
    connects, subscribes to two variables and leaves."""
    before = seam.server_holdings(bench.server)
    async with _client(bench, "viewer", "urn:test:holdings") as client:
        subscription = await client.create_subscription(50, None)
        await subscription.subscribe_data_change([client.get_node(bench.level), client.get_node(bench.alarm_limit)])
        assert seam.server_holdings(bench.server) == (before[0] + 1, before[1] + 1, before[2] + 2)
    await wait_until(lambda: seam.server_holdings(bench.server) == before, 10.0, what="the client's holdings gone")


async def test_subscription_loggers_stay_bounded_when_clients_subscribe_and_go(bench: Bench):
    """Subscription-logger hook: asyncua still names one logger per subscription (else the hook has nothing to do and
    may go), and 12 subscriptions of two clients — 8 deleted by DeleteSubscriptions, 4 by the sessions' close —
    leave no logger behind (before the hook, each one stayed in ``logging``'s table for the process's life)."""
    # Counted by name: other servers of this worker process may hold (or be releasing) loggers of their own.
    names: list[str] = []
    loggers: list[weakref.ref[logging.Logger]] = []

    def held(of: list[str]) -> int:
        return sum(1 for name in of if name in logging.Logger.manager.loggerDict)

    for n, user in enumerate(("viewer", "operator")):
        async with _client(bench, user, f"urn:test:loggers{n}") as client:
            subscriptions = [await client.create_subscription(50, None) for _ in range(6)]
            mine = [f"{seam.SUBSCRIPTION_LOGGER_PREFIX}{s.subscription_id}" for s in subscriptions]
            assert held(mine) == 6, "asyncua no longer names a logger per subscription"
            assert seam.subscription_loggers() >= 6
            names += mine
            loggers += [weakref.ref(logging.getLogger(name)) for name in mine]
            for subscription in subscriptions[:4]:
                await subscription.delete()
            assert held(mine[:4]) == 0 and held(mine[4:]) == 2
    await wait_until(lambda: held(names) == 0, 10.0, what="the closed sessions' loggers gone")

    def released() -> bool:  # the logger objects themselves, not only their names (logging's placeholders too)
        gc.collect()
        return all(ref() is None for ref in loggers)

    await wait_until(released, 10.0, what="the 12 logger objects freed")


def _copies(server: Server, idx: int, prefix: str, n: int) -> list[seam.NodeCopy]:
    """A folder's ``n`` AnalogItemType variables with their properties, and an object with a two-state variable and
    its ``Id`` property (names fixed by their templates, in namespace 0), as copies."""
    from twin_server.address_space import analog_properties, object_item, variable_item

    folder, placeholder = ua.NodeId(prefix, idx), ua.NodeId("template", idx)
    variable = seam.NodeTemplate(server, variable_item(placeholder, idx, "v", placeholder, ua.Variant(0.0),
                                                       ua.ObjectIds.Double, ua.ObjectIds.AnalogItemType, "v"))
    eu_range, units = (seam.NodeTemplate(server, item) for item in analog_properties(placeholder, idx, "CEL", 0, 1))
    state = variable_item(placeholder, idx, "ActiveState", placeholder, ua.Variant(ua.LocalizedText("Inactive")),
                          ua.ObjectIds.LocalizedText, ua.ObjectIds.TwoStateVariableType, "state")
    state_id = variable_item(placeholder, idx, "Id", placeholder, ua.Variant(False), ua.ObjectIds.Boolean,
                             ua.ObjectIds.PropertyType, "id", is_property=True)
    state.BrowseName, state_id.BrowseName = ua.QualifiedName("ActiveState", 0), ua.QualifiedName("Id", 0)
    alarm = seam.NodeTemplate(server, object_item(placeholder, idx, "alarm", placeholder,
                                                  ua.NodeId(ua.ObjectIds.OffNormalAlarmType), "alarm"))
    copies = []
    for i in range(n):
        node = ua.NodeId(f"{prefix}.v{i}", idx)
        copies += [seam.NodeCopy(variable, node, folder, f"v{i}", f"variable {i}"),
                   seam.NodeCopy(eu_range, ua.NodeId(f"{prefix}.v{i}.EURange", idx), node,
                                 value=ua.Variant(ua.Range(Low=-i, High=i), ua.VariantType.ExtensionObject)),
                   seam.NodeCopy(units, ua.NodeId(f"{prefix}.v{i}.EngineeringUnits", idx), node)]
    alarm_id, active = ua.NodeId(f"{prefix}.alarm", idx), ua.NodeId(f"{prefix}.alarm.ActiveState", idx)
    copies += [seam.NodeCopy(alarm, alarm_id, folder, "alarm"),
               seam.NodeCopy(seam.NodeTemplate(server, state), active, alarm_id, description="alarm: ActiveState",
                             value=ua.Variant(ua.LocalizedText("Active"))),
               seam.NodeCopy(seam.NodeTemplate(server, state_id), ua.NodeId(f"{prefix}.alarm.ActiveState.Id", idx),
                             active, value=ua.Variant(True))]
    return copies


async def test_node_copies_are_the_nodes_add_nodes_makes_and_refused_alike(bench: Bench):
    """Node copies (add_node_copies, a NodeTemplate per shape): the same nodes (attributes and references of the
    folder, the copies and their parents) as asyncua's AddNodes makes of each copy's item; a client browses and reads
    them; the same refusals per copy, nothing added for a refused one."""
    nodes = seam.address_space(bench.server)
    n = 20
    for prefix in ("cslow", "ccopy"):
        assert all(r.StatusCode.is_good() for r in await seam.add_nodes_in_bulk(
            bench.server, _folder_items(bench.idx, prefix, 0)))
    slow = _copies(bench.server, bench.idx, "cslow", n)
    assert all(r.StatusCode.is_good() for r in await seam.add_nodes(bench.server, [c.template.item(c) for c in slow]))
    copies = _copies(bench.server, bench.idx, "ccopy", n)
    assert await seam.add_node_copies(bench.server, copies) == []
    for node in [ua.NodeId("ccopy", bench.idx)] + [c.node_id for c in copies]:
        other = ua.NodeId(str(node.Identifier).replace("ccopy", "cslow"), bench.idx)
        assert _shape(nodes, bench, node, "ccopy") == _shape(nodes, bench, other, "cslow"), node
    async with _client(bench, "viewer", "urn:test:copies") as client:
        children = await client.get_node(ua.NodeId("ccopy", bench.idx)).get_children()
        assert {c.nodeid.Identifier for c in children} == {f"ccopy.v{i}" for i in range(n)} | {"ccopy.alarm"}
        v7 = client.get_node(ua.NodeId("ccopy.v7", bench.idx))
        assert (await v7.read_description()).Text == "variable 7"
        props = await v7.get_properties()
        assert {(await p.read_browse_name()).Name for p in props} == {"EURange", "EngineeringUnits"}
        eu_range = await client.get_node(ua.NodeId("ccopy.v7.EURange", bench.idx)).read_value()
        assert (eu_range.Low, eu_range.High) == (-7, 7)
        state = client.get_node(ua.NodeId("ccopy.alarm.ActiveState", bench.idx))
        assert (await state.read_browse_name()) == ua.QualifiedName("ActiveState", 0)
        assert (await state.read_value()).Text == "Active"

    variable, eu_range = copies[0], copies[1]
    refused = await seam.add_node_copies(bench.server, [
        variable,
        variable._replace(node_id=ua.NodeId("ccopy.orphan", bench.idx), parent=ua.NodeId("ccopy.none", bench.idx)),
        eu_range._replace(node_id=ua.NodeId("ccopy.v0.EURange2", bench.idx)),  # a second EURange
        variable._replace(node_id=ua.NodeId("", bench.idx)),
    ])
    assert [status.value for _, status in refused] == [
        ua.StatusCodes.BadNodeIdExists, ua.StatusCodes.BadParentNodeIdInvalid, ua.StatusCodes.BadBrowseNameDuplicated,
        ua.StatusCodes.BadNodeIdInvalid]  # asyncua's AddNodes would make up an id for the last: the twin names nodes
    slow_refused = await seam.add_nodes(bench.server, [c.template.item(c) for c, _ in refused[:3]])
    assert [r.StatusCode.value for r in slow_refused] == [status.value for _, status in refused[:3]]
    untyped = ua.AddNodesItem(**{f: getattr(variable.template.prototype, f) for f in (
        "ParentNodeId", "ReferenceTypeId", "RequestedNewNodeId", "BrowseName", "NodeClass", "NodeAttributes")})
    untyped.TypeDefinition = ua.NodeId("NoSuchType", bench.idx)
    typo = seam.NodeCopy(seam.NodeTemplate(bench.server, untyped), ua.NodeId("ccopy.typo", bench.idx),
                         ua.NodeId("ccopy", bench.idx), "typo")
    assert [s.value for _, s in await seam.add_node_copies(bench.server, [typo])] == [
        ua.StatusCodes.BadTypeDefinitionInvalid]
    for missing in ("ccopy.orphan", "ccopy.v0.EURange2", "ccopy.typo"):
        assert not nodes.exists(ua.NodeId(missing, bench.idx))


async def test_copies_share_fixed_attributes_until_one_is_written(bench: Bench):
    """A copy shares its template's fixed attributes with the other copies: asyncua replaces an attribute's
    DataValue on a write, so writing one copy's attribute (the server's write, a client's) leaves the others'."""
    copies = _copies(bench.server, bench.idx, "cshare", 2)
    assert all(r.StatusCode.is_good() for r in await seam.add_nodes_in_bulk(
        bench.server, _folder_items(bench.idx, "cshare", 0)))
    assert await seam.add_node_copies(bench.server, copies) == []
    nodes = seam.address_space(bench.server)
    v0, v1 = copies[0].node_id, copies[3].node_id
    assert nodes.read(v0, ua.AttributeIds.AccessLevel) is nodes.read(v1, ua.AttributeIds.AccessLevel)
    await nodes.write(v0, ua.AttributeIds.AccessLevel, ua.DataValue(ua.Variant(3, ua.VariantType.Byte)))
    await nodes.write(v0, ua.AttributeIds.Value, ua.DataValue(ua.Variant(4.5, ua.VariantType.Double)))
    async with _client(bench, "viewer", "urn:test:copies-shared") as client:
        assert (await client.get_node(v0).read_attribute(ua.AttributeIds.AccessLevel)).Value.Value == 3
        assert (await client.get_node(v1).read_attribute(ua.AttributeIds.AccessLevel)).Value.Value == \
            ua.AccessLevel.CurrentRead.mask
        assert await client.get_node(v0).read_value() == 4.5
        assert await client.get_node(v1).read_value() == 0.0


# --- server start-up: the standard address space copied from a snapshot -------------------------------------

_NO_TIME = "<time>"


def _without_times(value: Any) -> Any:
    """A value with every datetime in it masked (start-up writes the time: build date, server status)."""
    if isinstance(value, datetime):
        return _NO_TIME
    if isinstance(value, list | tuple):
        return [_without_times(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, [(f.name, _without_times(getattr(value, f.name)))
                                       for f in dataclasses.fields(value)])
    return value


def _whole_space(server: Server) -> dict[ua.NodeId, tuple[Any, ...]]:
    """Every node of the server: each attribute's value, status and which timestamps it has, which callbacks it
    has; the references in their order; whether the node has a method."""
    aspace = server.iserver.aspace
    space = {}
    for node_id in seam.address_space(server).node_ids():
        data = aspace[node_id]
        attributes = {}
        for attribute, held in data.attributes.items():
            dv = held.value
            attributes[attribute] = (
                None if dv is None else (_without_times(dv.Value), dv.StatusCode, dv.SourceTimestamp is None,
                                         dv.ServerTimestamp is None, dv.SourcePicoseconds, dv.ServerPicoseconds),
                held.value_callback is None, held.value_setter is None, sorted(held.datachange_callbacks))
        space[node_id] = (data.nodeid, attributes, list(data.references), data.call is None)
    return space


def _node_objects(server: Server) -> dict[int, tuple[type, str]]:
    """id → (type, node) of every object the server's nodes hold (node, attribute dicts, DataValues, Variants, the
    values in them, references, node ids, names) except those no one can change (numbers, strings, enum members,
    classes, time zones). The walk visits ~480,000 objects: slot names are looked up once per type."""
    found: dict[int, tuple[type, str]] = {}
    immutable = (str, bytes, int, float, bool, type(None), type, enum.Enum, tzinfo, datetime)
    slots_of: dict[type, tuple[str, ...]] = {}
    aspace = server.iserver.aspace
    stack: list[tuple[Any, str]] = [(aspace[n], str(n)) for n in seam.address_space(server).node_ids()]
    while stack:
        obj, where = stack.pop()
        if isinstance(obj, immutable) or id(obj) in found:
            continue
        kind = type(obj)
        found[id(obj)] = (kind, where)
        if isinstance(obj, dict):
            stack.extend((v, where) for pair in obj.items() for v in pair)
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend((v, where) for v in obj)
        else:
            names = slots_of.get(kind)
            if names is None:
                names = slots_of[kind] = tuple(s for cls in kind.__mro__ for s in getattr(cls, "__slots__", ()))
            stack.extend((getattr(obj, s), where) for s in names if hasattr(obj, s))
            stack.extend((v, where) for v in getattr(obj, "__dict__", {}).values())
    return found


@pytest.fixture
def fresh_standard_space(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has started no server through the seam yet (the snapshot is per process)."""
    monkeypatch.setattr(seam, "_standard_space", seam._StandardSpace())


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No automatic cyclic collection during the test: it compares millions of objects of several address spaces,
    which the collector would traverse again and again (~10 CPU s) without changing what is compared."""
    with collector_paused():
        yield


async def _started(n: int) -> list[Server]:
    servers = []
    for _ in range(n):
        server = Server()
        await seam.init_server(server)
        servers.append(server)
    return servers


@dataclass(frozen=True)
class SnapshotProcess:
    """A process's first two servers through the seam, filled by asyncua (``source``: the one whose space was
    pickled), and the counts right after them."""

    filled: Server
    source: Server
    counts_after_fills: tuple[int, int]
    snapshot_bytes: int
    node_counts: tuple[int, int]
    """of ``filled`` and ``source`` when they were made (tests start, stop and change them afterwards)"""


SNAPSHOT = pytest.mark.xdist_group("seam_snapshot")
"""The tests of the snapshot share one :class:`SnapshotProcess` (module scope): filling a server is ~1.5 CPU s."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def snapshot_process() -> AsyncIterator[SnapshotProcess]:
    """A fresh standard-space cache (as in a process that has started no server through the seam yet) with its two
    filled servers; each test takes its copies from it, so it checks how many copies *it* added."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seam, "_standard_space", seam._StandardSpace())
        with collector_paused():
            filled, source = await _started(2)
        counts = seam.standard_space_counts()
        yield SnapshotProcess(filled, source, (counts.fills, counts.copies), counts.snapshot_bytes,
                              (len(seam.address_space(filled).node_ids()), len(seam.address_space(source).node_ids())))


async def _snapshot_copies(process: SnapshotProcess, n: int) -> list[Server]:
    """``n`` more servers: copies of the snapshot (the fills stay two)."""
    copies_before = seam.standard_space_counts().copies
    servers = await _started(n)
    counts = seam.standard_space_counts()
    assert (counts.fills, counts.copies - copies_before) == (2, n)  # asyncua called the hooked method
    return servers


@SNAPSHOT
async def test_a_server_initialised_from_the_snapshot_has_the_address_space_asyncua_fills(
        snapshot_process: SnapshotProcess, collector_off: None):
    """Server start-up (init_server): the first two servers of a process are filled by asyncua's generated code,
    the second's space pickled; a third gets a copy of it, and its whole address space — every node, every
    attribute's value and status, every reference in its order — is the one a plain ``Server.init()`` builds.
    asyncua's own ``load_standard_address_space`` is the server's again afterwards."""
    plain = Server()
    await plain.init()
    assert snapshot_process.counts_after_fills == (2, 0)
    assert snapshot_process.snapshot_bytes > 1_000_000
    copied, = await _snapshot_copies(snapshot_process, 1)
    assert "load_standard_address_space" not in vars(copied.iserver)
    held, still_pickled = seam.copied_node_counts(copied)
    assert still_pickled > 5900 and held < 200, "init read more than the few nodes asyncua's start-up needs"
    expected = _whole_space(plain)
    assert len(expected) > 6000
    # the copy is what the hook makes; the two servers before it are asyncua's own fill (their node count is checked)
    assert snapshot_process.node_counts == (len(expected), len(expected))
    got = _whole_space(copied)
    assert got.keys() == expected.keys()
    differing = [n for n in expected if got[n] != expected[n]]
    assert differing == [], f"{len(differing)} nodes differ from asyncua's, e.g. {differing[:3]}"


@SNAPSHOT
async def test_a_client_reads_and_browses_standard_nodes_of_a_copied_space_as_of_a_filled_one(
        snapshot_process: SnapshotProcess):
    """Server start-up: asyncua's services read a copied server's nodes through the table the hook installs, so
    standard nodes no one has read yet answer a real client's Read and Browse as a filled server's do (and are
    copied then); an id in neither space is BadNodeIdUnknown in both."""
    filled = snapshot_process.filled
    copied, = await _snapshot_copies(snapshot_process, 1)
    answers = []
    for server in (filled, copied):
        server.set_endpoint(f"opc.tcp://127.0.0.1:{free_tcp_port()}/copied")
        await server.start()
        try:
            if server is copied:
                before = seam.copied_node_counts(copied)[0]
            async with Client(server.endpoint.geturl(), timeout=10) as client:
                types = client.get_node(ua.ObjectIds.BaseDataVariableType)
                children = sorted([(await c.read_browse_name()).Name for c in await types.get_children()])
                names = [(await client.get_node(i).read_display_name()).Text
                         for i in (ua.ObjectIds.AnalogItemType, ua.ObjectIds.HasEventSource, ua.ObjectIds.Server)]
                try:
                    await client.get_node(ua.NodeId(987654, 0)).read_display_name()
                    missing = ua.StatusCodes.Good
                except ua.UaStatusCodeError as refused:
                    missing = refused.code
                answers.append((children, names, missing))
        finally:
            await seam.stop_server_clock(server)  # not stop_server: the module's servers are not released
            await server.stop()
    assert answers[0] == answers[1]
    assert len(answers[1][0]) > 10 and answers[1][1] == ["AnalogItemType", "HasEventSource", "Server"]
    assert answers[1][2] == ua.StatusCodes.BadNodeIdUnknown
    assert seam.copied_node_counts(copied)[0] > before  # the client's reads copied the nodes they reached


@SNAPSHOT
async def test_servers_from_the_snapshot_share_no_node_object_and_one_changed_leaves_the_others(
        snapshot_process: SnapshotProcess, collector_off: None):
    """Server start-up: the server whose space was pickled and two copies hold no object in common (nodes,
    attributes, DataValues, Variants, lists, references, node ids and names); a value written, a reference added and
    a list value changed in place in one server are not seen by the others, nor by a server started afterwards."""
    source = snapshot_process.source
    first, second = await _snapshot_copies(snapshot_process, 2)
    objects = [_node_objects(s) for s in (source, first, second)]
    for i, j in ((0, 1), (0, 2), (1, 2)):
        shared = objects[i].keys() & objects[j].keys()
        assert not shared, (f"{len(shared)} objects shared, e.g. "
                            f"{[f'{t.__name__} in {n}' for t, n in (objects[i][k] for k in list(shared)[:3])]}")

    service_level = ua.NodeId(ua.ObjectIds.Server_ServiceLevel)
    locales = ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_LocaleIdArray)
    organizes = ua.NodeId(ua.ObjectIds.Organizes)
    objects_folder, types_folder = ua.NodeId(ua.ObjectIds.ObjectsFolder), ua.NodeId(ua.ObjectIds.TypesFolder)
    enum_strings = ua.NodeId(ua.ObjectIds.ServerState_EnumStrings)
    for changed in (source, first):
        view = seam.address_space(changed)
        await view.write(service_level, ua.AttributeIds.Value, ua.DataValue(ua.Variant(7, ua.VariantType.Byte)))
        await view.write(locales, ua.AttributeIds.Value, ua.DataValue(ua.Variant(["de-CH"], ua.VariantType.String)))
        assert (await seam.add_references(changed, [ua.AddReferencesItem(
            SourceNodeId=objects_folder, ReferenceTypeId=organizes, IsForward=True, TargetNodeId=types_folder,
            TargetNodeClass=ua.NodeClass.Object)]))[0].is_good()
        view.read(enum_strings, ua.AttributeIds.Value).Value.Value.append(ua.LocalizedText("Changed"))
    later, = await _snapshot_copies(snapshot_process, 1)
    for server in (second, later):
        view = seam.address_space(server)
        assert view.attribute(service_level, ua.AttributeIds.Value) == 255
        assert view.attribute(locales, ua.AttributeIds.Value) != ["de-CH"]
        assert types_folder not in [r.NodeId for r in server.iserver.aspace[objects_folder].references]
        assert ua.LocalizedText("Changed") not in view.attribute(enum_strings, ua.AttributeIds.Value)
        assert len(view.attribute(enum_strings, ua.AttributeIds.Value)) == 8  # ServerState's eight states


async def test_a_stopped_server_released_frees_its_nodes_without_the_collector(collector_off: None):
    """Release at stop (release_address_space): asyncua still keeps its nodes in the one table the hook empties (a
    node's ``NodeData`` is reachable from the address space and from nothing else of the server), so once a started
    and stopped server is released its nodes are freed by reference counting — the collector is off — while the
    server object itself is still alive."""
    server = Server()
    await seam.init_server(server)
    server.set_endpoint(f"opc.tcp://127.0.0.1:{free_tcp_port()}/release")
    await server.start()
    await seam.stop_server_clock(server)
    await server.stop()
    aspace = server.iserver.aspace
    nodes = [weakref.ref(aspace.get(ua.NodeId(i))) for i in (ua.ObjectIds.Server, ua.ObjectIds.ObjectsFolder,
                                                                 ua.ObjectIds.Server_ServerStatus_State)]
    assert all(ref() is not None for ref in nodes)
    assert seam.release_address_space(server) > 6000
    assert [ref() for ref in nodes] == [None, None, None], "a released node is still referenced"
    assert ua.NodeId(ua.ObjectIds.Server) not in aspace


async def test_stop_server_stops_and_releases_even_when_the_stop_raises(collector_off: None):
    """stop_server: a started server stops (its port is free again) and its nodes are released; a stop that raises
    still releases them, and the error reaches the caller."""
    server = Server()
    await seam.init_server(server)
    port = free_tcp_port()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/stop")
    await server.start()
    await seam.stop_server(server)
    assert seam.address_space(server).node_ids() == []
    reopened = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    reopened.close()

    failing = Server()
    await seam.init_server(failing)

    async def refuse() -> None:
        raise RuntimeError("stop failed")

    failing.stop = refuse  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="stop failed"):
        await seam.stop_server(failing)
    assert seam.address_space(failing).node_ids() == []


async def test_stop_server_cancels_the_server_clock_instead_of_waiting_out_its_sleep():
    """Clock at stop (stop_server_clock): a started server's clock task is asyncua's CurrentTime loop and advances
    the server's CurrentTime while it serves; stop_server cancels that task (asyncua's stop alone waits for the
    task's 1 s sleep to end), so asyncua's stop finds none to wait for. A server never started has no clock."""
    server = Server()
    await seam.init_server(server)
    assert await seam.stop_server_clock(server) is False  # not started: no clock task yet
    server.set_endpoint(f"opc.tcp://127.0.0.1:{free_tcp_port()}/clock")
    await server.start()
    task = server.iserver.time_task
    assert isinstance(task, asyncio.Task) and not task.done()
    assert task.get_coro().__qualname__ == "InternalServer._set_current_time_loop"
    current_time = server.get_node(ua.ObjectIds.Server_ServerStatus_CurrentTime)
    first = await current_time.read_value()

    async def advanced() -> bool:
        return await current_time.read_value() > first

    await wait_until(advanced, timeout_s=5.0, what="the server clock to advance CurrentTime")
    await seam.stop_server(server)
    assert task.cancelled(), "the clock task was waited for, not cancelled"
    assert server.iserver.time_task is None


async def test_overlapping_server_inits_each_get_the_whole_standard_space(fresh_standard_space: None):
    """Server start-up: inits that overlap — two on one event loop, one on another loop in another thread — each
    end with the whole standard address space; one snapshot is taken; later servers are copies of it."""

    async def init_one() -> Server:
        server = Server()
        await seam.init_server(server)
        return server

    other_thread = asyncio.create_task(asyncio.to_thread(asyncio.run, init_one()))
    servers = [*await asyncio.gather(init_one(), init_one()), await other_thread]
    servers += await _started(2)
    fills, copies, snapshot = seam.standard_space_counts()
    assert fills + copies == 5 and copies >= 2 and snapshot > 0
    sizes = {len(seam.address_space(s).node_ids()) for s in servers}
    assert len(sizes) == 1 and sizes.pop() > 6000
    assert gc.isenabled()  # every pause of the collector ended


ASYNCUA_INTERNALS = re.compile(r"\.(iserver|bserver|aspace|isession)\b|attribute_service|history_manager"
                               r"|subscription_service|_make_protocol")
PACKAGES = ("plc_adapters", "process_models", "controllers", "twin_server", "hil", "linetwin_cli", "benchmarks")


async def test_no_module_but_the_seam_touches_an_asyncua_internal():
    """The seam is the only place: no other module of the packages (nor a benchmark) names asyncua's server
    internals."""
    repo = Path(__file__).resolve().parents[2]
    seam_file = Path(seam.__file__).resolve()
    found = [f"{path.relative_to(repo)}:{n}: {line.strip()}"
             for package in PACKAGES for path in sorted((repo / package).rglob("*.py")) if path != seam_file
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if ASYNCUA_INTERNALS.search(line)]
    assert found == [], "asyncua internals outside plc_adapters/asyncua_seam.py:\n" + "\n".join(found)
