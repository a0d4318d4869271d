"""Mirror throughput: Modbus → OPC UA and OPC UA → OPC UA tags per second, and notifications per second to one client.

For 1,000 and 10,000 float32 tags on one Modbus unit (a real pymodbus server on 127.0.0.1 whose
registers change continuously), the twin's runtime polls, decodes and mirrors every tag into the
address space; one asyncua client subscribes to every tag and counts data-change notifications.
The same figures are measured with the PLC on OPC UA (an asyncua server playing the PLC, with string node ids in a
vendor namespace, every value changing continuously; the twin's OPC UA adapter subscribes to every node). The same
two figures are measured for a bare asyncua server that only writes values into the same
number of variables (no Modbus, no decoding): the ceiling. Printed as a table with the ratio, and
written to ``benchmarks/results/mirror_throughput.json`` (or ``--out``).

The twin runs as shipped: its default endpoints (signed and encrypted, no SecurityPolicy None), and the
subscribing client logs in as an operator over Basic256Sha256/SignAndEncrypt with its own application certificate
(trusted in the twin's PKI); the bare asyncua ceiling serves and is read over the same policy, so the ratio
compares like with like.

Everything runs in one process and one event loop (server, client and Modbus peer share the CPU),
so figures are comparable between the twin and the ceiling, not absolute capacities.

Usage: ``.venv/bin/python benchmarks/mirror_throughput.py [--tags 1000 10000] [--seconds 5] [--smoke] [--out PATH]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Client, Server, ua
from asyncua.crypto import cert_gen
from cryptography.x509.oid import ExtendedKeyUsageOID
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from plc_adapters.modbus_codec import encode  # noqa: E402
from plc_adapters.opcua_spec import NodeAddress, OpcUaConnection, OpcUaTagSpec  # noqa: E402
from plc_adapters.tag_map import DataType, Direction, ModbusConnection, Range, RegisterTable, TagSpec  # noqa: E402
from tests.ports import free_tcp_port  # noqa: E402
from tests.security_helpers import CertificatePair, Credentials, make_certificate  # noqa: E402
from twin_server.config import LineConfig, ServerConfig, UnitConfig  # noqa: E402
from twin_server.security.pki import trust_certificate  # noqa: E402
from twin_server.security.roles import Role  # noqa: E402
from twin_server.security.settings import SecuritySettings  # noqa: E402
from twin_server.security.users_file import UsersFile  # noqa: E402
from twin_server.server import TwinServer  # noqa: E402

POLICY = "Basic256Sha256"
"""The channel of every measurement: Basic256Sha256, SignAndEncrypt (one of the twin's default policies)."""
OPERATOR = Credentials("operator", "bench-operator-password")


@dataclass
class Pacing:
    warm_up_s: float = 1.0
    """before each measurement window (initial values delivered); 0.2 s in a smoke run"""


pacing = Pacing()


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

    async def client(self, url: str, credentials: Credentials | None = OPERATOR) -> Client:
        """A client on ``POLICY``/SignAndEncrypt, logged in with ``credentials`` (no 1 s liveness probe under
        full load)."""
        client = Client(url, timeout=30, watchdog_intervall=3600.0)
        if credentials is not None:
            client.set_user(credentials.user)
            client.set_password(credentials.password)
        client.application_uri = self.app.application_uri
        await client.set_security_string(
            f"{POLICY},SignAndEncrypt,{self.app.certificate},{self.app.private_key}")
        return client

    def twin_config(self, scan_period_s: float, unit: UnitConfig) -> LineConfig:
        """The bench line as shipped (default endpoints and policies), its data in this data dir."""
        port = free_tcp_port()
        return LineConfig(
            name="bench", description="", scan_period_s=scan_period_s,
            server=ServerConfig(endpoint=f"opc.tcp://127.0.0.1:{port}/bench/", namespace="urn:linetwin:bench"),
            units=(unit,), security=SecuritySettings(data_dir=self.data_dir))

    async def start_twin(self, config: LineConfig) -> TwinServer:
        twin = TwinServer(config, data_dir=self.data_dir / "line")  # history and twin.pid here too, never in $HOME
        await twin.start()
        trust_certificate(twin.security.pki, self.app.certificate)
        return twin

    async def bare_server(self, path: str) -> Server:
        """A bare asyncua server (not started) serving ``POLICY``/SignAndEncrypt with its own certificate."""
        server = Server()
        await server.init()
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


class _Counter:
    """asyncua subscription handler counting data-change notifications."""

    def __init__(self) -> None:
        self.count = 0

    def datachange_notification(self, node: object, val: object, data: object) -> None:
        self.count += 1

    def status_change_notification(self, status: object) -> None:
        pass


def _tags(n: int) -> tuple[TagSpec, ...]:
    return tuple(
        TagSpec(name=f"tag_{i:05d}", direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(-1e9, 1e9),
                table=RegisterTable.INPUT, address=2 * i, data_type=DataType.FLOAT32)
        for i in range(n)
    )


async def _count_notifications(client: Client, node_ids: list[ua.NodeId], seconds: float) -> tuple[float, float]:
    """Connect ``client``, subscribe to all nodes; return (notifications per second, seconds measured) after a
    warm-up."""
    await client.connect()
    try:
        handler = _Counter()
        sub = await client.create_subscription(100, handler)
        for i in range(0, len(node_ids), 1000):
            await sub.subscribe_data_change([client.get_node(n) for n in node_ids[i:i + 1000]])
        await asyncio.sleep(pacing.warm_up_s)  # warm-up: initial values delivered (benchmark pacing, not test sync)
        start_count, t0 = handler.count, time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - t0
        rate = (handler.count - start_count) / elapsed
        await sub.delete()
        return rate, elapsed
    finally:
        await client.disconnect()


async def _modbus_peer(tags: tuple[TagSpec, ...]) -> tuple[ModbusTcpServer, asyncio.Task, int]:
    """A real pymodbus server whose input registers hold every tag and change every 50 ms."""
    n_regs = 2 * len(tags) + 2
    bits = [SimData(0, values=[False] * 16, datatype=SimDataType.BITS)]
    simdata = (bits, bits, [SimData(0, values=[0] * 16, datatype=SimDataType.REGISTERS)],
               [SimData(0, values=[0] * n_regs, datatype=SimDataType.REGISTERS)])
    server = ModbusTcpServer(SimDevice(id=0, simdata=simdata), address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]

    async def change_values() -> None:
        k = 0
        while True:
            k += 1
            regs: list[int] = []
            for i, t in enumerate(tags):
                regs += encode(t, float(k + i))
            await server.context.async_setValues(1, 4, 0, regs)  # function code 4: input registers
            await asyncio.sleep(0.05)

    return server, asyncio.create_task(change_values()), port


async def measure_twin(n: int, seconds: float, scan_period_s: float, security: BenchSecurity) -> dict:
    tags = _tags(n)
    modbus, tasks, mb_port = await _modbus_peer(tags)
    config = security.twin_config(scan_period_s, UnitConfig(
        name="unit", kind="mixing_tank", description="", model={}, plant={},
        connection=ModbusConnection("127.0.0.1", mb_port, timeout_s=5.0), tags=tags))
    twin = await security.start_twin(config)
    try:
        assert twin.runtime is not None and twin.space is not None
        health = twin.runtime.health["unit"]
        await asyncio.sleep(pacing.warm_up_s)
        m0, t0 = health.samples_mirrored, time.perf_counter()
        node_ids = [tn.node_id for tn in twin.space.tag_nodes.values()]
        notif_rate, _ = await _count_notifications(await security.client(twin.endpoint), node_ids, seconds)
        mirror_rate = (health.samples_mirrored - m0) / (time.perf_counter() - t0)
        stats = twin.runtime.adapters["unit"].stats
        return {"tags": n, "mirrored_per_s": mirror_rate, "notifications_per_s": notif_rate,
                "read_requests_per_scan": stats.read_requests_per_scan, "overruns": stats.overruns,
                "bad_samples": health.bad_samples}
    finally:
        await twin.stop()
        tasks.cancel()
        await modbus.shutdown()


PLC_URI = "http://linetwin.example/bench-plc"


async def _opcua_peer(n: int) -> tuple[Server, asyncio.Task, asyncio.Event, int]:
    """An asyncua server playing a PLC: n Float nodes ``"DB_Bench"."v<i>"`` rewritten in rounds every 50 ms."""
    port = free_tcp_port()
    server = Server()
    await server.init()
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
        aspace = server.iserver.aspace
        while not stop.is_set():
            k += 1
            now = datetime.now(UTC)
            for i, node_id in enumerate(node_ids):
                dv = ua.DataValue(ua.Variant(float(k + i), ua.VariantType.Float), SourceTimestamp=now)
                await aspace.write_attribute_value(node_id, ua.AttributeIds.Value, dv)
                if i % 250 == 249:
                    await asyncio.sleep(0)
            await asyncio.sleep(0.05)

    return server, asyncio.create_task(change_values()), stop, port


async def measure_twin_opcua(n: int, seconds: float, scan_period_s: float, security: BenchSecurity) -> dict:
    plc, task, stop, plc_port = await _opcua_peer(n)
    tags = tuple(OpcUaTagSpec(name=f"tag_{i:05d}", direction=Direction.MEASURED, unit_code="CEL",
                              eu_range=Range(-1e9, 1e9), node=NodeAddress(PLC_URI, f's="DB_Bench"."v{i}"'))
                 for i in range(n))
    config = security.twin_config(scan_period_s, UnitConfig(
        name="unit", kind="mixing_tank", description="", model={}, plant={},
        connection=OpcUaConnection("127.0.0.1", plc_port, timeout_s=30.0), tags=tags))
    twin = await security.start_twin(config)
    try:
        assert twin.runtime is not None and twin.space is not None
        health = twin.runtime.health["unit"]
        adapter = twin.runtime.adapters["unit"]
        deadline = time.perf_counter() + 120.0
        while not (adapter.connected and health.samples_mirrored >= n) and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)  # benchmark pacing: wait for the subscriptions' initial values
        await asyncio.sleep(pacing.warm_up_s)
        m0, t0 = health.samples_mirrored, time.perf_counter()
        node_ids = [tn.node_id for tn in twin.space.tag_nodes.values()]
        notif_rate, _ = await _count_notifications(await security.client(twin.endpoint), node_ids, seconds)
        mirror_rate = (health.samples_mirrored - m0) / (time.perf_counter() - t0)
        stats = adapter.stats
        return {"tags": n, "mirrored_per_s": mirror_rate, "notifications_per_s": notif_rate,
                "subscriptions": stats.subscriptions, "publishes": stats.publishes, "outages": stats.outages,
                "bad_samples": health.bad_samples}
    finally:
        await twin.stop()
        stop.set()
        task.cancel()
        await plc.stop()


async def measure_bare(n: int, seconds: float, security: BenchSecurity) -> dict:
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
        aspace = server.iserver.aspace
        while not stop.is_set():
            k += 1
            now = datetime.now(UTC)
            for i, node in enumerate(nodes):
                dv = ua.DataValue(ua.Variant(float(k + i), ua.VariantType.Double), SourceTimestamp=now)
                await aspace.write_attribute_value(node.nodeid, ua.AttributeIds.Value, dv)
                written += 1
                if i % 250 == 249:
                    await asyncio.sleep(0)  # let the server answer its clients, as the twin's scan loop does
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    try:
        await asyncio.sleep(pacing.warm_up_s)
        w0, t0 = written, time.perf_counter()
        client = await security.client(server.endpoint.geturl())
        notif_rate, _ = await _count_notifications(client, [x.nodeid for x in nodes], seconds)
        write_rate = (written - w0) / (time.perf_counter() - t0)
        return {"tags": n, "mirrored_per_s": write_rate, "notifications_per_s": notif_rate}
    finally:
        stop.set()
        await task
        await server.stop()


async def main_async(args: argparse.Namespace) -> list[dict]:
    rows = []
    security = BenchSecurity.create()
    for n in args.tags:
        print(f"measuring {n} tags: twin ...", file=sys.stderr, flush=True)
        twin = await measure_twin(n, args.seconds, args.scan_period, security)
        print(f"measuring {n} tags: twin with the PLC on OPC UA ...", file=sys.stderr, flush=True)
        twin_opcua = await measure_twin_opcua(n, args.seconds, args.scan_period, security)
        print(f"measuring {n} tags: bare asyncua ceiling ...", file=sys.stderr, flush=True)
        bare = await measure_bare(n, args.seconds, security)
        rows.append({"tags": n, "twin": twin, "twin_opcua": twin_opcua, "bare_asyncua": bare,
                     "mirror_ratio": twin["mirrored_per_s"] / bare["mirrored_per_s"],
                     "notification_ratio": twin["notifications_per_s"] / bare["notifications_per_s"],
                     "opcua_mirror_ratio": twin_opcua["mirrored_per_s"] / bare["mirrored_per_s"],
                     "opcua_notification_ratio": twin_opcua["notifications_per_s"] / bare["notifications_per_s"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tags", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--scan-period", type=float, default=0.1, help="twin scan period in s (default 0.1)")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.tags, args.seconds, pacing.warm_up_s = [20], 0.5, 0.2
    logging.basicConfig(level=logging.WARNING)
    rows = asyncio.run(main_async(args))
    print(f"\nscan period {args.scan_period} s, {args.seconds} s per measurement, one process, "
          f"{POLICY}/SignAndEncrypt, operator login\n")
    print(f"{'tags':>6} | {'PLC':>6} | {'twin mirrored/s':>15} | {'bare writes/s':>13} | {'ratio':>5} | "
          f"{'twin notif/s':>12} | {'bare notif/s':>12} | {'ratio':>5}")
    print("-" * 99)
    for r in rows:
        bare = r["bare_asyncua"]
        for source, twin, mirror_ratio, notif_ratio in (
                ("Modbus", r["twin"], r["mirror_ratio"], r["notification_ratio"]),
                ("OPC UA", r["twin_opcua"], r["opcua_mirror_ratio"], r["opcua_notification_ratio"])):
            print(f"{r['tags']:>6} | {source:>6} | {twin['mirrored_per_s']:>15,.0f} | "
                  f"{bare['mirrored_per_s']:>13,.0f} | {mirror_ratio:>5.2f} | {twin['notifications_per_s']:>12,.0f} | "
                  f"{bare['notifications_per_s']:>12,.0f} | {notif_ratio:>5.2f}")
    write_results(args, "mirror_throughput",
                  {"machine": platform.platform(), "python": platform.python_version(),
                   "security": f"{POLICY}/SignAndEncrypt, user name login (operator)",
                   "scan_period_s": args.scan_period, "seconds": args.seconds, "rows": rows})


if __name__ == "__main__":
    main()
