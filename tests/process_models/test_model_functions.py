"""PerModelFunctions: the one cache of casadi functions built from a model (simulator propagators, column section
integrators): per model (weakly), per thread, least recently used dropped past the bound."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from process_models.model_functions import PerModelFunctions
from tests.controllers.models import thermal_tank as _model


def test_a_build_is_kept_per_model_and_key_and_the_least_recently_used_goes_first():
    cache: PerModelFunctions[object] = PerModelFunctions(per_model=2)
    first, second = _model(), _model()
    builds: list[str] = []

    def build(name: str):
        return lambda: builds.append(name) or object()

    a = cache.get(first, "a", build("a"))
    assert cache.get(first, "a", build("a again")) is a and builds == ["a"]
    b = cache.get(second, "a", build("a of the second model"))
    assert b is not a  # another model, its own
    cache.get(first, "b", build("b"))
    cache.get(first, "a", build("a, used again"))  # a is now the most recently used of the first model
    cache.get(first, "c", build("c"))  # past the bound: b goes
    assert set(cache.held(first)) == {"a", "c"} and cache.held(first)["a"] is a
    assert builds == ["a", "a of the second model", "b", "c"]
    with pytest.raises(ValueError, match="per_model"):
        PerModelFunctions(per_model=0)


def test_each_thread_builds_and_keeps_its_own():
    cache: PerModelFunctions[object] = PerModelFunctions(per_model=4)
    model = _model()
    mine = cache.get(model, "k", object)
    theirs: list[object] = []
    thread = threading.Thread(target=lambda: theirs.append(cache.get(model, "k", object)))
    thread.start()
    thread.join()
    assert theirs[0] is not mine and cache.get(model, "k", object) is mine
    assert list(cache.held(model).values()) == [mine]  # this thread's only


def test_an_entry_does_not_keep_its_model_alive():
    cache: PerModelFunctions[object] = PerModelFunctions(per_model=4)
    model = _model()
    cache.get(model, "k", object)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
