"""Hardware-in-the-loop bench: virtual PLCs (Modbus TCP or OPC UA servers) driven by plant simulations, fault injection,
scenario files and KPI reports."""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "Fault": "hil.faults",
    "FaultEvent": "hil.faults",
    "FaultInjector": "hil.faults",
    "FaultKind": "hil.faults",
    "FaultProxy": "hil.fault_proxy",
    "HilBench": "hil.bench",
    "PLANT_KINDS": "hil.plant",
    "Plant": "hil.plant",
    "PlantParameterError": "hil.plants.parameters",
    "Recipe": "hil.scenario",
    "STRATEGIES": "hil.scenario",
    "Scenario": "hil.scenario",
    "ScenarioError": "hil.scenario",
    "ScenarioReport": "hil.scenario_report",
    "ScenarioRunError": "hil.scenario_runner",
    "TimelineSample": "hil.scenario_kpis",
    "VirtualOpcUaPlc": "hil.virtual_opcua_plc",
    "VirtualPlc": "hil.virtual_plc",
    "VirtualPlcBase": "hil.virtual_plc_base",
    "VirtualPlcConfigError": "hil.virtual_plc_base",
    "compute_kpis": "hil.scenario_kpis",
    "load_scenario": "hil.scenario",
    "make_plant": "hil.plant",
    "plant_models": "hil.plant",
    "plot_report": "hil.scenario_report",
    "run_scenario": "hil.scenario_runner",
    "validate_tags": "hil.virtual_plc",
    "virtual_plc_class": "hil.virtual_plc_base",
    "write_report": "hil.scenario_report",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
