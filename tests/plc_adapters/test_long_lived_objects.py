"""The collector and the twin's long-lived objects: paused while building (pauses nest, across threads too: the
asyncua seam pauses it in a worker thread), the objects frozen out of it once built, back to it at stop — a cycle
frozen with them is collected once thawed."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading

from plc_adapters.long_lived_objects import collector_paused
from tests.conftest import REPO_ROOT


class _Node:
    """An object in a reference cycle (only the cyclic collector can free it)."""

    def __init__(self) -> None:
        self.me = self


def test_pauses_nest_and_the_collector_runs_again_after_the_last():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_pauses_in_two_threads_nest_and_the_collector_runs_again_after_the_last_of_either():
    entered, leave, left = threading.Event(), threading.Event(), threading.Event()

    def other_thread() -> None:
        with collector_paused():
            entered.set()
            assert leave.wait(30)
        left.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        assert entered.wait(30)
        assert not gc.isenabled()
        with collector_paused():
            leave.set()
            assert left.wait(30)
            assert not gc.isenabled()  # the other thread's pause ended, this one has not
        assert gc.isenabled()
    finally:
        leave.set()
        thread.join(30)


def test_a_collector_that_was_off_stays_off_after_a_pause():
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


FROZEN_CYCLE = """
import gc, weakref
from plc_adapters.long_lived_objects import freeze_long_lived, thaw


class Node:
    def __init__(self):
        self.me = self


node = Node()
alive = weakref.ref(node)
try:
    freeze_long_lived()
    assert gc.get_freeze_count() > 0
    del node
    gc.collect()
    assert alive() is not None, "a frozen cycle was collected"  # frozen: the collector does not traverse it
finally:
    thaw()
assert gc.get_freeze_count() == 0, gc.get_freeze_count()
gc.collect()
assert alive() is None, "a thawed cycle was not collected"
print("frozen cycle kept, thawed cycle collected")
"""


def test_a_frozen_cycle_is_kept_until_thawed_then_collected():
    """In a fresh interpreter: the full collection after the thaw traverses the whole heap, which in a test process
    that ran hundreds of tests took ~2.8 CPU s; what freezing does to a cycle does not depend on the heap's size."""
    out = subprocess.run([sys.executable, "-c", FROZEN_CYCLE], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "frozen cycle kept, thawed cycle collected" in out.stdout
