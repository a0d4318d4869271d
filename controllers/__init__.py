"""controllers: NMPC, PID fallback and supervisory logic. Controllers return setpoint commands; they never
write to a PLC."""

from controllers.commands import ControlMode, SetpointCommand
from controllers.crystallization import CrystallizationObjective, crystallizer_nmpc_config, linear_cooling_recipe
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
from controllers.pid import PidConfigError, PidController, PidTuning
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
    "ControlMode",
    "CrystallizationObjective",
    "Discretization",
    "EconomicTerm",
    "Fallback",
    "HorizonMode",
    "ManipulatedInput",
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
    "RecipeProfile",
    "SetpointCommand",
    "SetpointLimits",
    "Supervisor",
    "SupervisorConfig",
    "SupervisorError",
    "SupervisorEvent",
    "TerminalTarget",
    "crystallizer_nmpc_config",
    "linear_cooling_recipe",
]
