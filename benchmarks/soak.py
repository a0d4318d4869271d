"""Soak: the demo line under steady client load for minutes to hours; does the twin's memory stay flat?

The twin of ``linetwin demo`` (history, alarms and security on, the defaults; virtual PLCs at ``--speed`` × real
time) runs in this process; a worker process holds ``--clients`` anonymous OPC UA clients, each subscribed to
``--vars`` variables of the line at ``--publish-ms``, and an operator client that keeps the crystallizer's closed
loop running batches (mode ``mpc``, StartBatch again whenever a batch ends). With ``--drop-every S`` the worker
also starts, every S seconds, a client process that connects, subscribes and is killed (SIGKILL) without
closing: the server's session timeout must clean up its session, subscription and monitored items.

Every ``--sample-every`` seconds one row: resident memory (RSS, /proc), the Python heap (tracemalloc), open
files, disk of the data dir (historian SQLite + audit store), notifications per second, server sessions,
subscriptions and monitored items, Python objects. At the end: RSS and heap growth fitted by least squares over
the rows after ``--warmup-minutes``, in MB/h with a 95 % confidence interval (Student t), and the allocation sites
(tracemalloc) and object types (gc) that grew most from the end of warm-up to the end.

Usage: ``.venv/bin/python benchmarks/soak.py [--minutes 60] [--clients 5] [--vars 400] [--drop-every 10]
[--out soak.json]``; ``--smoke`` (2 clients) ends as soon as it has what its test checks — 6 rows, a batch started
and a client dropped — within 1 min, traces allocations only from the moment the twin serves (tracing the start-up
made it and the snapshot comparison several times slower), and writes its JSON to a temporary dir.
Targets (issue 21): RSS growth ≤ 1 MB/h after warm-up with a CI that includes 0, heap and open files flat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import json
import logging
import math
import os
import platform
import signal
import sys
import tempfile
import tracemalloc
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OPERATOR_ENV = "LINETWIN_SOAK_OPERATOR"
"""user:password of the operator who runs batches, handed to the worker process (kept off its command line)."""
MB = 1024.0 * 1024.0


# ---------------------------------------------------------------------------------------------------------- figures

@dataclass(frozen=True)
class Row:
    """One sample of the server process."""

    t_s: float
    rss_mb: float | None
    heap_mb: float | None
    open_files: int | None
    disk_mb: float
    notifications_per_s: float
    sessions: int
    subscriptions: int
    monitored_items: int
    objects: int
    sqlite_mb: float | None = None
    malloc_used_mb: float | None = None
    malloc_free_mb: float | None = None


@dataclass(frozen=True)
class Growth:
    """A least-squares slope in MB/h with its 95 % confidence interval (Student t, n − 2 degrees of freedom)."""

    mb_per_h: float
    ci_low: float
    ci_high: float
    points: int


def fit_growth(t_s: list[float], mb: list[float]) -> Growth | None:
    """Slope of ``mb`` over ``t_s`` (seconds) in MB per hour, with its 95 % CI; None under 3 points."""
    n = len(t_s)
    if n < 3:
        return None
    from scipy import stats

    fit = stats.linregress(t_s, mb)
    half = float(stats.t.ppf(0.975, n - 2)) * float(fit.stderr)
    slope = float(fit.slope)
    if not math.isfinite(half):
        half = 0.0
    return Growth(slope * 3600.0, (slope - half) * 3600.0, (slope + half) * 3600.0, n)


def rss_mb() -> float | None:
    """Resident set size of this process (Linux /proc), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class _Mallinfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc ≥ 2.33; all arenas), bytes."""

    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def malloc_mb() -> tuple[float, float] | None:
    """(in use, free but kept) by glibc malloc in all arenas (mallinfo2: uordblks + hblkhd, fordblks), MB; None
    without glibc ≥ 2.33. Free-but-kept memory growing while in-use memory is flat is fragmentation."""
    libc = _libc()
    fn = getattr(libc, "mallinfo2", None) if libc is not None else None
    if fn is None:
        return None
    fn.restype = _Mallinfo2
    m = fn()
    return (m.uordblks + m.hblkhd) / MB, m.fordblks / MB


def sqlite_memory_mb() -> float | None:
    """Bytes SQLite's own allocator holds in this process (all connections; ``sqlite3_status64``), MB."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    current, high = ctypes.c_int64(), ctypes.c_int64()
    if lib.sqlite3_status64(0, ctypes.byref(current), ctypes.byref(high), 0) != 0:
        return None
    return current.value / MB


def open_files() -> int | None:
    """File descriptors this process holds (files, sockets, pipes); None where /proc is missing."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def disk_mb(directory: Path) -> float:
    """Bytes of every file under ``directory`` (historian SQLite with its WAL, audit store, PKI), MB."""
    total = 0
    for p in directory.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file():
                total += p.stat().st_size
    return total / MB


def server_counts(server: object) -> tuple[int, int, int]:
    """(sessions, subscriptions, monitored items) held by the asyncua server (the seam's view of them)."""
    from plc_adapters.asyncua_seam import server_holdings

    return server_holdings(server)  # type: ignore[arg-type]


def top_sites(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int) -> list[dict]:
    """The ``n`` allocation sites (file:line) whose traced memory grew most between two snapshots."""
    skip = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<unknown>"))
    stats = after.filter_traces(skip).compare_to(before.filter_traces(skip), "lineno")
    stats.sort(key=lambda s: s.size_diff, reverse=True)
    return [{"site": f"{s.traceback[0].filename}:{s.traceback[0].lineno}", "grew_kb": round(s.size_diff / 1024, 1),
             "count_diff": s.count_diff, "now_kb": round(s.size / 1024, 1)} for s in stats[:n] if s.size_diff > 0]


def object_types() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def top_types(before: Counter[str], after: Counter[str], n: int) -> list[dict]:
    grown = sorted(((after[k] - before.get(k, 0), k) for k in after), reverse=True)[:n]
    return [{"type": k, "grew": d, "now": after[k]} for d, k in grown if d > 0]


# ------------------------------------------------------------------------------------------------------- the server

class WorkerOutput:
    """Reads the worker's ``notifications N`` / ``batches N`` / ``drops N`` lines (cumulative counts)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.counts: dict[str, int] = {"notifications": 0, "batches": 0, "drops": 0, "clients": 0, "vars": 0,
                                       "distinct": 0}
        self.ready = asyncio.Event()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            parts = line.decode(errors="replace").split()
            if len(parts) == 2 and parts[0] in self.counts and parts[1].isdigit():
                self.counts[parts[0]] = int(parts[1])
                if parts[0] == "clients":
                    self.ready.set()
            elif parts:
                print(f"  worker: {line.decode(errors='replace').rstrip()}", file=sys.stderr, flush=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _print_row(r: Row) -> None:
    def f(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    print(f"{r.t_s / 60:7.1f} {f(r.rss_mb, '9.1f')} {f(r.heap_mb, '9.2f')} {f(r.open_files, '6d')} {r.disk_mb:8.2f} "
          f"{r.notifications_per_s:8.0f} {r.sessions:5d} {r.subscriptions:5d} {r.monitored_items:6d} {r.objects:9d} "
          f"{f(r.sqlite_mb, '7.2f')} {f(r.malloc_used_mb, '8.1f')} {f(r.malloc_free_mb, '8.1f')}",
          flush=True)


HEADER = (f"{'min':>7} {'RSS MB':>9} {'heap MB':>9} {'files':>6} {'disk MB':>8} {'notif/s':>8} {'sess':>5} "
          f"{'subs':>5} {'items':>6} {'objects':>9} {'sqliteMB':>7} {'mallocMB':>8} {'freeMB':>8}")


async def soak(args: argparse.Namespace, work: Path) -> dict:
    from linetwin_cli.bench_launcher import build_bench, config_for_bench, with_time_scale
    from linetwin_cli.operators import demo_operator
    from twin_server.config import load_line_config
    from twin_server.data_dir import line_data_dir
    from twin_server.heap_trim import trim_heap
    from twin_server.server import TwinServer, endpoint_with_port

    data = line_data_dir(None, work / "line")  # the soak twin's whole data dir (users, audit, history)
    config = with_time_scale(load_line_config(Path(args.config)), args.speed)
    bench = build_bench(config, speed=args.speed, free_ports=True)
    await bench.start()
    twin: TwinServer | None = None
    proc: asyncio.subprocess.Process | None = None
    rows: list[Row] = []
    result: dict = {}
    try:
        live = config_for_bench(config, bench)
        endpoint = endpoint_with_port(config.server.endpoint, _free_port())
        user, password, _ = demo_operator(data)
        twin = TwinServer(live, endpoint=endpoint, data_dir=data.root, heap_trim_every_s=args.heap_trim_every or None)
        await twin.start()
        if args.trace_frames > 0 and not tracemalloc.is_tracing():  # --trace-from serving
            tracemalloc.start(args.trace_frames)
        loops = [f"{config.name}.{u}.control" for u in twin.control_loops]
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", endpoint, "--namespace",
               config.server.namespace, "--clients", str(args.clients), "--vars", str(args.vars), "--publish-ms",
               str(args.publish_ms), "--drop-every", str(args.drop_every), "--drop-session-timeout",
               str(args.drop_session_timeout), *sum((["--loop", p] for p in loops), [])]
        env = {**os.environ, OPERATOR_ENV: f"{user}:{password}"}
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, env=env)
        assert proc.stdout is not None
        worker = WorkerOutput(proc.stdout)
        await asyncio.wait_for(worker.ready.wait(), 600.0)  # browsing the line takes minutes on a loaded machine
        print(f"soak: line '{config.name}' at {endpoint}, {worker.counts['clients']} clients x "
              f"{worker.counts['vars']} monitored items ({worker.counts['distinct']} variables) at "
              f"{args.publish_ms:g} ms, speed {args.speed:g}x, drop every {args.drop_every:g} s, "
              f"{args.minutes:g} min", flush=True)
        print(HEADER, flush=True)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        end = t0 + args.minutes * 60.0
        warmup_end = t0 + args.warmup_minutes * 60.0
        last_t, last_n = t0, worker.counts["notifications"]
        base: tuple[Path | None, Counter[str]] | None = None  # the warm-up snapshot waits on disk, not in RSS
        while True:
            now = loop.time()
            if base is None and now >= warmup_end:
                snap_path = None
                if tracemalloc.is_tracing():
                    snap_path = work / "warmup.tracemalloc"
                    tracemalloc.take_snapshot().dump(str(snap_path))
                    gc.collect()
                    # the snapshot took ~100 MB of C heap and freed it: give it back now, or the soak's own peak
                    # sits in RSS until the twin's next trim (or for good with --heap-trim-every 0)
                    trim_heap()
                base = (snap_path, object_types())
            n = worker.counts["notifications"]
            sessions, subs, items = server_counts(twin.server)
            rate = (n - last_n) / max(now - last_t, 1e-9) if rows else 0.0
            m = malloc_mb()
            row = Row(t_s=now - t0, rss_mb=rss_mb(),
                      heap_mb=tracemalloc.get_traced_memory()[0] / MB if tracemalloc.is_tracing() else None,
                      open_files=open_files(), disk_mb=disk_mb(data.history) + disk_mb(data.security),
                      notifications_per_s=rate, sessions=sessions, subscriptions=subs, monitored_items=items,
                      objects=len(gc.get_objects()), sqlite_mb=sqlite_memory_mb(),
                      malloc_used_mb=m[0] if m else None, malloc_free_mb=m[1] if m else None)
            last_t, last_n = now, n
            rows.append(row)
            _print_row(row)
            if now >= end or (args.smoke and smoke_seen(rows, worker.counts)):
                break
            if proc.returncode is not None:
                raise RuntimeError(f"the client worker exited ({proc.returncode}) before the soak ended")
            await asyncio.sleep(min(args.sample_every, max(0.0, end - loop.time())))
        after_snapshot = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
        orphans = await _orphans_closed(twin.server, proc, worker, args) if args.drop_every > 0 else None
        after_types = object_types()
        steady = [r for r in rows if r.t_s >= args.warmup_minutes * 60.0]
        result = {
            "rows": [asdict(r) for r in rows],
            "notifications": worker.counts["notifications"], "batches_started": worker.counts["batches"],
            "clients_dropped": worker.counts["drops"], "clients": worker.counts["clients"],
            "vars_per_client": worker.counts["vars"], "distinct_variables": worker.counts["distinct"],
            "status_line": twin.status_line(), "dropped_sessions_closed": orphans,
            "heap_trims": twin.heap_trimmer.trims if twin.heap_trimmer else 0,
            "heap_trim_longest_ms": round(twin.heap_trimmer.longest_ms, 1) if twin.heap_trimmer else None,
        }
        for key in ("rss_mb", "heap_mb", "disk_mb", "open_files", "objects", "sqlite_mb", "malloc_used_mb",
                    "malloc_free_mb"):
            pts = [(r.t_s, getattr(r, key)) for r in steady if getattr(r, key) is not None]
            g = fit_growth([p[0] for p in pts], [float(p[1]) for p in pts])
            result[f"growth_{key}_per_h"] = asdict(g) if g else None
        # SQLite's page caches fill up to their bounds (the historian writer's, the audit store's): RSS less what
        # SQLite holds is the growth that no bound explains
        pts = [(r.t_s, r.rss_mb - r.sqlite_mb) for r in steady if r.rss_mb is not None and r.sqlite_mb is not None]
        g = fit_growth([p[0] for p in pts], [p[1] for p in pts])
        result["growth_rss_less_sqlite_mb_per_h"] = asdict(g) if g else None
        if base is not None:
            if base[0] is not None and after_snapshot is not None:
                result["top_growing_sites"] = top_sites(tracemalloc.Snapshot.load(str(base[0])), after_snapshot,
                                                        args.top)
            result["top_growing_types"] = top_types(base[1], after_types, args.top)
    finally:
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if twin is not None:
            await twin.stop()
        await bench.stop()
    return result


SMOKE_ROWS = 6
"""Rows a smoke run takes at least: enough for a fit of 3 points or more after its warm-up."""


def smoke_seen(rows: list[Row], counts: dict[str, int]) -> bool:
    """A smoke run has seen what it proves: rows for a growth fit, a batch started, a client dropped."""
    return len(rows) >= SMOKE_ROWS and counts["batches"] >= 1 and counts["drops"] >= 1


async def _orphans_closed(server: object, proc: asyncio.subprocess.Process, worker: WorkerOutput,
                          args: argparse.Namespace) -> dict:
    """Stop dropping clients, then wait (up to 1.5 times the dropped clients' session timeout + 60 s: the last one
    dropped just before) until the server holds only the worker's sessions again: the clients that vanished were
    cleaned up, and so were asyncua's per-subscription loggers (``subscription_loggers``, at most one per live
    subscription)."""
    from plc_adapters.asyncua_seam import subscription_loggers

    proc.send_signal(signal.SIGUSR1)  # the worker stops its dropper (its clients stay)
    keep = worker.counts["clients"] + 1  # subscribers + the operator
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    limit = 1.5 * (args.drop_session_timeout or 600.0) + 60.0  # asyncua clamps a session timeout to 600 s
    sessions, subs, items = server_counts(server)
    while (sessions > keep or subs > worker.counts["clients"]) and loop.time() - t0 < limit:
        await asyncio.sleep(1.0)
        sessions, subs, items = server_counts(server)
    loggers = subscription_loggers()
    return {"closed": sessions <= keep and subs <= worker.counts["clients"] and loggers <= subs,
            "waited_s": round(loop.time() - t0, 1), "sessions": sessions, "subscriptions": subs,
            "monitored_items": items, "expected_sessions": keep, "subscription_loggers": loggers}


def report(result: dict) -> None:
    print()
    for key, label, unit in (("rss_mb", "RSS", "MB/h"), ("heap_mb", "Python heap", "MB/h"),
                             ("disk_mb", "disk (history + audit)", "MB/h"), ("open_files", "open files", "/h"),
                             ("objects", "Python objects", "/h"), ("sqlite_mb", "SQLite memory", "MB/h"),
                             ("rss_less_sqlite_mb", "RSS less SQLite's", "MB/h"),
                             ("malloc_used_mb", "malloc in use", "MB/h"),
                             ("malloc_free_mb", "malloc free, kept", "MB/h")):
        g = result.get(f"growth_{key}_per_h")
        if g:
            print(f"{label:>24}: {g['mb_per_h']:+10.3f} {unit}  (95 % CI {g['ci_low']:+.3f} .. {g['ci_high']:+.3f}, "
                  f"{g['points']} points after warm-up)")
    print(f"{'notifications':>24}: {result['notifications']:,} ({result['clients']} clients x "
          f"{result['vars_per_client']} variables); batches started {result['batches_started']}; clients dropped "
          f"{result['clients_dropped']}")
    if result.get("heap_trims"):
        print(f"{'heap trims':>24}: {result['heap_trims']} (longest {result['heap_trim_longest_ms']} ms)")
    if result.get("dropped_sessions_closed"):
        o = result["dropped_sessions_closed"]
        print(f"{'dropped clients':>24}: {'cleaned up' if o['closed'] else 'NOT cleaned up'} after {o['waited_s']} s "
              f"({o['sessions']} sessions, {o['subscriptions']} subscriptions, {o['monitored_items']} monitored "
              f"items, {o.get('subscription_loggers', '?')} subscription loggers left; expected "
              f"{o['expected_sessions']} sessions)")
    for site in result.get("top_growing_sites", [])[:10]:
        print(f"  +{site['grew_kb']:9.1f} KiB ({site['count_diff']:+d} blocks) {site['site']}")
    for t in result.get("top_growing_types", [])[:10]:
        print(f"  +{t['grew']:7d} {t['type']} (now {t['now']})")


# ------------------------------------------------------------------------------------------------------- the worker

class _Count:
    """asyncua subscription handler: counts data-change notifications."""

    n = 0

    def datachange_notification(self, node: object, val: object, data: object) -> None:
        _Count.n += 1

    def status_change_notification(self, status: object) -> None:
        pass


async def _line_variables(client: object, namespace: str, limit: int) -> list[str]:
    """The first ``limit`` Variable node ids (by node id) under Objects in the line's namespace (one Browse per
    object or variable: the node class comes with each reference)."""
    from asyncua import ua

    idx = await client.get_namespace_index(namespace)  # type: ignore[attr-defined]
    found: set[str] = set()
    todo = [client.nodes.objects]  # type: ignore[attr-defined]
    seen: set[str] = set()
    mask = ua.NodeClass.Object | ua.NodeClass.Variable
    while todo:
        node = todo.pop()
        for ref in await node.get_children_descriptions(nodeclassmask=mask):
            nid = ref.NodeId
            if nid.NamespaceIndex != idx or nid.to_string() in seen:
                continue
            seen.add(nid.to_string())
            if ref.NodeClass == ua.NodeClass.Variable:
                found.add(nid.to_string())
            todo.append(client.get_node(nid))  # type: ignore[attr-defined]
    return sorted(found)[:limit]


async def _subscriber(url: str, nodes_ids: list[str], publish_ms: float, session_timeout_s: float = 0.0) -> object:
    from asyncua import Client

    client = Client(url, timeout=30, watchdog_intervall=3600.0)
    if session_timeout_s > 0:
        client.session_timeout = int(session_timeout_s * 1000)  # requested; the server clamps it (5 s .. 600 s)
    await client.connect()
    sub = await client.create_subscription(publish_ms, _Count())
    await sub.subscribe_data_change([client.get_node(i) for i in nodes_ids], queuesize=1)
    return client


async def _batches(url: str, namespace: str, loops: list[str], stop: asyncio.Event) -> None:
    """As the operator: every loop in mode mpc, and StartBatch whenever its batch is not running (a session that
    fails under load is opened again)."""
    from asyncua import Client, ua

    user, _, password = os.environ.get(OPERATOR_ENV, ":").partition(":")
    started = 0
    while not stop.is_set():
        client = Client(url, timeout=60, watchdog_intervall=3600.0)
        client.set_user(user)
        client.set_password(password)
        try:
            async with client:
                idx = await client.get_namespace_index(namespace)
                for p in loops:
                    await client.get_node(ua.NodeId(f"{p}.mode", idx)).write_value(
                        ua.Variant("mpc", ua.VariantType.String))
                while not stop.is_set():
                    for p in loops:
                        if not await client.get_node(ua.NodeId(f"{p}.batch_active", idx)).read_value():
                            try:
                                await client.get_node(ua.NodeId(p, idx)).call_method(
                                    ua.NodeId(f"{p}.StartBatch", idx))
                            except ua.UaStatusCodeError as exc:  # e.g. no Good measurement yet: try again
                                print(f"batch driver: StartBatch refused ({exc!r})", flush=True)
                                continue
                            started += 1
                            print(f"batches {started}", flush=True)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 2.0)
        except (TimeoutError, OSError, ua.UaError) as exc:
            print(f"batch driver: {exc!r}; again in 5 s", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)


async def _dropper(url: str, node_ids: list[str], publish_ms: float, every_s: float, session_timeout_s: float,
                   stop: asyncio.Event) -> None:
    """Every ``every_s``: a client process connects, subscribes, and is killed without closing anything."""
    drops = 0
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--drop-once", url, "--publish-ms", str(publish_ms),
            "--drop-session-timeout", str(session_timeout_s),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(("\n".join(node_ids) + "\n\n").encode())
        await proc.stdin.drain()
        line = b""
        with contextlib.suppress(TimeoutError):
            line = await asyncio.wait_for(proc.stdout.readline(), 60.0)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()  # SIGKILL: no CloseSession, no DeleteSubscriptions, no TCP goodbye from asyncua
        await proc.wait()
        if line.strip() == b"subscribed":
            drops += 1
            print(f"drops {drops}", flush=True)
        else:
            print(f"a dropping client did not subscribe (exit {proc.returncode})", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def _drop_once(url: str, publish_ms: float, session_timeout_s: float) -> None:
    ids = []
    while line := sys.stdin.readline().strip():
        ids.append(line)
    client = await _subscriber(url, ids, publish_ms, session_timeout_s)
    print("subscribed", flush=True)
    await asyncio.Event().wait()
    del client


async def worker(args: argparse.Namespace) -> None:
    from asyncua import Client

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Client(args.worker, timeout=60) as browser:
        line = await _line_variables(browser, args.namespace, args.vars)
    ids = [line[i % len(line)] for i in range(args.vars)]  # a line with fewer variables: some twice
    clients = [await _subscriber(args.worker, ids, args.publish_ms) for _ in range(args.clients)]
    tasks = [asyncio.create_task(_batches(args.worker, args.namespace, args.loop or [], stop))]
    stop_dropping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, stop_dropping.set)
    if args.drop_every > 0:
        tasks.append(asyncio.create_task(_dropper(args.worker, ids, args.publish_ms, args.drop_every,
                                                    args.drop_session_timeout, stop_dropping)))
    print(f"vars {len(ids)}", flush=True)
    print(f"distinct {len(line)}", flush=True)
    print(f"clients {len(clients)}", flush=True)
    while not stop.is_set():
        for t in tasks:
            if t.done() and t.exception() is not None:
                print(f"worker task failed: {t.exception()!r}", flush=True)
                tasks.remove(t)
        print(f"notifications {_Count.n}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    stop_dropping.set()
    for t in tasks:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(t, 10.0)
    for c in clients:
        with contextlib.suppress(Exception):
            await c.disconnect()  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from linetwin_examples import example_path

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(example_path("pilot_line.toml")), help="line config (default: demo line)")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--warmup-minutes", type=float, default=None,
                   help="rows before this are left out of the fit (default: a quarter of --minutes, at most 10)")
    p.add_argument("--sample-every", type=float, default=30.0, help="seconds between rows")
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--vars", type=int, default=400, help="variables each client subscribes to")
    p.add_argument("--publish-ms", type=float, default=250.0)
    p.add_argument("--speed", type=float, default=20.0, help="plant speed (× real time), as `linetwin demo --speed`")
    p.add_argument("--drop-every", type=float, default=0.0,
                   help="seconds between clients that connect, subscribe and vanish without closing (0: none)")
    p.add_argument("--drop-session-timeout", type=float, default=0.0,
                   help="session timeout (s) the dropping clients request (0: asyncua's 1 h, which the server clamps "
                        "to its 600 s maximum); the soak ends by waiting for their sessions to be closed")
    p.add_argument("--heap-trim-every", type=float, default=60.0,
                   help="seconds between the twin's malloc_trim calls (twin_server/heap_trim.py; 0: none)")
    p.add_argument("--trace-frames", type=int, default=1, help="tracemalloc frames per allocation (0: no tracing)")
    p.add_argument("--trace-from", choices=("start", "serving"), default="start",
                   help="trace allocations from the start (the heap column includes the twin's start-up) or from "
                        "the moment the twin serves (a faster start-up and snapshot comparison; the same growth)")
    p.add_argument("--top", type=int, default=15, help="growing allocation sites / object types to report")
    p.add_argument("--out", help="write the rows and fits as JSON here")
    p.add_argument("--smoke", action="store_true",
                   help="rows every 2 s until 6 rows, a batch and a dropped client (at most 1 min), 2 clients x 50 "
                        "variables, tracing from serving, JSON in a temp dir")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--drop-once", help=argparse.SUPPRESS)
    p.add_argument("--namespace", help=argparse.SUPPRESS)
    p.add_argument("--loop", action="append", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.smoke:
        args.minutes, args.sample_every, args.clients, args.vars = 1.0, 2.0, 2, 50
        args.warmup_minutes, args.trace_from = 0.05, "serving"
        args.drop_every = args.drop_every or 10.0
        args.drop_session_timeout = args.drop_session_timeout or 5.0
    if args.warmup_minutes is None:
        args.warmup_minutes = min(10.0, args.minutes / 4)
    for name in ("minutes", "sample_every", "publish_ms", "speed"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')}: got {getattr(args, name)}; expected > 0")
    if args.clients < 1 or args.vars < 1:
        p.error("--clients and --vars: expected ≥ 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        asyncio.run(worker(args))
        return 0
    if args.drop_once:
        asyncio.run(_drop_once(args.drop_once, args.publish_ms, args.drop_session_timeout))
        return 0
    logging.basicConfig(level=logging.ERROR)
    if args.trace_frames > 0 and args.trace_from == "start":
        tracemalloc.start(args.trace_frames)
    with tempfile.TemporaryDirectory(prefix="linetwin-soak-") as tmp:
        work = Path(tmp)
        result = asyncio.run(soak(args, work))
        out = Path(args.out) if args.out else (
            Path(tempfile.mkdtemp(prefix="linetwin-soak-smoke-")) / "soak.json" if args.smoke else None)
        result["meta"] = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "argv": sys.argv[1:],
                          "python": platform.python_version(), "machine": platform.machine(),
                          "cpus": os.cpu_count(), "minutes": args.minutes, "warmup_minutes": args.warmup_minutes,
                          "speed": args.speed, "publish_ms": args.publish_ms, "drop_every_s": args.drop_every,
                          "heap_trim_every_s": args.heap_trim_every,
                          "trace_frames": args.trace_frames, "trace_from": args.trace_from}
        report(result)
        if out is not None:
            out.write_text(json.dumps(result, indent=1))
            print(f"\nwrote {out}")
            if args.smoke:
                print(f"smoke ok: {len(result['rows'])} rows, {result['notifications']} notifications", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
