"""Mirror path (issue 20): throughput against a bare asyncua server, the cost of encryption, a 10,000-tag line at a
1 s scan, and the start-up time of large lines.

The twin runs as shipped: history on, a limit alarm on every tag, roles and its default endpoints (signed and
encrypted); the subscribing client logs in as an operator over Basic256Sha256/SignAndEncrypt with its own
application certificate (trusted in the twin's PKI). The "outside world" — the Modbus PLC (a real pymodbus server)
and the subscribing client — runs in a second process, so the benchmark process holds only the server under test:
the twin, or the bare asyncua server that only writes values into as many variables (no PLC, no decoding, no
history, alarms or roles) over the same security policy: the ceiling. Figures measured one after the other in the
same run are compared as ratios; the load average of the machine is recorded with them.

Sections (each printed as a table and written to ``benchmarks/results/mirror_throughput.json`` or ``--out``):

1. **Throughput, every value changing** (``--tags``): the PLC changes every value every 50 ms, the twin scans every
   ``--scan-period`` s; twin values published per second and notifications per second to one client subscribed to
   every tag, against the bare server writing flat out (target: ratio ≥ 0.9). Also with the PLC on OPC UA (an
   asyncua server playing the PLC, in the benchmark process; the twin's OPC UA adapter subscribes to every node).
2. **Encryption**: the twin's notifications per second to a client on Basic256Sha256/SignAndEncrypt against one on
   SecurityPolicy None right after it, on the same twin (started with ``allow_none`` for this; the first ``--tags``
   line of section 1) (target ≥ 0.95).
3. **A 10,000-tag line at a 1 s scan, 10 % of values changing per scan** (``--line-tags``, ``--change-fraction``):
   scans, overruns, CPU of the benchmark process (the twin alone) in % of one core over ``--line-seconds`` (target
   < 50 %, no overrun).
4. **Start-up** (``--startup-tags``): seconds from ``TwinServer.start()`` called to serving, and the CPU seconds
   it took, for lines of 1,000 / 5,000 / 10,000 tags in one unit, with history, a limit alarm on every tag and roles,
   each in a fresh process (target < 5 s at 10,000).

Usage: ``.venv/bin/python benchmarks/mirror_throughput.py [--tags 1000 10000] [--seconds 5] [--scan-period 0.05]
[--line-tags 10000] [--line-seconds 20] [--startup-tags 1000 5000 10000] [--smoke] [--out PATH]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing
import os
import platform
import resource
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from asyncua import Client, Server, ua
from asyncua.crypto import cert_gen
from cryptography.x509.oid import ExtendedKeyUsageOID
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from plc_adapters.asyncua_seam import address_space, init_server, stop_server  # noqa: E402
from plc_adapters.opcua_spec import NodeAddress, OpcUaConnection, OpcUaTagSpec  # noqa: E402
from plc_adapters.tag_map import DataType, Direction, ModbusConnection, Range, RegisterTable, TagSpec  # noqa: E402
from tests.ports import free_tcp_port  # noqa: E402
from tests.security_helpers import CertificatePair, Credentials, make_certificate  # noqa: E402
from twin_server.alarms.alarm_config import UnitAlarmConfig  # noqa: E402
from twin_server.alarms.limits import LimitAlarmConfig  # noqa: E402
from twin_server.config import LineConfig, ServerConfig, UnitConfig  # noqa: E402
from twin_server.security.pki import trust_certificate  # noqa: E402
from twin_server.security.roles import Role  # noqa: E402
from twin_server.security.settings import SecuritySettings  # noqa: E402
from twin_server.security.users_file import UsersFile  # noqa: E402
from twin_server.server import TwinServer  # noqa: E402

POLICY = "Basic256Sha256"
"""The channel of every measurement but the None one: Basic256Sha256, SignAndEncrypt (a default policy of the twin)."""
OPERATOR = Credentials("operator", "bench-operator-password")
HIGH_LIMIT = 1e8
"""Every bench tag's High alarm limit (values stay below it: the alarm is evaluated, never raised)."""


@dataclass
class Pacing:
    warm_up_s: float = 1.0
    """before each measurement window (initial values delivered); 0.2 s in a smoke run"""
    plc_change_period_s: float = 0.05
    """how often the PLC changes its values in the throughput section"""


pacing = Pacing()


@dataclass(frozen=True)
class ClientSpec:
    """How the subscribing client (in the outside-world process) connects: plain data, sent through a pipe."""

    url: str
    node_ids: list[str]
    secure: bool
    certificate: str
    private_key: str
    application_uri: str
    user: str = OPERATOR.user
    password: str = OPERATOR.password


@dataclass(frozen=True)
class BenchSecurity:
    """A data dir with a users file (one operator) and the client's application certificate."""

    data_dir: Path
    app: CertificatePair
    """the client's application certificate"""

    @classmethod
    def create(cls) -> BenchSecurity:
        data_dir = Path(tempfile.mkdtemp(prefix="linetwin-bench-"))
        users = UsersFile(data_dir / "users.toml")
        users.add(OPERATOR.user, Role.OPERATOR, OPERATOR.password)
        users.save()
        return cls(data_dir, make_certificate(data_dir / "client", "bench-client"))

    def client_spec(self, url: str, node_ids: list[ua.NodeId], secure: bool = True) -> ClientSpec:
        return ClientSpec(url, [n.to_string() for n in node_ids], secure, str(self.app.certificate),
                          str(self.app.private_key), self.app.application_uri)

    def twin_config(self, scan_period_s: float, unit: UnitConfig, allow_none: bool = False) -> LineConfig:
        """The bench line as shipped (default endpoints and policies; SecurityPolicy None too with
        ``allow_none``), a High limit alarm on every tag, its data in this data dir."""
        port = free_tcp_port()
        alarms = UnitAlarmConfig(limits={t.name: LimitAlarmConfig(high=HIGH_LIMIT) for t in unit.tags})
        return LineConfig(
            name="bench", description="", scan_period_s=scan_period_s,
            server=ServerConfig(endpoint=f"opc.tcp://127.0.0.1:{port}/bench/", namespace="urn:linetwin:bench"),
            units=(replace(unit, alarms=alarms),),
            security=SecuritySettings(data_dir=self.data_dir, allow_none=allow_none))

    async def start_twin(self, config: LineConfig) -> TwinServer:
        twin = TwinServer(config, data_dir=self.data_dir / "line")  # history and twin.pid here too, never in $HOME
        await twin.start()
        trust_certificate(twin.security.pki, self.app.certificate)
        return twin

    async def bare_server(self, path: str) -> Server:
        """A bare asyncua server (not started) serving ``POLICY``/SignAndEncrypt with its own certificate."""
        server = Server()
        await init_server(server)
        server.set_endpoint(f"opc.tcp://127.0.0.1:{free_tcp_port()}/{path}/")
        uri = f"urn:linetwin-bench:{path}"
        await server.set_application_uri(uri)
        pki = self.data_dir / f"bare-{path}"
        pki.mkdir(parents=True, exist_ok=True)
        await cert_gen.setup_self_signed_certificate(
            pki / "key.pem", pki / "cert.der", uri, socket.gethostname(),
            [ExtendedKeyUsageOID.SERVER_AUTH], {"organizationName": "linetwin bench"})
        await server.load_certificate(str(pki / "cert.der"))
        await server.load_private_key(str(pki / "key.pem"))
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        return server


# --- the outside world: the Modbus PLC and the subscribing client, in a second process ---------------------

def _registers(values: np.ndarray) -> list[int]:
    """float32 values → their big-endian registers (the twin's default float32 layout), two per value."""
    return values.astype(">f4").view(">u2").astype(np.int64).tolist()


class _Counter:
    """asyncua subscription handler counting data-change notifications."""

    def __init__(self) -> None:
        self.count = 0

    def datachange_notification(self, node: object, val: object, data: object) -> None:
        self.count += 1

    def status_change_notification(self, status: object) -> None:
        pass


async def _outside_world(conn: Connection, n_tags: int, change_fraction: float, change_period_s: float) -> None:
    """Serve ``n_tags`` float32 input registers (0 tags: no PLC) whose values change, ``change_fraction`` of them
    every ``change_period_s`` (a rotating subset); answer the benchmark's requests on ``conn``:
    ``("subscribe", ClientSpec)``, ``("count",)``, ``("unsubscribe",)``, ``("stop",)``."""
    loop = asyncio.get_running_loop()
    server: ModbusTcpServer | None = None
    port = 0
    changer: asyncio.Task | None = None
    if n_tags:
        simdata = ([SimData(0, values=[False] * 16, datatype=SimDataType.BITS)],
                   [SimData(0, values=[False] * 16, datatype=SimDataType.BITS)],
                   [SimData(0, values=[0] * 16, datatype=SimDataType.REGISTERS)],
                   [SimData(0, values=[0] * (2 * n_tags + 2), datatype=SimDataType.REGISTERS)])
        server = ModbusTcpServer(SimDevice(id=0, simdata=simdata), address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        port = server.transport.sockets[0].getsockname()[1]
        values = np.arange(n_tags, dtype=np.float64)
        per_round = max(1, math.ceil(change_fraction * n_tags))

        async def change_values() -> None:
            start = 0
            while True:
                subset = (start + np.arange(per_round)) % n_tags
                values[subset] += 1.0
                start = (start + per_round) % n_tags
                await server.context.async_setValues(1, 4, 0, _registers(values))  # function code 4: input regs
                await asyncio.sleep(change_period_s)

        await server.context.async_setValues(1, 4, 0, _registers(values))
        changer = asyncio.create_task(change_values())
    conn.send(port)
    client: Client | None = None
    counter = _Counter()

    async def disconnect() -> None:
        if client is not None:
            try:
                await client.disconnect()
            except Exception:  # noqa: BLE001 - the server may be gone already: nothing to close
                pass

    while True:
        message = await loop.run_in_executor(None, conn.recv)
        if message[0] == "subscribe":
            spec: ClientSpec = message[1]
            client = Client(spec.url, timeout=60, watchdog_intervall=3600.0)
            client.set_user(spec.user)
            client.set_password(spec.password)
            client.application_uri = spec.application_uri
            if spec.secure:
                await client.set_security_string(f"{POLICY},SignAndEncrypt,{spec.certificate},{spec.private_key}")
            await client.connect()
            sub = await client.create_subscription(100, counter)
            for i in range(0, len(spec.node_ids), 1000):
                await sub.subscribe_data_change([client.get_node(n) for n in spec.node_ids[i:i + 1000]])
            conn.send("subscribed")
        elif message[0] == "count":
            conn.send(counter.count)
        elif message[0] == "unsubscribe":
            await disconnect()
            client, counter = None, _Counter()
            conn.send("unsubscribed")
        else:
            break
    await disconnect()
    if changer is not None:
        changer.cancel()
    if server is not None:
        await server.shutdown()
    conn.send("stopped")


def _outside_world_main(conn: Connection, n_tags: int, change_fraction: float, change_period_s: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_outside_world(conn, n_tags, change_fraction, change_period_s))


class OutsideWorld:
    """The second process: a PLC with ``n_tags`` changing values (0: none) and a subscribing client."""

    def __init__(self, n_tags: int, change_fraction: float = 1.0, change_period_s: float = 0.05) -> None:
        parent, child = multiprocessing.get_context("spawn").Pipe()
        self._conn = parent
        self._process = multiprocessing.get_context("spawn").Process(
            target=_outside_world_main, args=(child, n_tags, change_fraction, change_period_s), daemon=True)
        self._process.start()
        self.port = 0

    async def _ask(self, *message: Any, timeout_s: float = 300.0) -> Any:
        self._conn.send(message)
        return await asyncio.wait_for(asyncio.to_thread(self._conn.recv), timeout_s)

    async def started(self) -> int:
        self.port = await asyncio.wait_for(asyncio.to_thread(self._conn.recv), 120.0)
        return self.port

    async def subscribe(self, spec: ClientSpec) -> None:
        assert await self._ask("subscribe", spec) == "subscribed"

    async def unsubscribe(self) -> None:
        assert await self._ask("unsubscribe") == "unsubscribed"

    async def notifications(self) -> int:
        return int(await self._ask("count"))

    async def stop(self) -> None:
        try:
            await self._ask("stop", timeout_s=60.0)
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()


# --- measurements ------------------------------------------------------------------------------------------

def _tags(n: int) -> tuple[TagSpec, ...]:
    return tuple(
        TagSpec(name=f"tag_{i:05d}", direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(-1e9, 1e9),
                table=RegisterTable.INPUT, address=2 * i, data_type=DataType.FLOAT32)
        for i in range(n)
    )


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far, every thread (the historian's writer included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Window:
    """One measurement window: wall seconds, CPU seconds of this process, notifications counted by the client."""

    wall_s: float
    cpu_s: float
    notifications: int

    @property
    def notifications_per_s(self) -> float:
        return self.notifications / self.wall_s

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s


async def _window(world: OutsideWorld, seconds: float, counters: dict[str, Any]) -> tuple[Window, dict[str, float]]:
    """Measure ``seconds``: the client's notifications, this process's CPU, and the growth per second of each
    counter (name → zero-argument callable)."""
    await asyncio.sleep(pacing.warm_up_s)  # benchmark pacing: initial values delivered, not test synchronisation
    n0, c0, t0 = await world.notifications(), _cpu_s(), time.perf_counter()
    before = {k: f() for k, f in counters.items()}
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - t0
    after = {k: f() for k, f in counters.items()}
    n1 = await world.notifications()
    window = Window(wall, _cpu_s() - c0, n1 - n0)
    return window, {k: (after[k] - before[k]) / wall for k in counters}


async def measure_twin(n: int, seconds: float, scan_period_s: float, security: BenchSecurity, *,
                       change_fraction: float = 1.0, change_period_s: float | None = None,
                       also_none: bool = False) -> dict:
    """The twin mirroring ``n`` Modbus tags, its client on SignAndEncrypt; with ``also_none`` the twin offers
    SecurityPolicy None too and, right after, a client on None is measured the same way (``"none"`` in the
    result)."""
    world = OutsideWorld(n, change_fraction, change_period_s or pacing.plc_change_period_s)
    try:
        port = await world.started()
        config = security.twin_config(scan_period_s, UnitConfig(
            name="unit", kind="mixing_tank", description="", model={}, plant={},
            connection=ModbusConnection("127.0.0.1", port, timeout_s=5.0), tags=_tags(n)), allow_none=also_none)
        twin = await security.start_twin(config)
        try:
            assert twin.runtime is not None and twin.space is not None
            health = twin.runtime.health["unit"]
            adapter = twin.runtime.adapters["unit"]
            node_ids = [t.node_id for t in twin.space.tag_nodes.values()]
            counters = {"values_published_per_s": lambda: health.values_published,
                        "samples_mirrored_per_s": lambda: health.samples_mirrored}
            await world.subscribe(security.client_spec(twin.endpoint, node_ids, secure=True))
            overruns0, scans0 = adapter.stats.overruns, adapter.stats.scans
            window, rates = await _window(world, seconds, counters)
            stats = adapter.stats
            result = {"tags": n, **rates, "notifications_per_s": window.notifications_per_s,
                      "cpu_percent_of_one_core": window.cpu_percent, "scans": stats.scans - scans0,
                      "overruns": stats.overruns - overruns0, "read_requests_per_scan": stats.read_requests_per_scan,
                      "last_scan_duration_s": stats.last_scan_duration_s, "bad_samples": health.bad_samples,
                      "seconds": window.wall_s}
            if also_none:
                await world.unsubscribe()
                await world.subscribe(security.client_spec(twin.endpoint, node_ids, secure=False))
                window, rates = await _window(world, seconds, counters)
                result["none"] = {**rates, "notifications_per_s": window.notifications_per_s,
                                  "cpu_percent_of_one_core": window.cpu_percent, "seconds": window.wall_s}
            await world.unsubscribe()  # the client leaves before the server stops
            return result
        finally:
            await twin.stop()
    finally:
        await world.stop()


async def measure_bare(n: int, seconds: float, security: BenchSecurity) -> dict:
    """The ceiling: a bare asyncua server writing ``n`` Double variables flat out (yielding every 250 writes, as the
    twin's scan does), the same subscribed client."""
    server = await security.bare_server("bare")
    idx = await server.register_namespace("urn:bare")
    folder = await server.nodes.objects.add_object(idx, "bare")
    nodes = [await folder.add_variable(ua.NodeId(f"v{i}", idx), f"v{i}", 0.0) for i in range(n)]
    await server.start()
    written = 0
    stop = asyncio.Event()

    async def writer() -> None:
        nonlocal written
        k = 0
        write = address_space(server).write  # asyncua's write_attribute_value, as the bare server's own write
        while not stop.is_set():
            k += 1
            now = datetime.now(UTC)
            for i, node in enumerate(nodes):
                dv = ua.DataValue(ua.Variant(float(k + i), ua.VariantType.Double), SourceTimestamp=now)
                await write(node.nodeid, ua.AttributeIds.Value, dv)
                written += 1
                if i % 250 == 249:
                    await asyncio.sleep(0)  # let the server answer its clients, as the twin's scan loop does
            await asyncio.sleep(0)

    world = OutsideWorld(0)
    task = asyncio.create_task(writer())
    try:
        await world.started()
        spec = security.client_spec(server.endpoint.geturl(), [x.nodeid for x in nodes])
        await world.subscribe(replace(spec, user="", password=""))
        window, rates = await _window(world, seconds, {"values_published_per_s": lambda: written})
        await world.unsubscribe()
        return {"tags": n, **rates, "notifications_per_s": window.notifications_per_s,
                "cpu_percent_of_one_core": window.cpu_percent, "seconds": window.wall_s}
    finally:
        stop.set()
        await task
        await world.stop()
        await stop_server(server)


PLC_URI = "http://linetwin.example/bench-plc"


async def _opcua_peer(n: int) -> tuple[Server, asyncio.Task, asyncio.Event, int]:
    """An asyncua server playing a PLC: n Float nodes ``"DB_Bench"."v<i>"`` rewritten in rounds every 50 ms (in this
    process: its cost counts against the twin)."""
    port = free_tcp_port()
    server = Server()
    await init_server(server)
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(PLC_URI)
    folder = await server.nodes.objects.add_object(idx, "DB_Bench")
    node_ids = []
    for i in range(n):
        node = await folder.add_variable(ua.NodeId(f'"DB_Bench"."v{i}"', idx), f"v{i}", 0.0, ua.VariantType.Float)
        node_ids.append(node.nodeid)
    await server.start()
    stop = asyncio.Event()

    async def change_values() -> None:
        k = 0
        write = address_space(server).write
        while not stop.is_set():
            k += 1
            now = datetime.now(UTC)
            for i, node_id in enumerate(node_ids):
                dv = ua.DataValue(ua.Variant(float(k + i), ua.VariantType.Float), SourceTimestamp=now)
                await write(node_id, ua.AttributeIds.Value, dv)
                if i % 250 == 249:
                    await asyncio.sleep(0)
            await asyncio.sleep(pacing.plc_change_period_s)

    return server, asyncio.create_task(change_values()), stop, port


async def measure_twin_opcua(n: int, seconds: float, scan_period_s: float, security: BenchSecurity) -> dict:
    plc, task, stop, plc_port = await _opcua_peer(n)
    tags = tuple(OpcUaTagSpec(name=f"tag_{i:05d}", direction=Direction.MEASURED, unit_code="CEL",
                              eu_range=Range(-1e9, 1e9), node=NodeAddress(PLC_URI, f's="DB_Bench"."v{i}"'))
                 for i in range(n))
    config = security.twin_config(scan_period_s, UnitConfig(
        name="unit", kind="mixing_tank", description="", model={}, plant={},
        connection=OpcUaConnection("127.0.0.1", plc_port, timeout_s=30.0), tags=tags))
    world = OutsideWorld(0)
    twin = await security.start_twin(config)
    try:
        await world.started()
        assert twin.runtime is not None and twin.space is not None
        health = twin.runtime.health["unit"]
        adapter = twin.runtime.adapters["unit"]
        deadline = time.perf_counter() + 120.0
        while not (adapter.connected and health.samples_mirrored >= n) and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)  # benchmark pacing: wait for the subscriptions' initial values
        await world.subscribe(security.client_spec(twin.endpoint, [t.node_id for t in twin.space.tag_nodes.values()]))
        window, rates = await _window(world, seconds, {"values_published_per_s": lambda: health.values_published,
                                                       "samples_mirrored_per_s": lambda: health.samples_mirrored})
        await world.unsubscribe()
        stats = adapter.stats
        return {"tags": n, **rates, "notifications_per_s": window.notifications_per_s,
                "subscriptions": stats.subscriptions, "publishes": stats.publishes, "outages": stats.outages,
                "bad_samples": health.bad_samples}
    finally:
        await twin.stop()
        await world.stop()
        stop.set()
        task.cancel()
        await stop_server(plc)


async def measure_startup(n: int, security: BenchSecurity) -> dict:
    """Seconds of ``TwinServer.start()`` for an ``n``-tag unit (history, alarms, roles; no PLC answers)."""
    config = security.twin_config(1.0, UnitConfig(
        name="unit", kind="mixing_tank", description="", model={}, plant={},
        connection=ModbusConnection("127.0.0.1", free_tcp_port(), timeout_s=1.0), tags=_tags(n)))
    twin = TwinServer(config, data_dir=security.data_dir / f"startup-{n}")
    c0, t0 = _cpu_s(), time.perf_counter()
    await twin.start()
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    assert twin.space is not None
    nodes = len(twin.space.tag_nodes)
    await twin.stop()
    return {"tags": n, "start_s": wall, "start_cpu_s": cpu, "tag_nodes": nodes}


def _load() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


async def main_async(args: argparse.Namespace) -> dict:
    security = BenchSecurity.create()
    out: dict[str, Any] = {"throughput": [], "encryption": None, "line": None, "startup": []}
    for n in args.tags if "throughput" in args.sections else ():
        print(f"[1] {n} tags, every value changing: twin, bare ceiling, twin with an OPC UA PLC ...", file=sys.stderr,
              flush=True)
        load0 = _load()
        twin = await measure_twin(n, args.seconds, args.scan_period, security, also_none=n == args.tags[0])
        bare = await measure_bare(n, args.seconds, security)
        twin_opcua = await measure_twin_opcua(n, args.seconds, args.scan_period, security)
        out["throughput"].append({
            "tags": n, "twin": twin, "bare_asyncua": bare, "twin_opcua": twin_opcua, "load_average": [load0, _load()],
            "value_ratio": twin["values_published_per_s"] / bare["values_published_per_s"],
            "notification_ratio": twin["notifications_per_s"] / bare["notifications_per_s"],
            "opcua_value_ratio": twin_opcua["values_published_per_s"] / bare["values_published_per_s"],
            "opcua_notification_ratio": twin_opcua["notifications_per_s"] / bare["notifications_per_s"]})
    if out["throughput"]:
        first = out["throughput"][0]
        encrypted, plain = first["twin"], first["twin"]["none"]
        out["encryption"] = {"tags": first["tags"], "sign_and_encrypt": encrypted["notifications_per_s"],
                             "none": plain["notifications_per_s"], "load_average": first["load_average"],
                             "ratio": encrypted["notifications_per_s"] / plain["notifications_per_s"]}
    if "line" in args.sections:
        out["line"] = await _line(args, security)
    for n in args.startup_tags if "startup" in args.sections else ():
        print(f"[4] start-up of a {n}-tag line (a fresh process) ...", file=sys.stderr, flush=True)
        out["startup"].append({**await _startup_in_fresh_process(n, security), "load_average": _load()})
    return out


async def _startup_in_fresh_process(n: int, security: BenchSecurity) -> dict:
    """:func:`measure_startup` in a new interpreter (as a plant starts a line: no earlier line's objects in memory,
    no warm caches), with this run's data dir; its one JSON line back."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--startup-child", str(n), str(security.data_dir), stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    stdout, _ = await process.communicate()
    lines = [ln for ln in stdout.decode().splitlines() if ln.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"start-up of a {n}-tag line failed (exit {process.returncode})")
    return json.loads(lines[-1])


def _startup_child(n: int, data_dir: Path) -> None:
    logging.basicConfig(level=logging.ERROR)
    app = CertificatePair(data_dir / "client" / "bench-client.der", data_dir / "client" / "bench-client_key.pem",
                          "urn:linetwin:bench-client")  # not used by a start-up
    print(json.dumps(asyncio.run(measure_startup(n, BenchSecurity(data_dir, app)))))


async def _line(args: argparse.Namespace, security: BenchSecurity) -> dict:
    print(f"[3] {args.line_tags} tags at a {args.line_scan_period} s scan, {args.change_fraction:.0%} changing ...",
          file=sys.stderr, flush=True)
    load0 = _load()
    line = await measure_twin(args.line_tags, args.line_seconds, args.line_scan_period, security,
                              change_fraction=args.change_fraction, change_period_s=args.line_scan_period)
    return {**line, "scan_period_s": args.line_scan_period, "change_fraction": args.change_fraction,
            "load_average": [load0, _load()]}


def print_tables(args: argparse.Namespace, out: dict) -> None:
    if out["throughput"]:
        _print_throughput(args, out)
    _print_others(out)


def _print_throughput(args: argparse.Namespace, out: dict) -> None:
    print(f"\n[1] every value changing: scan period {args.scan_period} s, PLC changing every value every "
          f"{pacing.plc_change_period_s} s, {args.seconds} s per measurement, {POLICY}/SignAndEncrypt, operator login")
    print(f"{'tags':>6} | {'PLC':>6} | {'twin values/s':>13} | {'bare writes/s':>13} | {'ratio':>5} | "
          f"{'twin notif/s':>12} | {'bare notif/s':>12} | {'ratio':>5} | {'twin CPU %':>10} | load")
    for r in out["throughput"]:
        bare = r["bare_asyncua"]
        for source, twin, value_ratio, notif_ratio in (
                ("Modbus", r["twin"], r["value_ratio"], r["notification_ratio"]),
                ("OPC UA", r["twin_opcua"], r["opcua_value_ratio"], r["opcua_notification_ratio"])):
            cpu = twin.get("cpu_percent_of_one_core")
            print(f"{r['tags']:>6} | {source:>6} | {twin['values_published_per_s']:>13,.0f} | "
                  f"{bare['values_published_per_s']:>13,.0f} | {value_ratio:>5.2f} | "
                  f"{twin['notifications_per_s']:>12,.0f} | {bare['notifications_per_s']:>12,.0f} | "
                  f"{notif_ratio:>5.2f} | {'-' if cpu is None else f'{cpu:.0f}':>10} | {r['load_average']}")


def _print_others(out: dict) -> None:
    e = out["encryption"]
    if e is not None:
        print(f"\n[2] the twin's notifications/s, {e['tags']} tags, one client after the other on the same twin: "
              f"SignAndEncrypt {e['sign_and_encrypt']:,.0f}, None {e['none']:,.0f}, ratio {e['ratio']:.2f}")
    line = out["line"]
    if line is not None:
        print(f"\n[3] {line['tags']} tags, scan {line['scan_period_s']} s, {line['change_fraction']:.0%} changing per "
              f"scan, {line['seconds']:.0f} s: {line['scans']} scans, {line['overruns']} overruns, last scan "
              f"{line['last_scan_duration_s'] * 1000:.0f} ms, {line['values_published_per_s']:,.0f} values/s, "
              f"{line['notifications_per_s']:,.0f} notifications/s, CPU {line['cpu_percent_of_one_core']:.0f} % of "
              f"one core (load {line['load_average']})")
    if out["startup"]:
        print("\n[4] start-up: " + ", ".join(f"{s['tags']:,} tags {s['start_s']:.1f} s (CPU {s['start_cpu_s']:.1f} s)"
                                          for s in out["startup"]))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--startup-child":
        _startup_child(int(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tags", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--scan-period", type=float, default=0.05, help="twin scan period in s (default 0.05)")
    parser.add_argument("--line-tags", type=int, default=10000)
    parser.add_argument("--line-seconds", type=float, default=20.0)
    parser.add_argument("--line-scan-period", type=float, default=1.0)
    parser.add_argument("--change-fraction", type=float, default=0.1)
    parser.add_argument("--startup-tags", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--sections", nargs="+", choices=["throughput", "line", "startup"],
                        default=["throughput", "line", "startup"], help="which sections to run (default: all)")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.tags, args.seconds, pacing.warm_up_s = [20], 0.5, 0.2
        args.line_tags, args.line_seconds, args.line_scan_period, args.startup_tags = 50, 1.0, 0.2, [50]
    logging.basicConfig(level=logging.ERROR)
    out = asyncio.run(main_async(args))
    print_tables(args, out)
    write_results(args, "mirror_throughput",
                  {"machine": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                   "security": f"{POLICY}/SignAndEncrypt, user name login (operator)",
                   "scan_period_s": args.scan_period, "seconds": args.seconds, **out})


if __name__ == "__main__":
    main()
