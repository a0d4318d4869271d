"""Security cost: mirror throughput, notification rate and notification latency with a SignAndEncrypt
client beside a SecurityPolicy None client on the same twin in the same run, and login time.

One twin mirrors N float32 tags from a real pymodbus server on 127.0.0.1 whose registers change every 50 ms.
For each channel (None; Basic256Sha256 SignAndEncrypt; Aes256_Sha256_RsaPss SignAndEncrypt) one asyncua client
logs in as an operator, subscribes to every tag and counts notifications for ``--seconds``; latency is receipt
time minus the value's SourceTimestamp (the moment the twin read it from the PLC), same clock. Login time: the
median of ``--logins`` connect + CreateSession + ActivateSession (+ close) per channel and identity (anonymous,
user name with scrypt verification). Ratios are SignAndEncrypt / None. Writes ``benchmarks/results/security.json``.

Each channel's window is repeated ``--rounds`` times, interleaved with the others, and averaged.

Usage: ``.venv/bin/python benchmarks/security.py [--tags 1000] [--seconds 5] [--logins 10] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402
from modbus_peer import float_tags as _tags  # noqa: E402
from modbus_peer import modbus_peer as _modbus_peer  # noqa: E402

from plc_adapters.tag_map import ModbusConnection  # noqa: E402
from tests.ports import free_tcp_port  # noqa: E402
from tests.security_helpers import Credentials, make_certificate  # noqa: E402
from twin_server.config import LineConfig, ServerConfig, UnitConfig  # noqa: E402
from twin_server.security.pki import trust_certificate  # noqa: E402
from twin_server.security.roles import Role  # noqa: E402
from twin_server.security.settings import SecuritySettings  # noqa: E402
from twin_server.security.users_file import UsersFile  # noqa: E402
from twin_server.server import TwinServer  # noqa: E402

CHANNELS = {"None": None, "Basic256Sha256/SignAndEncrypt": "Basic256Sha256",
            "Aes256_Sha256_RsaPss/SignAndEncrypt": "Aes256Sha256RsaPss"}
OPERATOR = Credentials("operator", "bench-operator-password")


class _Latency:
    def __init__(self) -> None:
        self.count = 0
        self.latencies_ms: list[float] = []

    def datachange_notification(self, node: object, val: object, data: object) -> None:
        now = datetime.now(UTC)
        self.count += 1
        stamp = data.monitored_item.Value.SourceTimestamp  # type: ignore[attr-defined]
        if stamp is not None:
            self.latencies_ms.append((now - stamp).total_seconds() * 1000.0)


async def _client(url: str, policy: str | None, app: object, credentials: Credentials | None) -> Client:
    client = Client(url, timeout=30)
    if credentials is not None:
        client.set_user(credentials.user)
        client.set_password(credentials.password)
    if policy is not None:
        client.application_uri = app.application_uri  # type: ignore[attr-defined]
        await client.set_security_string(
            f"{policy},SignAndEncrypt,{app.certificate},{app.private_key}")  # type: ignore[attr-defined]
    return client


async def _subscription_window(twin: TwinServer, policy: str | None, app: object, seconds: float) -> dict:
    assert twin.space is not None and twin.runtime is not None
    health = twin.runtime.health["unit"]
    client = await _client(twin.endpoint, policy, app, OPERATOR)
    async with client:
        handler = _Latency()
        sub = await client.create_subscription(100, handler)
        ids = [tn.node_id for tn in twin.space.tag_nodes.values()]
        for i in range(0, len(ids), 1000):
            await sub.subscribe_data_change([client.get_node(n) for n in ids[i:i + 1000]])
        await asyncio.sleep(1.0)  # warm-up (benchmark pacing)
        c0, m0, t0 = handler.count, health.samples_mirrored, time.perf_counter()
        handler.latencies_ms.clear()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - t0
        lat = sorted(handler.latencies_ms)
        await sub.delete()
    return {"notifications_per_s": (handler.count - c0) / elapsed,
            "mirrored_per_s": (health.samples_mirrored - m0) / elapsed,
            "latency_median_ms": statistics.median(lat) if lat else None,
            "latency_p95_ms": lat[int(0.95 * (len(lat) - 1))] if lat else None}


async def _login_ms(url: str, policy: str | None, app: object, credentials: Credentials | None, n: int) -> float:
    times = []
    for _ in range(n):
        client = await _client(url, policy, app, credentials)
        t0 = time.perf_counter()
        await client.connect()
        times.append((time.perf_counter() - t0) * 1000.0)
        await client.disconnect()
    return statistics.median(times)


async def main_async(args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="linetwin-security-bench-"))
    users = UsersFile(data_dir / "users.toml")
    users.add(OPERATOR.user, Role.OPERATOR, OPERATOR.password)
    users.save()
    app = make_certificate(data_dir / "client", "bench-client")
    tags = _tags(args.tags)
    modbus, changer, mb_port = await _modbus_peer(tags)
    port = free_tcp_port()
    config = LineConfig(
        name="bench", description="", scan_period_s=args.scan_period,
        server=ServerConfig(endpoint=f"opc.tcp://127.0.0.1:{port}/bench/", namespace="urn:linetwin:bench"),
        units=(UnitConfig(name="unit", kind="mixing_tank", description="", model={}, plant={},
                          connection=ModbusConnection("127.0.0.1", mb_port, timeout_s=5.0), tags=tags),),
        security=SecuritySettings(allow_none=True, data_dir=data_dir),
    )
    twin = TwinServer(config, data_dir=data_dir / "line")  # history and twin.pid in the bench's tmp dir too
    await twin.start()
    trust_certificate(twin.security.pki, app.certificate)
    result: dict = {"tags": args.tags, "channels": {}, "login_ms": {}}
    try:
        windows: dict[str, list[dict]] = {label: [] for label in CHANNELS}
        for k in range(args.rounds):  # channels interleaved, so drift in machine load hits all of them alike
            for label, policy in CHANNELS.items():
                print(f"round {k + 1}/{args.rounds}: subscription window {label} ...", file=sys.stderr, flush=True)
                windows[label].append(await _subscription_window(twin, policy, app, args.seconds))
        for label, runs in windows.items():
            result["channels"][label] = {key: statistics.mean(r[key] for r in runs if r[key] is not None)
                                         for key in runs[0]}
        for label, policy in CHANNELS.items():
            for who, cred in (("anonymous", None), ("user name", OPERATOR)):
                print(f"logins: {label}, {who} ...", file=sys.stderr, flush=True)
                result["login_ms"][f"{label} {who}"] = await _login_ms(twin.endpoint, policy, app, cred, args.logins)
    finally:
        await twin.stop()
        changer.cancel()
        await modbus.shutdown()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--logins", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved windows per channel (mean reported)")
    parser.add_argument("--scan-period", type=float, default=0.1)
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.tags, args.seconds, args.logins, args.rounds = 20, 0.3, 1, 1
    logging.basicConfig(level=logging.ERROR)
    r = asyncio.run(main_async(args))
    base = r["channels"]["None"]
    print(f"\n{args.tags} tags, scan {args.scan_period} s, {args.seconds} s per window, one process\n")
    print(f"{'channel':<38} | {'mirrored/s':>10} | {'notif/s':>9} | {'ratio':>5} | {'lat. median':>11} | "
          f"{'lat. p95':>8} | {'ratio':>5}")
    print("-" * 104)
    for label, c in r["channels"].items():
        c["notification_ratio"] = c["notifications_per_s"] / base["notifications_per_s"]
        c["latency_ratio"] = (c["latency_median_ms"] / base["latency_median_ms"]
                              if c["latency_median_ms"] and base["latency_median_ms"] else None)
        lr = f"{c['latency_ratio']:.2f}" if c["latency_ratio"] is not None else "n/a"
        print(f"{label:<38} | {c['mirrored_per_s']:>10,.0f} | {c['notifications_per_s']:>9,.0f} | "
              f"{c['notification_ratio']:>5.2f} | {c['latency_median_ms'] or 0:>8.1f} ms | "
              f"{c['latency_p95_ms'] or 0:>5.1f} ms | {lr:>5}")
    print(f"\n{'login (connect + session), median':<50} | {'ms':>7}")
    print("-" * 62)
    for label, ms in r["login_ms"].items():
        print(f"{label:<50} | {ms:>7.1f}")
    write_results(args, "security", {"machine": platform.platform(), "python": platform.python_version(),
                                     "seconds": args.seconds, "scan_period_s": args.scan_period, **r})


if __name__ == "__main__":
    main()
