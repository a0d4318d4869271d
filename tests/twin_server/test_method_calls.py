"""Checked, audited methods (twin_server.method_calls) on a real asyncua server over loopback: every Call result
code a client can provoke, the action never run on a refused call, and the audit entry naming the user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from asyncua import Client, Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from plc_adapters.asyncua_seam import init_server
from tests.conftest import free_tcp_port
from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail
from twin_server.method_calls import MethodArgument, MethodRefused, add_checked_method, track_method_callers

NS = "urn:linetwin:test:methods"


class NamedUsers:
    """A user manager that knows every user by the name they log in with (the twin's security layer does more)."""

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User | None:
        return User(role=UserRole.User, name=username)  # name None: an anonymous login


@dataclass
class Bench:
    url: str
    idx: int
    target: ua.NodeId
    method: ua.NodeId
    other: ua.NodeId
    runs: list[float] = field(default_factory=list)
    audited: list[AuditEntry] = field(default_factory=list)


@asynccontextmanager
async def method_server() -> AsyncIterator[Bench]:
    server = Server(user_manager=NamedUsers())
    await init_server(server)
    url = f"opc.tcp://127.0.0.1:{free_tcp_port()}/methods/"
    server.set_endpoint(url)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    track_method_callers(server)
    idx = await server.register_namespace(NS)
    objects = server.nodes.objects
    target = await objects.add_object(ua.NodeId("reactor.control", idx), ua.QualifiedName("control", idx))
    other = await objects.add_object(ua.NodeId("feed_tank", idx), ua.QualifiedName("feed_tank", idx))
    bench = Bench(url, idx, target.nodeid, ua.NodeId("reactor.control.SetTarget", idx), other.nodeid)

    async def set_target(value: float) -> None:
        if value > 100.0:
            raise MethodRefused(ua.StatusCodes.BadOutOfRange, f"target {value} above 100")
        if value < 0.0:
            raise RuntimeError("a bug in the action")
        bench.runs.append(value)

    trail = AuditTrail(sinks=[bench.audited.append])
    await add_checked_method(server, target.nodeid, bench.method, ua.QualifiedName("SetTarget", idx), set_target,
                             trail, inputs=[MethodArgument("target", ua.VariantType.Double, "new target")])
    async with server:
        yield bench


async def _call(client: Client, bench: Bench, *args: ua.Variant, on: ua.NodeId | None = None) -> ua.CallMethodResult:
    request = ua.CallMethodRequest(ObjectId=on or bench.target, MethodId=bench.method, InputArguments=list(args))
    return (await client.uaclient.call([request]))[0]


async def test_call_results_for_every_kind_of_wrong_call():
    double = ua.Variant(42.0, ua.VariantType.Double)
    async with method_server() as bench, Client(bench.url) as client:
        declared = await client.get_node(bench.method).get_child(["0:InputArguments"])
        assert [a.Name for a in await declared.read_value()] == ["target"]

        wrong_object = await _call(client, bench, double, on=bench.other)
        missing = await _call(client, bench)
        too_many = await _call(client, bench, double, double)
        wrong_type = await _call(client, bench, ua.Variant("42", ua.VariantType.String))
        refused = await _call(client, bench, ua.Variant(500.0, ua.VariantType.Double))
        bug = await _call(client, bench, ua.Variant(-1.0, ua.VariantType.Double))
        assert bench.runs == [], "no refused call reaches the action"
        ok = await _call(client, bench, double)

    assert wrong_object.StatusCode.value == ua.StatusCodes.BadMethodInvalid
    assert missing.StatusCode.value == ua.StatusCodes.BadArgumentsMissing
    assert too_many.StatusCode.value == ua.StatusCodes.BadTooManyArguments
    assert wrong_type.StatusCode.value == ua.StatusCodes.BadInvalidArgument
    assert [r.value for r in wrong_type.InputArgumentResults] == [ua.StatusCodes.BadTypeMismatch]
    assert refused.StatusCode.value == ua.StatusCodes.BadOutOfRange
    assert bug.StatusCode.value == ua.StatusCodes.BadInternalError
    assert ok.StatusCode.is_good() and bench.runs == [42.0]
    outcomes = [(e.outcome, e.status) for e in bench.audited]
    assert outcomes == [
        (AuditOutcome.REFUSED, "BadMethodInvalid"), (AuditOutcome.REFUSED, "BadArgumentsMissing"),
        (AuditOutcome.REFUSED, "BadTooManyArguments"), (AuditOutcome.REFUSED, "BadInvalidArgument"),
        (AuditOutcome.REFUSED, "BadOutOfRange"), (AuditOutcome.FAILED, "BadInternalError"),
        (AuditOutcome.ACCEPTED, "Good"),
    ]
    assert all(e.action == "call" and e.node == "reactor.control.SetTarget" for e in bench.audited)
    assert "missing target" in bench.audited[1].reason
    assert "got String, expected Double" in bench.audited[3].reason
    assert "above 100" in bench.audited[4].reason
    assert all(e.user == "anonymous" for e in bench.audited)


@pytest.mark.parametrize("user", ["alice", "Operator One"])
async def test_the_audit_names_the_user_who_called(user):
    async with method_server() as bench:
        client = Client(bench.url)
        client.set_user(user)
        client.set_password("irrelevant here")
        async with client:
            result = await _call(client, bench, ua.Variant(1.0, ua.VariantType.Double))
    assert result.StatusCode.is_good()
    assert [(e.user, e.role) for e in bench.audited] == [(user, "user")]
