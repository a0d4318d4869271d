"""Running a state-transition surrogate beside the physics model on live state estimates.

Each update takes the previous state estimate, the inputs applied since and the interval length, and predicts
the state one interval ahead twice: with the surrogate (its casadi translation, the step scaled to the interval)
and with the physics model (RK4, ``substeps`` steps). The watched outputs of both predictions are kept over a
window of ``window`` updates; their disagreement is the NRMSE over that window, each output normalised by its
largest physics magnitude in the window. ``drift`` is true while the disagreement exceeds ``threshold``;
``drift_started`` marks the update at which it first does (the drift event).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from process_models.declaration import CompiledModel
from process_models.discretization import rk4_interval
from process_models.surrogates.artifact import SurrogateArtifact
from process_models.surrogates.state_transition import StateTransitionSurrogate

__all__ = ["MonitorReading", "SurrogateMonitor"]


@dataclass(frozen=True)
class MonitorReading:
    """One comparison: watched outputs (SI) predicted by the surrogate and by physics, disagreement (fraction),
    whether the starting point was in the surrogate's envelope, and the drift flags."""

    time_s: float
    surrogate_outputs: dict[str, float]
    physics_outputs: dict[str, float]
    disagreement: float
    in_envelope: bool
    drift: bool
    drift_started: bool


class SurrogateMonitor:
    """Compares a surrogate with the physics model on live data (see the module docstring)."""

    def __init__(self, artifact: SurrogateArtifact, model: CompiledModel, outputs: Sequence[str],
                 threshold: float = 0.02, window: int = 10, substeps: int = 4) -> None:
        surrogate = artifact.surrogate
        if not isinstance(surrogate, StateTransitionSurrogate):
            raise ValueError(f"a live surrogate monitor needs a state_transition surrogate, got {artifact.kind!r}")
        unknown = [o for o in outputs if o not in model.output_slices]
        if unknown:
            raise ValueError(f"surrogate monitor: outputs {unknown} are not outputs of '{model.declaration.name}'")
        self.artifact, self.model, self.outputs = artifact, model, tuple(outputs)
        self.threshold, self.window = float(threshold), int(window)
        self._surrogate_step = surrogate.interval_function(model, 1, "monitor_surrogate_step")
        self._physics_step = rk4_interval(model, substeps, "monitor_physics_step")
        self._rows = [model.output_slices[o].start for o in self.outputs]
        self._history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.window)
        self._drift = False

    def reset(self) -> None:
        self._history.clear()
        self._drift = False

    def update(self, time_s: float, states: Mapping[str, float | np.ndarray], inputs: Mapping[str, float],
               parameters: Mapping[str, float] | None, interval_s: float) -> MonitorReading:
        """Predict from ``states`` at ``time_s`` over ``interval_s`` s with ``inputs`` held (missing inputs at
        their nominal values) and compare."""
        m = self.model
        s: StateTransitionSurrogate = self.artifact.surrogate
        x = m.pack_states(states)
        u = m.pack_inputs({**m.declaration.nominal_inputs(), **dict(inputs)})
        values = m.declaration.parameter_values(parameters)
        p = np.array([values[n] for n in m.parameter_names])
        p_varied = np.array([values[n] for n in s.parameter_names])
        t1 = float(time_s) + float(interval_s)
        x_s = np.asarray(self._surrogate_step(x, u, p, time_s, interval_s), dtype=float).ravel()
        x_p = np.asarray(self._physics_step(x, u, p, time_s, interval_s), dtype=float).ravel()
        y_s = np.asarray(m.output(x_s, u, p, t1), dtype=float).ravel()[self._rows]
        y_p = np.asarray(m.output(x_p, u, p, t1), dtype=float).ravel()[self._rows]
        self._history.append((y_s, y_p))
        ys = np.array([h[0] for h in self._history])
        yp = np.array([h[1] for h in self._history])
        scale = np.maximum(np.max(np.abs(yp), axis=0), 1e-300)
        disagreement = float(np.sqrt(np.mean(((ys - yp) / scale) ** 2)))
        if not math.isfinite(disagreement):
            disagreement = math.inf
        inside = bool(self.artifact.envelope.check(s.features(x, u, p_varied if p_varied.size else None)).inside[0])
        drift = disagreement > self.threshold
        started = drift and not self._drift
        self._drift = drift
        return MonitorReading(float(t1), dict(zip(self.outputs, y_s.tolist(), strict=True)),
                              dict(zip(self.outputs, y_p.tolist(), strict=True)), disagreement, inside, drift,
                              started)
