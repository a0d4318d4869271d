"""Hardware-in-the-loop bench: virtual PLCs (Modbus TCP or OPC UA servers) driven by plant simulations, fault injection,
scenario files and KPI reports."""

from hil.bench import HilBench
from hil.faults import Fault, FaultEvent, FaultInjector, FaultKind
from hil.plant import PLANT_KINDS, Plant, make_plant, plant_models
from hil.plants.parameters import PlantParameterError
from hil.scenario import STRATEGIES, Recipe, Scenario, ScenarioError, load_scenario
from hil.scenario_kpis import TimelineSample, compute_kpis
from hil.scenario_report import ScenarioReport, plot_report, write_report
from hil.scenario_runner import ScenarioRunError, run_scenario
from hil.virtual_opcua_plc import VirtualOpcUaPlc
from hil.virtual_plc import VirtualPlc, VirtualPlcConfigError, validate_tags

__all__ = [
    "PLANT_KINDS",
    "STRATEGIES",
    "Fault",
    "FaultEvent",
    "FaultInjector",
    "FaultKind",
    "HilBench",
    "Plant",
    "PlantParameterError",
    "Recipe",
    "Scenario",
    "ScenarioError",
    "ScenarioReport",
    "ScenarioRunError",
    "TimelineSample",
    "VirtualOpcUaPlc",
    "VirtualPlc",
    "VirtualPlcConfigError",
    "compute_kpis",
    "load_scenario",
    "make_plant",
    "plant_models",
    "plot_report",
    "run_scenario",
    "validate_tags",
    "write_report",
]
