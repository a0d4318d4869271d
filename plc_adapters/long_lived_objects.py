"""Keeping CPython's cyclic garbage collector off the twin's long-lived objects (issue 20: start-up of a 10,000-tag
line in < 5 s) and off the standard address space asyncua fills (issue 14: the suite's ~110 servers).

A 10,000-tag line with a limit alarm on every tag is ~170,000 nodes: some 2 million Python objects (asyncua's
``NodeData``, ``AttributeValue``, ``DataValue``, ``Variant``, ``ReferenceDescription`` …) made in one burst and kept
for the life of the server. CPython runs a full (generation-2) collection whenever the objects that survived the
younger collections exceed 25 % of those already in the oldest generation, and a full collection traverses every
tracked object: while the address space grows, full collections run again and again over a heap that grows —
about 70 % of the start-up's CPU time (the figures are in ``docs/performance.md``, Mirror path). Once the twin
serves, the same collections would keep traversing the nodes' objects for nothing (none is garbage while the
server runs) and hold the scan loop for as long as each takes.

- :func:`collector_paused`: no automatic collection while the address space is built (pauses nest, from any thread;
  the collector runs again when the last one ends, unless it was off before the first). The twin's build and the
  asyncua seam's fill and snapshot of the standard address space (``asyncua_seam.init_server``: ~480,000 objects
  made or pickled in a burst cost 2–10× more CPU with the collector running) pause it; it lives here, in
  ``plc_adapters``, so that both stand on one pause.
- :func:`freeze_long_lived`, once the twin is built: every object alive moves to the collector's permanent
  generation (``gc.freeze``, Python ≥ 3.7; constant time): reference counting still frees them, the cyclic
  collector no longer traverses them. No collection first: one full collection of the new heap costs as much as
  the rest of the start-up, and the build leaves little cyclic garbage (it is collected after :func:`thaw`).
- :func:`thaw`, when the twin stops: the frozen objects go back to the collector, so that a stopped twin's
  address space (cycles: server ↔ sessions ↔ nodes) is collected and a process that starts many twins (the test
  suite) keeps nothing frozen for ever. It thaws every frozen object of the process: another twin still serving
  in it pays full collections again until it is frozen anew — a cost, never a leak. Most of a stopped twin is not
  left to the collector at all: its server's nodes are dropped at stop (``asyncua_seam.release_address_space``) and
  freed by reference counting.

Nothing here changes what a client sees; without it the twin is only slower to start.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


class _CollectorPauses:
    """How many builds pause the collector now, and whether it was enabled before the first."""

    def __init__(self) -> None:
        self.count = 0
        self.was_enabled = True
        self.lock = threading.Lock()
        """Pauses begin and end in worker threads too (the seam copies the standard address space in one)."""


_pauses = _CollectorPauses()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic cyclic collection inside the block (explicit ``gc.collect()`` calls still run). The collector is
    process-wide: a pause in one thread pauses it for all until the last pause of any thread ends."""
    with _pauses.lock:
        if _pauses.count == 0:
            _pauses.was_enabled = gc.isenabled()
            gc.disable()
        _pauses.count += 1
    try:
        yield
    finally:
        with _pauses.lock:
            _pauses.count -= 1
            if _pauses.count == 0 and _pauses.was_enabled:
                gc.enable()


def freeze_long_lived() -> None:
    """Move every object alive (tracked by the collector) to the permanent generation (constant time; how many
    is not counted: ``gc.get_freeze_count()`` walks the whole permanent generation, ~0.3 s at a few million
    objects)."""
    gc.freeze()


def thaw() -> None:
    """Every frozen object back to the oldest generation (collected again when it becomes garbage)."""
    gc.unfreeze()
