"""What a unit's control loop needs, independent of the unit's kind.

A :class:`ControlPlan` binds a declared model to the unit's tags (with unit conversions between the
tag's engineering units and the model's SI units), and carries the estimator factory, the NMPC, the
supervisor configuration, and the published quantities. Plans are built per unit kind from the
``[units.<unit>.control]`` table by the kind's control module, named in the unit-kind table
(:mod:`process_models.registry`, looked up by :mod:`controllers.plan_registry`; e.g.
:mod:`controllers.crystallization.control_plan`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controllers.nmpc import NonlinearMpc
from controllers.online_parameters import DEFAULT_HALFWIDTH_LIMIT, OnlineParameter
from controllers.supervisor import SupervisorConfig
from process_models.declaration import CompiledModel
from process_models.engineering_units import EngineeringUnit
from process_models.estimator import ExtendedKalmanFilter
from process_models.forecast import BandCalibration

if TYPE_CHECKING:
    from controllers.surrogate_prediction import SurrogateFallbackNmpc


@dataclass(frozen=True)
class MeasurementBinding:
    """A measured tag feeding a model output. ``unit``: the tag's engineering unit (converted to SI);
    ``model_factor``: extra factor from the SI value to the model output's unit (e.g. kg/m³ → kg/kg)."""

    output: str
    tag: str
    unit: EngineeringUnit
    model_factor: float = 1.0

    def to_model(self, tag_value: float) -> float:
        return self.unit.to_si(tag_value) * self.model_factor


@dataclass(frozen=True)
class ManipulatedBinding:
    """A model input written to a commanded tag; ``measured_tag`` reads the value actually applied."""

    input: str
    tag: str
    unit: EngineeringUnit
    measured_tag: str | None = None

    def to_tag(self, model_value: float) -> float:
        return self.unit.from_si(model_value)

    def to_model(self, tag_value: float) -> float:
        return self.unit.to_si(tag_value)


@dataclass(frozen=True)
class PublishedOutput:
    """A model output published as ``estimated_<name>`` in ``unit`` (UNECE code) on the OPC UA server."""

    output: str
    name: str
    unit_code: str
    from_si: Callable[[float], float]
    description: str
    eu_range: tuple[float, float] | None = None
    """(low, high) in ``unit_code`` where a display range is meaningful (published as EURange); None if not."""


@dataclass(frozen=True)
class TargetSpec:
    """The writable quality target: node ``target_<name>``, engineering unit, accepted range, default."""

    name: str
    output: str
    unit: EngineeringUnit
    low: float
    high: float
    default: float


@dataclass(frozen=True)
class ControlPlan:
    """Everything one unit's control loop runs. Periods and durations in seconds of (plant) time."""

    model: CompiledModel
    make_estimator: Callable[..., ExtendedKalmanFilter]
    """``make_estimator(parameters=None)``: a fresh EKF whose model parameters are the declaration's values with
    ``parameters`` (the deployed parameter set's values, model units) over them."""
    nmpc: NonlinearMpc | SurrogateFallbackNmpc
    supervisor_config: SupervisorConfig
    measurements: tuple[MeasurementBinding, ...]
    manipulated: tuple[ManipulatedBinding, ...]
    initial_estimate: Callable[[Mapping[str, float]], tuple[dict[str, float], dict[str, float]]]
    """``measured model outputs (SI) → (x0, std0)`` at StartBatch."""
    estimated_parameters: tuple[str, ...]
    target: TargetSpec
    published: tuple[PublishedOutput, ...]
    strategy: str
    estimator_period_s: float
    controller_period_s: float
    batch_duration_s: float
    solve_deadline_s: float
    time_scale: float
    initial_mode: str
    online_parameters: tuple[OnlineParameter, ...] = ()
    """The estimator's online parameters with their bounds (:mod:`controllers.online_parameters`)."""
    online_halfwidth_limit: float = DEFAULT_HALFWIDTH_LIMIT
    """The NMPC uses an online value while 1.96 σ / |value| is at most this, else the deployed value."""
    forecast_outputs: tuple[str, ...] = ()
    """Names of ``published`` quantities a what-if forecast predicts (the unit's quality outputs)."""
    forecast_band: BandCalibration = BandCalibration()
    """How a forecast's band is calibrated from past batches (``forecast_band_scale`` / ``forecast_band_batches``)."""
