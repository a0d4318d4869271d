"""Historian benchmark: ingest rate, HistoryRead latency, and the cost of recording on the mirror path.

1. Ingest (samples/s): the same samples (100 tags × N scans) through linetwin's recorder into SQLite and into
   InfluxDB 1.x (a real influxd started here on free ports, if installed), beside asyncua's ``HistorySQLite``
   (one ``save_node_value`` per sample, as asyncua's HistoryManager calls it) on a prefix of them.
2. HistoryRead latency for one tag with 86,400 raw values (a day at 1 s): the server-side read
   (store → DataValues) and end to end from an asyncua client over loopback; and a day of 1-min Averages
   (1,440 processed values from the same 86,400 raw values).
3. Mirror throughput (Modbus → OPC UA tags/s, as in ``benchmarks/mirror_throughput.py``) with the historian
   recording every tag vs recording none (``historize = false`` on every tag), alternated to even out noise.

Everything runs in one process on this machine; figures are comparable within a run (ratios), not capacities.
Usage: ``.venv/bin/python benchmarks/historian.py [--scans 2000] [--mirror-tags 2000] [--seconds 4]``;
writes ``benchmarks/results/historian.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua import Client, Server, ua
from asyncua.server.history_sql import HistorySQLite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402
from modbus_peer import float_tags as _tags  # noqa: E402
from modbus_peer import modbus_peer as _modbus_peer  # noqa: E402

from plc_adapters.asyncua_seam import address_space, init_server, install_history_reader, stop_server  # noqa: E402
from plc_adapters.quality import Quality  # noqa: E402
from plc_adapters.sample import Sample  # noqa: E402
from plc_adapters.tag_map import ModbusConnection  # noqa: E402
from tests.ports import free_tcp_port  # noqa: E402
from twin_server.config import LineConfig, ServerConfig, UnitConfig  # noqa: E402
from twin_server.historian.history_read import HistoryReadService  # noqa: E402
from twin_server.historian.influx_store import InfluxStore  # noqa: E402
from twin_server.historian.recorder import HistoryRecorder  # noqa: E402
from twin_server.historian.service import mark_historizing  # noqa: E402
from twin_server.historian.settings import HistorianSettings, InfluxSettings, TagHistory  # noqa: E402
from twin_server.historian.sqlite_store import SqliteStore  # noqa: E402
from twin_server.server import TwinServer  # noqa: E402

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TAGS = 100
DAY = 86_400


def _scans(n_scans: int) -> list[list[Sample]]:
    return [[Sample(f"tag_{i:03d}", float(k + i), Quality.GOOD, T0 + timedelta(seconds=k)) for i in range(TAGS)]
            for k in range(n_scans)]


def ingest_recorder(backend: object, scans: list[list[Sample]]) -> float:
    """Samples/s from the first record_scan until the last batch is committed."""
    rec = HistoryRecorder(backend, flush_interval_s=0.5)  # type: ignore[arg-type]
    for i in range(TAGS):
        rec.historize_tag("unit", f"tag_{i:03d}", f"bench.unit.tag_{i:03d}")
    now = datetime.now(UTC)
    rec.start()
    t0 = time.perf_counter()
    for scan in scans:
        rec.record_scan("unit", scan, now)
    rec.stop()
    elapsed = time.perf_counter() - t0
    assert rec.written == len(scans) * TAGS, (rec.written, rec.dropped)
    return rec.written / elapsed


async def ingest_asyncua(path: Path, scans: list[list[Sample]]) -> float:
    store = HistorySQLite(str(path))
    await store.init()
    nodes = [ua.NodeId(1000 + i, 2) for i in range(TAGS)]  # numeric ids: asyncua refuses dots in table names
    for nid in nodes:
        await store.new_historized_node(nid, None)
    n = 0
    t0 = time.perf_counter()
    for scan in scans:
        for nid, s in zip(nodes, scan, strict=True):
            await store.save_node_value(nid, ua.DataValue(ua.Variant(s.value, ua.VariantType.Double),
                                                          SourceTimestamp=s.source_timestamp,
                                                          ServerTimestamp=s.source_timestamp))
            n += 1
    elapsed = time.perf_counter() - t0
    await store.stop()
    return n / elapsed


def _influxd(tmp: Path) -> object | None:
    try:
        from tests.twin_server.historian.influxd import INFLUXD, Influxd
    except ImportError:
        return None
    if INFLUXD is None:
        return None
    server = Influxd(tmp / "influxd")
    server.start()
    return server


async def read_latency(data_dir: Path, values: int = DAY) -> dict:
    """One tag with a day of 1 s values (``values`` of them: fewer in a smoke run): raw read and 1-min Averages over
    the day, server side and from a client."""
    store = SqliteStore(data_dir)
    key = "bench.day"
    sid, start = store.series_id(key), T0.timestamp()
    store.write([(sid, start + i, 20.0 + (i % 600) / 60.0, 0, start + i) for i in range(values)], [], [])
    server = Server()
    await init_server(server)
    port = free_tcp_port()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:bench")
    node = await server.nodes.objects.add_variable(ua.NodeId(key, idx), "day", 0.0)
    await mark_historizing(server, node.nodeid)
    manager = HistoryReadService(address_space(server).exists, store, {node.nodeid: key}, 100_000)
    install_history_reader(server, manager.read_history)
    await server.start()
    out: dict[str, float] = {}
    try:
        raw = ua.ReadRawModifiedDetails(IsReadModified=False, StartTime=T0, EndTime=T0 + timedelta(seconds=values - 1),
                                        NumValuesPerNode=0, ReturnBounds=False)
        avg = ua.ReadProcessedDetails(StartTime=T0, EndTime=T0 + timedelta(days=1), ProcessingInterval=60_000.0,
                                      AggregateType=[ua.NodeId(ua.ObjectIds.AggregateFunction_Average)])
        for label, fn in (("raw_server_s", lambda: manager.read_raw(key, raw, None)),
                          ("average_server_s", lambda: manager.read_processed(key, avg, 0))):
            fn()  # warm the page cache
            t0 = time.perf_counter()
            res = fn()
            out[label] = time.perf_counter() - t0
            data = res.HistoryData
            raw_body = isinstance(data, ua.ExtensionObject)
            n = int.from_bytes(data.Body[:4], "little") if raw_body else len(data.DataValues)
            assert n in (values, 1440), n
        async with Client(server.endpoint.geturl(), timeout=60) as client:
            for label, details, expected in (("raw_client_s", raw, values), ("average_client_s", avg, 1440)):
                params = ua.HistoryReadParameters(HistoryReadDetails=details, ReleaseContinuationPoints=False,
                                                  TimestampsToReturn=ua.TimestampsToReturn.Both,
                                                  NodesToRead=[ua.HistoryReadValueId(NodeId=node.nodeid)])
                t0 = time.perf_counter()
                res = (await client.uaclient.history_read(params))[0]
                out[label] = time.perf_counter() - t0
                assert len(res.HistoryData.DataValues) == expected
    finally:
        await stop_server(server)
        store.close()
    return out


async def mirror_rate(n: int, seconds: float, history: bool, data_dir: Path) -> float:
    tags = _tags(n)
    modbus, task, mb_port = await _modbus_peer(tags)
    settings = HistorianSettings(flush_interval_s=0.5) if history else HistorianSettings(
        tags={("unit", t.name): TagHistory(historize=False) for t in tags})
    config = LineConfig(
        name="bench", description="", scan_period_s=0.001,
        server=ServerConfig(endpoint=f"opc.tcp://127.0.0.1:{free_tcp_port()}/bench/", namespace="urn:linetwin:bench"),
        units=(UnitConfig(name="unit", kind="mixing_tank", description="", model={}, plant={},
                          connection=ModbusConnection("127.0.0.1", mb_port, timeout_s=5.0), tags=tags),),
        historian=settings,
    )
    twin = TwinServer(config, data_dir=data_dir)
    await twin.start()
    try:
        assert twin.runtime is not None and twin.historian is not None
        health = twin.runtime.health["unit"]
        await asyncio.sleep(1.0)  # warm-up (benchmark pacing)
        m0, t0 = health.samples_mirrored, time.perf_counter()
        await asyncio.sleep(seconds)
        rate = (health.samples_mirrored - m0) / (time.perf_counter() - t0)
        if history:
            assert twin.historian.recorder.dropped == 0
        return rate
    finally:
        await twin.stop()
        task.cancel()
        await modbus.shutdown()


async def main_async(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="linetwin-bench-history-"))
    scans = _scans(args.scans)
    n_samples = len(scans) * TAGS
    result: dict = {"samples": n_samples}
    print(f"ingest: {n_samples} samples into SQLite ...", file=sys.stderr, flush=True)
    store = SqliteStore(tmp / "sqlite")
    result["sqlite_samples_per_s"] = ingest_recorder(store, scans)
    store.close()
    asyncua_scans = scans[: max(1, args.asyncua_samples // TAGS)]
    print(f"ingest: {len(asyncua_scans) * TAGS} samples into asyncua HistorySQLite ...", file=sys.stderr, flush=True)
    result["asyncua_history_sqlite_samples_per_s"] = await ingest_asyncua(tmp / "asyncua.db", asyncua_scans)
    influxd = _influxd(tmp)
    if influxd is not None:
        print(f"ingest: {n_samples} samples into InfluxDB 1.x ...", file=sys.stderr, flush=True)
        try:
            influx = InfluxStore(InfluxSettings(url=influxd.url, database="bench"), tmp / "influx", 10_000_000)
            result["influxdb1_samples_per_s"] = ingest_recorder(influx, scans)
            influx.close()
        finally:
            influxd.stop()  # type: ignore[attr-defined]
    else:
        result["influxdb1_samples_per_s"] = None
    print("HistoryRead latency (86,400 raw values, 1,440 one-minute Averages) ...", file=sys.stderr, flush=True)
    result["read"] = await read_latency(tmp / "read", 3_600 if args.smoke else DAY)
    rates: dict[str, list[float]] = {"on": [], "off": []}
    for rnd in range(args.rounds):
        for mode in ("off", "on"):
            print(f"mirror throughput, {args.mirror_tags} tags, history {mode} (round {rnd + 1}) ...",
                  file=sys.stderr, flush=True)
            rates[mode].append(await mirror_rate(args.mirror_tags, args.seconds, mode == "on",
                                                 tmp / f"mirror-{mode}-{rnd}"))
    result["mirror_tags"] = args.mirror_tags
    result["mirror_per_s"] = {k: sum(v) / len(v) for k, v in rates.items()}
    result["mirror_runs"] = rates
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=2000, help="scans of 100 tags to ingest (default 2000)")
    parser.add_argument("--asyncua-samples", type=int, default=1000, help="samples for asyncua HistorySQLite")
    parser.add_argument("--mirror-tags", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=4.0, help="per mirror measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating off/on mirror rounds")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.scans, args.asyncua_samples, args.mirror_tags, args.seconds, args.rounds = 20, 100, 20, 0.3, 1
    logging.basicConfig(level=logging.WARNING)
    r = asyncio.run(main_async(args))
    sq, au, ix = r["sqlite_samples_per_s"], r["asyncua_history_sqlite_samples_per_s"], r["influxdb1_samples_per_s"]
    rd, mr = r["read"], r["mirror_per_s"]
    print(f"\nhistorian benchmark, one process, {platform.platform()}\n")
    print(f"{'measure':<52} | {'value':>14} | {'target':>12}")
    print("-" * 86)
    print(f"{'ingest, linetwin SQLite (samples/s)':<52} | {sq:>14,.0f} | {'>= 100,000':>12}")
    print(f"{'ingest, asyncua HistorySQLite (samples/s)':<52} | {au:>14,.0f} |")
    print(f"{'  ratio SQLite / asyncua HistorySQLite':<52} | {sq / au:>14,.1f} | {'>= 50':>12}")
    print(f"{'ingest, linetwin InfluxDB 1.x (samples/s)':<52} | "
          + (f"{ix:>14,.0f} |" if ix else f"{'(no influxd)':>14} |"))
    print(f"{'HistoryRead 86,400 raw, server side (s)':<52} | {rd['raw_server_s']:>14.3f} | {'< 0.5':>12}")
    print(f"{'HistoryRead 86,400 raw, asyncua client (s)':<52} | {rd['raw_client_s']:>14.3f} |")
    print(f"{'HistoryRead 1,440 1-min Averages, server side (s)':<52} | {rd['average_server_s']:>14.3f} |")
    print(f"{'HistoryRead 1,440 1-min Averages, asyncua client (s)':<52} | {rd['average_client_s']:>14.3f} |")
    print(f"{'mirror, ' + str(r['mirror_tags']) + ' tags, history off (samples/s)':<52} | {mr['off']:>14,.0f} |")
    print(f"{'mirror, ' + str(r['mirror_tags']) + ' tags, history on (samples/s)':<52} | {mr['on']:>14,.0f} |")
    print(f"{'  ratio on / off':<52} | {mr['on'] / mr['off']:>14.2f} | {'>= 0.9':>12}")
    write_results(args, "historian", {"machine": platform.platform(), "python": platform.python_version(),
                                      "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                                      **r})


if __name__ == "__main__":
    main()
