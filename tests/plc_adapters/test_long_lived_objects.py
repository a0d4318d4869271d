"""The collector and the twin's long-lived objects: paused while building (pauses nest, across threads too: the
asyncua seam pauses it in a worker thread), the objects frozen out of it once built, back to it at stop — a cycle
frozen with them is collected once thawed."""

from __future__ import annotations

import gc
import threading
import weakref

from plc_adapters.long_lived_objects import collector_paused, freeze_long_lived, thaw


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


def test_a_frozen_cycle_is_kept_until_thawed_then_collected():
    node = _Node()
    alive = weakref.ref(node)
    try:
        frozen = freeze_long_lived()
        # the count only falls afterwards (a frozen object freed by reference counting leaves the permanent list)
        assert 0 < gc.get_freeze_count() <= frozen
        del node
        gc.collect()
        assert alive() is not None  # frozen: the collector does not traverse it
    finally:
        thaw()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None
