"""Free TCP ports for servers that must be told their port before they start.

A server that can bind port 0 and report its port should do that instead (the pymodbus peers and virtual PLCs
do). Some cannot: a subprocess (InfluxDB, node-opcua, ``linetwin serve``) or a twin whose endpoint URL names
its port. For those, :func:`free_tcp_port` hands out a port that no concurrent test can also get:

- ports come from a band *below* the kernel's ephemeral range (Linux: 32768–60999,
  ``/proc/sys/net/ipv4/ip_local_port_range``), so the kernel never gives one of them to a client socket or to
  another test's ``bind(("", 0))`` between our check and the server's bind;
- each pytest-xdist worker (``PYTEST_XDIST_WORKER=gwN``) draws from its own slice of the band, so parallel
  workers of one run never hand out the same port;
- within a process a port is handed out at most once, starting from a random offset in the slice (two runs
  on one machine rarely meet), and only after a bind without ``SO_REUSEADDR`` proved it free.
"""

from __future__ import annotations

import os
import random
import socket
import threading

BAND_START = 20_000
"""First port of the band (below the ephemeral range)."""
SLICES = 8
SLICE_SIZE = 1_500
"""8 slices of 1,500 ports: 20000–31999, below 32768."""

_lock = threading.Lock()
_handed_out: set[int] = set()
_cursor: int | None = None


def _slice_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = "".join(ch for ch in worker if ch.isdigit())
    return int(digits or 0) % SLICES


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and that no other test of this run is given (see module doc)."""
    global _cursor
    first = BAND_START + _slice_index() * SLICE_SIZE
    with _lock:
        if _cursor is None:
            _cursor = random.randrange(SLICE_SIZE)
        for _ in range(SLICE_SIZE):
            port = first + _cursor
            _cursor = (_cursor + 1) % SLICE_SIZE
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free TCP port left in {first}–{first + SLICE_SIZE - 1} for this process")
