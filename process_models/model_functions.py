"""casadi functions built from a compiled model, kept for reuse: the one cache of the simulator's propagators
(:mod:`process_models.simulator`) and the chromatography column's section integrators
(:mod:`process_models.chromatography.column`).

Building a casadi integrator (the DAE, its Jacobian's sparsity, the SUNDIALS set-up) often costs more than one
integration with it, and the same model is integrated again and again with the same structure (a fit, an
estimator, a campaign), its initial state and parameters being the call's inputs. A :class:`PerModelFunctions`
keeps what was built:

- **per model, weakly**: an entry lives as long as its :class:`~process_models.declaration.CompiledModel` (what is
  built must not reference the model, or the entry would keep it alive);
- **per thread**: a casadi Function must not be evaluated from two threads at once (one IPOPT solver called from
  two threads crashes the process), so each thread builds and keeps its own;
- **bounded**: at most ``per_model`` entries per model, the least recently used dropped first, so that a long-lived
  twin whose thread pool changes threads, or a study over many grids, does not grow without end. A dropped entry
  is built again when next asked for; results do not change.

The table is guarded by a lock (threads ask at once); a build runs outside it, so two threads that miss the same
key at once each build (each keeps its own anyway, being per thread).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from process_models.declaration import CompiledModel

T = TypeVar("T")


class PerModelFunctions(Generic[T]):
    """Built objects (``T``) per model, thread and key; at most ``per_model`` per model (see the module docstring)."""

    def __init__(self, per_model: int) -> None:
        if per_model < 1:
            raise ValueError(f"per_model must be >= 1, got {per_model}")
        self.per_model = per_model
        self._built: weakref.WeakKeyDictionary[CompiledModel, OrderedDict[tuple[int, Hashable], T]] = \
            weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, model: CompiledModel, key: Hashable, build: Callable[[], T]) -> T:
        """What ``build()`` made for ``model`` and ``key`` in this thread, built now if not kept."""
        full_key = (threading.get_ident(), key)
        with self._lock:
            per_model = self._built.setdefault(model, OrderedDict())
            found = per_model.get(full_key)
            if found is not None:
                per_model.move_to_end(full_key)
                return found
        built = build()
        with self._lock:
            per_model[full_key] = built
            while len(per_model) > self.per_model:
                per_model.popitem(last=False)
        return built

    def held(self, model: CompiledModel) -> dict[Hashable, T]:
        """What is kept for ``model`` in this thread, key → object (a copy)."""
        me = threading.get_ident()
        with self._lock:
            return {key: value for (thread, key), value in self._built.get(model, {}).items() if thread == me}
