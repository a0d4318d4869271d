"""A seeded fuzz of the twin's OPC UA services (issue 15): 1,050 malformed requests — writes of wrong types, sizes,
arrays, nulls and huge strings to real and unknown nodes and attributes, calls with wrong arguments to real and
bogus methods, history reads with bad details, times and continuation points, browses of bogus nodes — from
anonymous, viewer and operator sessions at once, against the live pilot line (virtual PLCs over Modbus, historian
and audit on).

What must hold: no traceback in the log; no commanded PLC register changed (the virtual PLCs' register images
before and after) and no node added or removed (the line's node set browsed before and after); a health probe (a
Read of ServerStatus and of a tag) answered every few hundred requests within a generous bound; the audit store
grows by a bounded amount per request, however large its value. The same seed sends the same requests.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import Client, ua

from tests.security_helpers import OPERATOR, Credentials, add_user, client_as, data_dir
from tests.twin_server.line_fixture import NAMESPACE, live_pilot_line
from twin_server.security.roles import Role

SEED = 15
REQUESTS_PER_SESSION = 350  # x 3 sessions = 1,050 requests
PROBE_EVERY = 100  # per session: a probe every ~100 requests of the 3 sessions
PROBE_BOUND_S = 10.0  # a bounded wait, not a speed assertion (one scan period is 0.1 s here)
AUDIT_BYTES_PER_REQUEST = 800
"""Each refused request is audited in bounded form (type, size, digest), whatever its size: 100 kB strings included,
1,050 requests grow the store by ~0.5 MB (10 MB before values were bounded)."""
VIEWER = Credentials("viewer", "viewer-test-password")
GARBAGE_TEXT = ("", "MPC", "Auto ", "manual\x00", "🙂", "null", "1e309", "' OR 1=1 --", "a" * 300)
AGGREGATES = [ua.NodeId(ua.ObjectIds.AggregateFunction_Average),
              ua.NodeId(ua.ObjectIds.AggregateFunction_Interpolative)]
CONDITION_METHODS = (ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge),
                     ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Confirm))


def _bad_variant(rng: random.Random) -> ua.Variant:
    """A value no node of the line accepts: wrong type, array, null, non-finite, far out of range, huge."""
    kind = rng.randrange(12)
    if kind == 0:
        return ua.Variant()
    if kind == 1:
        return ua.Variant(None, ua.VariantType.String)
    if kind == 2:
        return ua.Variant(rng.choice(GARBAGE_TEXT), ua.VariantType.String)
    if kind == 3:
        return ua.Variant("x" * rng.choice((1_000, 20_000, 100_000)), ua.VariantType.String)
    if kind == 4:
        return ua.Variant(rng.randbytes(rng.choice((1, 100, 20_000))), ua.VariantType.ByteString)
    if kind == 5:
        return ua.Variant([rng.uniform(-1e3, 1e3) for _ in range(rng.choice((0, 2, 500)))], ua.VariantType.Double)
    if kind == 6:
        return ua.Variant(rng.choice((math.nan, math.inf, -math.inf)), ua.VariantType.Double)
    if kind == 7:
        return ua.Variant(rng.choice((1e9, -1e9, 1e308, -1e308)), ua.VariantType.Double)
    if kind == 8:
        return ua.Variant(rng.choice((True, False)), ua.VariantType.Boolean)
    if kind == 9:
        return ua.Variant(datetime(1601, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(200_000)),
                          ua.VariantType.DateTime)
    if kind == 10:
        return ua.Variant(ua.LocalizedText(rng.choice(GARBAGE_TEXT)), ua.VariantType.LocalizedText)
    return ua.Variant([rng.choice(GARBAGE_TEXT) for _ in range(3)], ua.VariantType.String)


def _bad_time(rng: random.Random) -> datetime:
    """A time that is far off, unspecified (1601) or ordinary: one bad field at a time reaches deeper checks."""
    return rng.choice((datetime.now(UTC) - timedelta(hours=1), datetime(1601, 1, 1, tzinfo=UTC),
                       datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC),
                       datetime.now(UTC) + timedelta(days=rng.randrange(-10, 10))))


class Fuzzer:
    """The requests of one session, drawn from one seeded generator."""

    def __init__(self, client: Client, rng: random.Random, variables: list[ua.NodeId], objects: list[ua.NodeId],
                 methods: list[ua.NodeId], idx: int) -> None:
        self.client, self.rng, self.idx = client, rng, idx
        self.variables, self.objects, self.methods = variables, objects, methods
        self.answers: dict[str, int] = {}

    def _node(self, known: list[ua.NodeId]) -> ua.NodeId:
        rng = self.rng
        pick = rng.randrange(10)
        if pick < 6:
            return rng.choice(known)
        if pick == 6:
            return ua.NodeId(f"pilot_line.{rng.choice(GARBAGE_TEXT)}", self.idx)
        if pick == 7:
            return ua.NodeId(rng.randrange(1, 2**31), rng.choice((0, self.idx, 99)))
        if pick == 8:
            return ua.NodeId(rng.randbytes(16), self.idx, ua.NodeIdType.ByteString)
        return ua.NodeId(rng.choice(known).Identifier, 77)  # a real name in a namespace that does not exist

    async def write(self) -> None:
        rng = self.rng
        value = ua.DataValue(_bad_variant(rng))
        if rng.random() < 0.2:  # client timestamps and status on a write
            value = ua.DataValue(value.Value, StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure),
                                 SourceTimestamp=datetime(2000, 1, 1, tzinfo=UTC))
        attribute = rng.choice((ua.AttributeIds.Value,) * 6 + (ua.AttributeIds.DisplayName, ua.AttributeIds.BrowseName,
                                ua.AttributeIds.Description, ua.AttributeIds.AccessLevel, 999))
        params = ua.WriteParameters()
        params.NodesToWrite = [ua.WriteValue(NodeId=self._node(self.variables), AttributeId=attribute, Value=value)
                               for _ in range(rng.choice((1, 1, 1, 5)))]
        self._count(await self.client.uaclient.write(params))

    async def call(self) -> None:
        rng = self.rng
        method = self._node(self.methods + list(CONDITION_METHODS))
        args = [_bad_variant(rng) for _ in range(rng.randrange(1, 4))]  # real methods: never their right arguments
        request = ua.CallMethodRequest(ObjectId=self._node(self.objects), MethodId=method, InputArguments=args)
        self._count([r.StatusCode for r in await self.client.uaclient.call([request])])

    async def history_read(self) -> None:
        rng = self.rng
        kind = rng.randrange(4)
        if kind == 0:
            details = ua.ReadRawModifiedDetails(IsReadModified=rng.random() < 0.3, StartTime=_bad_time(rng),
                                                EndTime=_bad_time(rng),
                                                NumValuesPerNode=rng.choice((0, 1, 2**32 - 1)),
                                                ReturnBounds=rng.random() < 0.5)
        elif kind == 1:
            details = ua.ReadProcessedDetails(StartTime=_bad_time(rng), EndTime=_bad_time(rng),
                                              ProcessingInterval=rng.choice((math.nan, -1.0, 0.0, 1e308, math.inf)),
                                              AggregateType=[rng.choice(AGGREGATES + [self._node(self.variables)])])
        elif kind == 2:
            details = ua.ReadAtTimeDetails(ReqTimes=[_bad_time(rng)
                                                     for _ in range(rng.choice((0, 1, 50)))])
        else:
            details = ua.ReadEventDetails(NumValuesPerNode=rng.choice((0, 5)), StartTime=_bad_time(rng),
                                          EndTime=_bad_time(rng), Filter=ua.EventFilter())
        params = ua.HistoryReadParameters()
        params.HistoryReadDetails = details
        params.TimestampsToReturn = rng.choice(list(ua.TimestampsToReturn))
        params.NodesToRead = [ua.HistoryReadValueId(NodeId=self._node(self.variables + self.objects),
                                                    ContinuationPoint=rng.choice((None, b"", rng.randbytes(24))))]
        self._count([r.StatusCode for r in await self.client.uaclient.history_read(params)])

    async def browse(self) -> None:
        rng = self.rng
        if rng.random() < 0.3:
            params = ua.BrowseNextParameters()
            params.ContinuationPoints = [rng.randbytes(rng.choice((0, 8, 64)))]
            params.ReleaseContinuationPoints = rng.random() < 0.5
            self._count([r.StatusCode for r in await self.client.uaclient.browse_next(params)])
            return
        description = ua.BrowseDescription(
            NodeId=self._node(self.objects), BrowseDirection=rng.choice(list(ua.BrowseDirection)),
            ReferenceTypeId=rng.choice((ua.NodeId(ua.ObjectIds.HierarchicalReferences), ua.NodeId(123_456, 0),
                                        ua.NodeId("no_such_reference", self.idx))),
            IncludeSubtypes=rng.random() < 0.5, NodeClassMask=rng.randrange(0, 2**16), ResultMask=rng.randrange(64))
        params = ua.BrowseParameters()
        params.NodesToBrowse = [description]
        params.RequestedMaxReferencesPerNode = rng.choice((0, 1, 2**32 - 1))
        self._count([r.StatusCode for r in await self.client.uaclient.browse(params)])

    def _count(self, codes: list[ua.StatusCode]) -> None:
        for code in codes:
            name = code.name
            self.answers[name] = self.answers.get(name, 0) + 1

    async def run(self, n: int, probe: Callable[[], Awaitable[None]]) -> None:
        kinds = (self.write, self.write, self.call, self.history_read, self.browse)
        for i in range(n):
            try:
                await self.rng.choice(kinds)()
            except ua.UaStatusCodeError as exc:  # a service-level refusal (the whole request): an answer too
                self.answers[type(exc).__name__] = self.answers.get(type(exc).__name__, 0) + 1
            if (i + 1) % PROBE_EVERY == 0:
                await probe()


async def _node_set(client: Client, root: ua.NodeId) -> set[tuple[str, int]]:
    """Every node under ``root`` (hierarchical references), as (node id, node class)."""
    seen: set[tuple[str, int]] = set()
    todo = [client.get_node(root)]
    while todo:
        node = todo.pop()
        for ref in await node.get_references(refs=ua.ObjectIds.HierarchicalReferences,
                                             direction=ua.BrowseDirection.Forward):
            key = (ref.NodeId.to_string(), ref.NodeClass.value)
            if key not in seen:
                seen.add(key)
                todo.append(client.get_node(ref.NodeId))
    return seen


def _commanded_image(line) -> dict[str, float]:
    """Every commanded tag's value in the virtual PLCs' register images."""
    return {f"{unit.name}.{tag.name}": line.bench.plc(unit.name).read_tag(tag.name)
            for unit in line.config.units for tag in unit.tags if tag.direction.value == "commanded"}


def _audit_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("audit.sqlite*"))


@pytest.mark.slow
async def test_malformed_requests_from_every_role_change_nothing_and_crash_nothing(caplog):
    add_user(VIEWER.user, Role.VIEWER, VIEWER.password)
    caplog.set_level(logging.WARNING)
    async with live_pilot_line(scan_period_s=0.1, speed=20.0) as line, client_as(line.url, OPERATOR) as watcher:
        idx = await watcher.get_namespace_index(NAMESPACE)
        root = ua.NodeId("pilot_line", idx)
        nodes_before = await _node_set(watcher, root)
        in_order = sorted(nodes_before)  # the same seed picks the same nodes, whatever the set's hash order
        variables = [ua.NodeId.from_string(n) for n, c in in_order if c == ua.NodeClass.Variable.value]
        objects = [root] + [ua.NodeId.from_string(n) for n, c in in_order if c == ua.NodeClass.Object.value]
        methods = [ua.NodeId.from_string(n) for n, c in in_order if c == ua.NodeClass.Method.value]
        assert len(variables) > 50 and methods, "the line's nodes were browsed"
        tag = watcher.get_node(ua.NodeId("pilot_line.feed_tank.level", idx))
        status = watcher.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_State))
        probes: list[float] = []

        async def probe() -> None:
            started = asyncio.get_running_loop().time()
            await asyncio.wait_for(asyncio.gather(status.read_value(), tag.read_data_value(raise_on_bad_status=False)),
                                   timeout=PROBE_BOUND_S)
            probes.append(asyncio.get_running_loop().time() - started)

        image_before = _commanded_image(line)
        audit_before = _audit_bytes(data_dir())
        rng = random.Random(SEED)
        async with client_as(line.url, None) as anonymous, client_as(line.url, VIEWER) as viewer, \
                client_as(line.url, OPERATOR) as operator:
            fuzzers = [Fuzzer(c, random.Random(rng.random()), variables, objects, methods, idx)
                       for c in (anonymous, viewer, operator)]
            await asyncio.gather(*(f.run(REQUESTS_PER_SESSION, probe) for f in fuzzers))
            await probe()  # the sessions that sent all this are still served
            assert await anonymous.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_State)).read_value() == 0

        assert _commanded_image(line) == image_before, "a malformed request changed a PLC setpoint"
        assert await _node_set(watcher, root) == nodes_before, "a malformed request changed the address space"
        growth = _audit_bytes(data_dir()) - audit_before
        assert growth < AUDIT_BYTES_PER_REQUEST * 3 * REQUESTS_PER_SESSION, f"the audit store grew by {growth} bytes"

    answers: dict[str, int] = {}
    for f in fuzzers:
        for name, n in f.answers.items():
            answers[name] = answers.get(name, 0) + n
    assert sum(answers.values()) >= 3 * REQUESTS_PER_SESSION, answers
    assert answers.get("Good", 0) < sum(answers.values()) // 4, f"most malformed requests must be refused: {answers}"
    assert len(probes) == 3 * (REQUESTS_PER_SESSION // PROBE_EVERY) + 1
    crashes = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not crashes, "\n".join(f"{r.name}: {r.getMessage()[:300]}" for r in crashes[:10])
