"""NMPC with a surrogate prediction model and a physics fallback.

:class:`SurrogateFallbackNmpc` holds two NLPs of the same problem: one predicting with a state-transition
surrogate translated to casadi (:meth:`process_models.surrogates.state_transition.StateTransitionSurrogate
.interval_function`), one with the declared physics (RK4). It solves with the surrogate only while the surrogate
is trusted, and switches to the physics NMPC, recording a :class:`PredictionSwitchEvent` (and a log warning),
when

* the current state (with the last inputs and the parameters) leaves the surrogate's validity envelope,
* a surrogate solve fails, or
* the surrogate's predicted trajectory and the physics model's rollout of the same inputs disagree by more than
  ``disagreement_threshold`` (NRMSE of the states over the horizon, each normalised by its largest magnitude).

On the physics NMPC it keeps checking the surrogate against each physics solution; after ``recover_steps``
consecutive trusted steps (inside the envelope, disagreement within ``recover_fraction`` x the threshold: a
hysteresis against flapping) it switches back, with an event.
It has the :class:`~controllers.nmpc.NonlinearMpc` interface (``step``, ``reset``, ``interval_lengths``), so a
control plan uses it in place of one.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from controllers.nmpc import NmpcConfig, NmpcResult, NonlinearMpc
from process_models.declaration import CompiledModel
from process_models.discretization import rk4_interval

if TYPE_CHECKING:  # torch is imported only where a surrogate is actually used
    from process_models.surrogates.artifact import SurrogateArtifact
    from process_models.surrogates.state_transition import StateTransitionSurrogate

__all__ = ["PredictionSwitchEvent", "SurrogateFallbackNmpc", "TrustSettings", "prediction_switches"]

_LOG = logging.getLogger(__name__)
SURROGATE = "surrogate"
PHYSICS = "physics"
SWITCHES_KEPT = 1000
"""Prediction-model switches a :class:`SurrogateFallbackNmpc` keeps in ``events`` (~150 bytes each): the newest 1000,
so a twin running for months holds a bounded record (issue 21); every switch is also logged."""


@dataclass(frozen=True)
class TrustSettings:
    """``disagreement_threshold``: largest state NRMSE (surrogate vs physics over the horizon, fraction);
    ``recover_steps``: consecutive trusted steps before switching back to the surrogate, each with a disagreement
    of at most ``recover_fraction`` x the threshold (hysteresis, so the NMPC does not flap between models)."""

    disagreement_threshold: float = 0.02
    recover_steps: int = 2
    recover_fraction: float = 0.5
    """hysteresis: back to the surrogate only while disagreement <= recover_fraction x threshold"""


@dataclass(frozen=True)
class PredictionSwitchEvent:
    """The NMPC's prediction model changed at ``time_s`` (s) to ``used`` (``"surrogate"``/``"physics"``)."""

    time_s: float
    used: str
    reason: str


class SurrogateFallbackNmpc:
    """An NMPC predicting with a surrogate while trusted, else with the physics model (see the module docstring)."""

    def __init__(self, model: CompiledModel, config: NmpcConfig, artifact: SurrogateArtifact,
                 trust: TrustSettings = TrustSettings(), steps_per_interval: int | None = None) -> None:
        from process_models.surrogates.state_transition import StateTransitionSurrogate

        surrogate = artifact.surrogate
        if not isinstance(surrogate, StateTransitionSurrogate):
            raise ValueError(f"surrogate NMPC needs a state_transition surrogate, got {artifact.kind!r}")
        self.model, self.config, self.artifact, self.trust = model, config, artifact, trust
        steps = steps_per_interval or max(1, int(round(config.sample_period_s / surrogate.step_s)))
        self.physics = NonlinearMpc(model, config)
        self.surrogate = NonlinearMpc(model, config, prediction=surrogate.interval_function(model, steps),
                                      prediction_model=SURROGATE)
        self._physics_interval = rk4_interval(model, config.substeps, "fallback_physics_interval")
        self._surrogate_interval = surrogate.interval_function(model, steps, "fallback_surrogate_interval")
        self._mv_names = [mi.name for mi in config.inputs]
        self.active = SURROGATE
        self.events: deque[PredictionSwitchEvent] = deque(maxlen=SWITCHES_KEPT)
        """The newest switches (all are logged); ``switch_count`` counts every switch since construction."""
        self.switch_count = 0
        self.last_disagreement = math.nan
        self.last_in_envelope = True
        self._trusted_steps = 0
        # a solve abandoned at its deadline keeps running in its worker thread: the next step waits for it
        # instead of using the same casadi functions from two threads at once
        self._lock = threading.Lock()

    @property
    def prediction_model(self) -> str:
        return self.active

    def build(self) -> None:
        """Build both NMPCs now, if built deferred (:func:`controllers.nmpc.deferred_nlp_build`)."""
        self.physics.build()
        self.surrogate.build()

    def reset(self) -> None:
        self.physics.reset()
        self.surrogate.reset()

    def interval_lengths(self, time_s: float, batch_end_s: float | None) -> np.ndarray:
        return self.physics.interval_lengths(time_s, batch_end_s)

    # -- trust checks ---------------------------------------------------------------------------------
    def _full_inputs(self, mv: Mapping[str, float], disturbances: Mapping[str, float | np.ndarray]) -> np.ndarray:
        values = {**{n: float(v) for n, v in mv.items()}, **dict(disturbances)}
        for spec in self.model.declaration.inputs:
            values.setdefault(spec.name, spec.nominal)
        return self.model.pack_inputs(values)

    def in_envelope(self, states: Mapping[str, float | np.ndarray], inputs: Mapping[str, float],
                    parameters: Mapping[str, float] | None, disturbances: Mapping[str, float | np.ndarray]) -> bool:
        """Whether (state, last inputs, parameters) lies in the surrogate's validity envelope."""
        s: StateTransitionSurrogate = self.artifact.surrogate
        x = self.model.pack_states(states)
        u = self._full_inputs(inputs, disturbances)
        values = self.model.declaration.parameter_values(parameters)
        p = np.array([values[n] for n in s.parameter_names])
        return bool(self.artifact.envelope.check(s.features(x, u, p if p.size else None)).inside[0])

    def disagreement(self, result: NmpcResult, states: Mapping[str, float | np.ndarray],
                     parameters: Mapping[str, float] | None, disturbances: Mapping[str, float | np.ndarray],
                     batch_end_s: float | None) -> float:
        """State NRMSE between the surrogate's and the physics model's rollouts of ``result``'s input moves."""
        x_s = x_p = self.model.pack_states(states)
        p = self.model.pack_parameters(parameters)
        dt = self.interval_lengths(result.time_s, batch_end_s)
        t = result.time_s
        xs_all, xp_all = [], []
        for k, h in enumerate(dt):
            u = self._full_inputs({n: result.trajectory.inputs[n][k] for n in self._mv_names}, disturbances)
            x_s = np.asarray(self._surrogate_interval(x_s, u, p, t, h), dtype=float).ravel()
            x_p = np.asarray(self._physics_interval(x_p, u, p, t, h), dtype=float).ravel()
            xs_all.append(x_s)
            xp_all.append(x_p)
            t += h
        xs, xp = np.array(xs_all), np.array(xp_all)
        scale = np.maximum(np.max(np.abs(xp), axis=0), 1e-300)
        err = float(np.sqrt(np.mean(((xs - xp) / scale) ** 2)))
        return err if math.isfinite(err) else math.inf

    def _switch(self, time_s: float, used: str, reason: str) -> None:
        self.active = used
        self._trusted_steps = 0
        event = PredictionSwitchEvent(float(time_s), used, reason)
        self.events.append(event)
        self.switch_count += 1
        _LOG.warning("NMPC prediction model -> %s at t=%.0f s: %s", used, time_s, reason)

    # -- stepping ---------------------------------------------------------------------------------------
    def step(self, time_s: float, states: Mapping[str, float | np.ndarray], previous_inputs: Mapping[str, float],
             references: Mapping[str, float] | None = None, parameters: Mapping[str, float] | None = None,
             disturbances: Mapping[str, float | np.ndarray] | None = None,
             batch_end_s: float | None = None) -> NmpcResult:
        """One NMPC step with the trusted prediction model (arguments as :meth:`NonlinearMpc.step`)."""
        with self._lock:
            return self._step(time_s, states, previous_inputs, references, parameters, disturbances, batch_end_s)

    def _step(self, time_s: float, states: Mapping[str, float | np.ndarray], previous_inputs: Mapping[str, float],
              references: Mapping[str, float] | None, parameters: Mapping[str, float] | None,
              disturbances: Mapping[str, float | np.ndarray] | None, batch_end_s: float | None) -> NmpcResult:
        dist = dict(disturbances or {})
        kwargs = {"references": references, "parameters": parameters, "disturbances": disturbances,
                  "batch_end_s": batch_end_s}
        inside = self.in_envelope(states, previous_inputs, parameters, dist)
        self.last_in_envelope = inside
        spent = 0.0
        if self.active == SURROGATE:
            if not inside:
                self._switch(time_s, PHYSICS, "state left the surrogate's validity envelope")
            else:
                result = self.surrogate.step(time_s, states, previous_inputs, **kwargs)
                spent = result.solve_time_s
                if not result.success:
                    self._switch(time_s, PHYSICS, f"surrogate NMPC solve failed ({result.status})")
                else:
                    self.last_disagreement = self.disagreement(result, states, parameters, dist, batch_end_s)
                    if self.last_disagreement > self.trust.disagreement_threshold:
                        self._switch(time_s, PHYSICS, f"surrogate and physics disagree: state NRMSE "
                                                      f"{self.last_disagreement:.2%} > "
                                                      f"{self.trust.disagreement_threshold:.2%}")
                    else:
                        return replace(result, status=f"surrogate: {result.status}")
        result = self.physics.step(time_s, states, previous_inputs, **kwargs)
        if inside and result.success:
            self.last_disagreement = self.disagreement(result, states, parameters, dist, batch_end_s)
            limit = self.trust.disagreement_threshold * (self.trust.recover_fraction if self.active == PHYSICS else 1.0)
            trusted = self.last_disagreement <= limit
            self._trusted_steps = self._trusted_steps + 1 if trusted else 0
            if self.active == PHYSICS and self._trusted_steps >= self.trust.recover_steps:
                self._switch(time_s, SURROGATE, f"trust returned: in envelope and within {limit:.2%} for "
                                                f"{self._trusted_steps} steps")
        else:
            self._trusted_steps = 0
        return replace(result, status=f"physics: {result.status}", solve_time_s=result.solve_time_s + spent)


def prediction_switches(nmpc: object, seen: int) -> tuple[list[PredictionSwitchEvent], int]:
    """(the prediction-model switches of ``nmpc`` after the first ``seen`` that are still kept, the count seen
    now): none for a plain NMPC. Switches counted from construction, so the newest are found after old ones
    left the bounded ``events``."""
    if not isinstance(nmpc, SurrogateFallbackNmpc):
        return [], seen
    new = nmpc.switch_count - seen
    kept = list(nmpc.events)
    return (kept[max(0, len(kept) - new):] if new > 0 else []), nmpc.switch_count
