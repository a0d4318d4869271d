"""controllers: NMPC, PID fallback and supervisory logic. Controllers return setpoint commands; they never
write to a PLC."""

from controllers.commands import ControlMode, SetpointCommand
from controllers.control_plan import ControlPlan, ManipulatedBinding, MeasurementBinding, PublishedOutput, TargetSpec
from controllers.crystallization.objective import (
    CrystallizationObjective,
    crystallizer_nmpc_config,
    linear_cooling_recipe,
)
from controllers.nmpc import (
    Discretization,
    EconomicTerm,
    HorizonMode,
    ManipulatedInput,
    NmpcConfig,
    NmpcConfigError,
    NmpcResult,
    NonlinearMpc,
    OutputConstraint,
    OutputTracking,
    PredictedTrajectory,
    TerminalTarget,
)
from controllers.nmpc_solvers import Hessian, SolverMethod, SolverOptions
from controllers.pid import PidConfigError, PidController, PidTuning
from controllers.plan_registry import (
    UnknownControlKindError,
    control_plan_for_kind,
    controlled_kinds,
    register_control_plan,
)
from controllers.supervisor import (
    Fallback,
    RecipeProfile,
    SetpointLimits,
    Supervisor,
    SupervisorConfig,
    SupervisorError,
    SupervisorEvent,
)

__all__ = [
    "Hessian",
    "SolverMethod",
    "SolverOptions",
    "ControlMode",
    "ControlPlan",
    "CrystallizationObjective",
    "Discretization",
    "EconomicTerm",
    "Fallback",
    "HorizonMode",
    "ManipulatedBinding",
    "ManipulatedInput",
    "MeasurementBinding",
    "NmpcConfig",
    "NmpcConfigError",
    "NmpcResult",
    "NonlinearMpc",
    "OutputConstraint",
    "OutputTracking",
    "PidConfigError",
    "PidController",
    "PidTuning",
    "PredictedTrajectory",
    "PublishedOutput",
    "RecipeProfile",
    "SetpointCommand",
    "SetpointLimits",
    "Supervisor",
    "SupervisorConfig",
    "SupervisorError",
    "SupervisorEvent",
    "TargetSpec",
    "TerminalTarget",
    "UnknownControlKindError",
    "control_plan_for_kind",
    "controlled_kinds",
    "crystallizer_nmpc_config",
    "linear_cooling_recipe",
    "register_control_plan",
]
