"""asyncua server start-up: ``Server.init()`` as asyncua does it vs through the seam (``init_server``), CPU seconds.

asyncua fills every server's standard address space (6,174 nodes, ~480,000 Python objects) from its generated code;
the seam's ``init_server`` lets asyncua fill it for the first two servers of a process, pickles the second's node by
node, and every later server copies a standard node from that snapshot when it first reads it
(``plc_adapters/asyncua_seam.py``, "server start-up"; ``plc_adapters/copied_on_first_read.py``).
In one process: the seam's first server (asyncua's fill), its second (the fill and the snapshot), then ``--servers``
servers each way, interleaved (plain, seam, plain, …). Each server is dropped after its init, as a test drops its
servers, and each init is timed together with one full collection after it, in both modes, so that work the paused
collector only put off is counted too. CPU seconds of the process (``time.process_time``): the machine is shared.

Usage: ``python benchmarks/server_startup.py [--servers 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from plc_adapters.asyncua_seam import copied_node_counts, init_server, standard_space_counts  # noqa: E402


async def _plain(server: Server) -> None:
    await server.init()


async def _cpu_of_init(init: Any, copied: list[int] | None = None) -> float:
    """CPU seconds of one server's init and of one full collection after it (the server dropped). ``copied``: gets
    the number of standard nodes the init read (copied from the snapshot)."""
    start = time.process_time()
    server = Server()
    await init(server)
    if copied is not None:
        copied.append(copied_node_counts(server)[0])
    del server
    gc.collect()
    return time.process_time() - start


async def main_async(servers: int) -> dict[str, Any]:
    first = await _cpu_of_init(init_server)
    second = await _cpu_of_init(init_server)
    fills, copies, snapshot_bytes = standard_space_counts()
    assert (fills, copies) == (2, 0) and snapshot_bytes > 0, "the seam took no snapshot"
    plain, seam, copied = [], [], []
    for i in range(servers):
        print(f"server {i + 1}/{servers} ...", file=sys.stderr, flush=True)
        plain.append(await _cpu_of_init(_plain))
        seam.append(await _cpu_of_init(init_server, copied))
    assert standard_space_counts().copies == servers
    return {"servers": servers, "plain_init_cpu_s": plain, "seam_init_cpu_s": seam,
            "plain_median_cpu_s": statistics.median(plain), "seam_copy_median_cpu_s": statistics.median(seam),
            "standard_nodes_copied_at_init": max(copied), "seam_first_cpu_s": first,
            "seam_second_with_snapshot_cpu_s": second, "snapshot_bytes": snapshot_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=20, help="servers started each way after the seam's first two")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.servers = 1
    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(main_async(args.servers))
    plain, seam = result["plain_median_cpu_s"], result["seam_copy_median_cpu_s"]
    print(f"{'init (CPU s, with one full collection)':<44} {'median':>8}")
    print(f"{'asyncua Server.init()':<44} {plain:>8.3f}")
    print(f"{'init_server, copies on first read':<44} {seam:>8.3f}   ({plain / seam:.1f}× less)")
    print(f"{'init_server, first server (asyncua fills)':<44} {result['seam_first_cpu_s']:>8.3f}")
    print(f"{'init_server, second (fills, takes snapshot)':<44} {result['seam_second_with_snapshot_cpu_s']:>8.3f}")
    print(f"snapshot: {result['snapshot_bytes'] / 1e6:.1f} MB; a copy's init reads "
          f"{result['standard_nodes_copied_at_init']} standard nodes")
    write_results(args, "server_startup", {"machine": platform.platform(), "python": platform.python_version(),
                                           "time": datetime.now(UTC).isoformat(), **result})


if __name__ == "__main__":
    main()
