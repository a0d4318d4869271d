"""controllers: NMPC, PID fallback and supervisory logic. Controllers return setpoint commands; they never
write to a PLC."""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "ControlMode": "controllers.commands",
    "ControlPlan": "controllers.control_plan",
    "CrystallizationObjective": "controllers.crystallization.objective",
    "Discretization": "controllers.nmpc",
    "EconomicTerm": "controllers.nmpc",
    "Fallback": "controllers.supervisor",
    "Hessian": "controllers.nmpc_solvers",
    "HorizonMode": "controllers.nmpc",
    "ManipulatedBinding": "controllers.control_plan",
    "ManipulatedInput": "controllers.nmpc",
    "MeasurementBinding": "controllers.control_plan",
    "NmpcConfig": "controllers.nmpc",
    "NmpcConfigError": "controllers.nmpc",
    "NmpcResult": "controllers.nmpc",
    "NonlinearMpc": "controllers.nmpc",
    "OutputConstraint": "controllers.nmpc",
    "OutputTracking": "controllers.nmpc",
    "PidConfigError": "controllers.pid",
    "PidController": "controllers.pid",
    "PidTuning": "controllers.pid",
    "PredictedTrajectory": "controllers.nmpc",
    "PublishedOutput": "controllers.control_plan",
    "RecipeProfile": "controllers.supervisor",
    "SetpointCommand": "controllers.commands",
    "SetpointLimits": "controllers.supervisor",
    "Supervisor": "controllers.supervisor",
    "SupervisorConfig": "controllers.supervisor",
    "SupervisorError": "controllers.supervisor",
    "SolverMethod": "controllers.nmpc_solvers",
    "SolverOptions": "controllers.nmpc_solvers",
    "SupervisorEvent": "controllers.supervisor",
    "TargetSpec": "controllers.control_plan",
    "TerminalTarget": "controllers.nmpc",
    "UnknownControlKindError": "controllers.plan_registry",
    "control_plan_for_kind": "controllers.plan_registry",
    "controlled_kinds": "controllers.plan_registry",
    "crystallizer_nmpc_config": "controllers.crystallization.objective",
    "linear_cooling_recipe": "controllers.crystallization.objective",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
