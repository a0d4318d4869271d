"""Jacketed stirred mixing/feed tank: the plant behind the ``mixing_tank`` virtual PLC.

The plant is the twin's own declared model, :func:`process_models.mixing.mixing_tank.mixing_tank_model` (volume balance
with a Torricelli outlet valve, solute and energy balances, jacket lag, agitator power number; equations and
sources in that module), run by :class:`hil.plants.declared_plant.DeclaredPlant` with the plant's "true"
parameters, its initial state and sensor noise. It always carries the model's inventory totals (cumulative
liquid, solute and energy in/out) so that benches and tests can check the balances.

Tags (engineering units of the demo line's tag map) and the model quantities behind them:

=========================== =========== ===========================================================
tag                         unit        model quantity (SI)
=========================== =========== ===========================================================
level                       m           state ``level`` (m)
temperature                 °C          state ``temperature`` (K)
concentration               kg/m³       output ``outlet_concentration`` (kg/m³; the refractometer sits
                                        on the outlet, = the tank's concentration when well mixed)
jacket_temperature          °C          state ``jacket_temperature`` (K)
outlet_flow                 m³/h        output ``outlet_flow`` (m³/s)
agitator_power              kW          output ``agitator_power`` (W)
inlet_flow_setpoint         m³/h        input ``inlet_flow`` (m³/s), saturated at 0 (a pump)
jacket_temperature_setpoint °C          input ``jacket_temperature_setpoint`` (K)
agitator_speed_setpoint     rpm         input ``agitator_speed`` (1/s), saturated at 0 (a drive)
=========================== =========== ===========================================================

The feed (``feed_concentration``, ``feed_temperature``) is held at the configured values.

Parameter names: the unit's ``[model]`` table (the model's option keys, see
:func:`process_models.mixing.mixing_tank.option_keys`) merged with its ``[plant]`` table (initial state, sensor noise,
integration substep): the fields of :class:`MixingTankParameters`. Defaults of the model's parameters are the
declaration's own. ``outlet`` must be ``"valve"`` (the tag map commands no outlet pump); ``inventory_totals``
is accepted for the twin's sake and changes nothing here (the plant always integrates the totals).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hil.plants.declared_plant import (
    CUBIC_METRE_PER_HOUR,
    DEGREE_CELSIUS,
    KILOWATT,
    REVOLUTION_PER_MINUTE,
    SI,
    CommandedSignal,
    DeclaredPlant,
    MeasuredSignal,
)
from hil.plants.parameters import PlantParameterError, check_ranges
from process_models.declaration import CompiledModel, DeclarationError, compile_model
from process_models.mixing.mixing_tank import KELVIN_OFFSET, mixing_tank_model

KIND = "mixing_tank"
_SECONDS_PER_HOUR = 3600.0

# option key of [units.<unit>.model] -> the declared parameter it sets (same SI value)
_MODEL_PARAMETER_KEYS: dict[str, str] = {
    "tank_cross_section_m2": "tank_cross_section",
    "outlet_valve_coefficient_m2_5_per_s": "outlet_valve_coefficient",
    "overall_heat_transfer_coefficient_w_per_m2_k": "overall_heat_transfer_coefficient",
    "jacket_area_m2": "jacket_area",
    "impeller_diameter_m": "impeller_diameter",
    "power_number": "power_number",
    "liquid_density_kg_per_m3": "liquid_density",
    "liquid_heat_capacity_j_per_kg_k": "liquid_heat_capacity",
    "jacket_time_constant_s": "jacket_time_constant",
    "minimum_mixing_volume_m3": "minimum_mixing_volume",
}
_FEED_KEYS = ("feed_concentration_kg_per_m3", "feed_temperature_c")
_STRUCTURE_KEYS = ("outlet", "concentration_compartments", "inventory_totals")

_DECLARED = mixing_tank_model()
_DEFAULT = _DECLARED.parameter_values()
_NOMINAL = _DECLARED.nominal_inputs()


@dataclass(frozen=True, slots=True)
class MixingTankParameters:
    """True parameters of the simulated tank (units in the names). Model options default to the declared
    model's values (:mod:`process_models.mixing.mixing_tank`); the rest are plant-only."""

    # -- the model's options ([units.<unit>.model])
    tank_cross_section_m2: float = _DEFAULT["tank_cross_section"]
    outlet_valve_coefficient_m2_5_per_s: float = _DEFAULT["outlet_valve_coefficient"]
    overall_heat_transfer_coefficient_w_per_m2_k: float = _DEFAULT["overall_heat_transfer_coefficient"]
    jacket_area_m2: float = _DEFAULT["jacket_area"]
    feed_concentration_kg_per_m3: float = _NOMINAL["feed_concentration"]
    feed_temperature_c: float = _NOMINAL["feed_temperature"] - KELVIN_OFFSET
    impeller_diameter_m: float = _DEFAULT["impeller_diameter"]
    power_number: float = _DEFAULT["power_number"]
    liquid_density_kg_per_m3: float = _DEFAULT["liquid_density"]
    liquid_heat_capacity_j_per_kg_k: float = _DEFAULT["liquid_heat_capacity"]
    jacket_time_constant_s: float = _DEFAULT["jacket_time_constant"]
    minimum_mixing_volume_m3: float = _DEFAULT["minimum_mixing_volume"]
    outlet: str = "valve"
    concentration_compartments: int = 1
    inventory_totals: bool = False
    # -- plant only ([units.<unit>.plant])
    initial_level_m: float = 0.5
    initial_temperature_c: float = 20.0
    initial_concentration_kg_per_m3: float = 100.0
    initial_jacket_temperature_c: float = 20.0
    initial_agitator_speed_rpm: float = 150.0
    level_noise_std_m: float = 0.002
    temperature_noise_std_c: float = 0.05
    concentration_noise_std_kg_per_m3: float = 0.2
    jacket_temperature_noise_std_c: float = 0.05
    outlet_flow_noise_std_m3_per_h: float = 0.01
    agitator_power_noise_std_kw: float = 0.01
    integration_substep_s: float = 0.5  # RK4; the fastest mode (nearly empty tank, full feed) is ~4 s

    def __post_init__(self) -> None:
        check_ranges(
            KIND,
            self,
            positive=(
                "tank_cross_section_m2", "impeller_diameter_m", "power_number", "liquid_density_kg_per_m3",
                "liquid_heat_capacity_j_per_kg_k", "jacket_time_constant_s", "minimum_mixing_volume_m3",
                "integration_substep_s",
            ),
            non_negative=(
                "outlet_valve_coefficient_m2_5_per_s", "overall_heat_transfer_coefficient_w_per_m2_k",
                "jacket_area_m2", "feed_concentration_kg_per_m3", "initial_level_m",
                "initial_concentration_kg_per_m3", "initial_agitator_speed_rpm",
            ),
        )

    def model_options(self) -> dict[str, Any]:
        """The options of :func:`process_models.mixing.mixing_tank.mixing_tank_model` these parameters set (with the
        inventory totals the plant always carries)."""
        options: dict[str, Any] = {key: getattr(self, key) for key in (*_MODEL_PARAMETER_KEYS, *_FEED_KEYS)}
        options.update(outlet=self.outlet, concentration_compartments=self.concentration_compartments,
                       inventory_totals=True)
        return options


def mixing_tank_parameters(values: Mapping[str, Any]) -> MixingTankParameters:
    """Check a merged ``[model]`` + ``[plant]`` table and build the parameters.

    Raises:
        PlantParameterError: every problem found (unknown name with the allowed ones, a value of the wrong type),
            then the first value outside its physical range.
    """
    allowed = [f.name for f in dataclasses.fields(MixingTankParameters)]
    errors: list[str] = []
    unknown = sorted(name for name in values if name not in allowed)
    if unknown:
        errors.append(f"unknown parameter(s) {', '.join(repr(n) for n in unknown)}; allowed: {', '.join(allowed)}")
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name in unknown:
            continue
        if name == "outlet":
            if value != "valve":
                errors.append(f"parameter 'outlet' must be 'valve' (the tag map commands no outlet pump), "
                              f"got {value!r}")
        elif name == "concentration_compartments":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                errors.append(f"parameter 'concentration_compartments' must be an integer >= 1, got {value!r}")
        elif name == "inventory_totals":
            if not isinstance(value, bool):
                errors.append(f"parameter 'inventory_totals' must be true or false, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            errors.append(f"parameter '{name}' must be a finite number, got {value!r}")
            continue
        else:
            value = float(value)
        checked[name] = value
    if errors:
        raise PlantParameterError(f"plant '{KIND}': " + "; ".join(errors))
    return MixingTankParameters(**checked)


def make_mixing_tank(values: Mapping[str, Any], seed: int | None = None) -> MixingTank:
    """Build the tank plant from a merged ``[model]`` + ``[plant]`` table (``plant_model`` already removed)."""
    return MixingTank(mixing_tank_parameters(values), seed=seed)


_COMMANDED = (
    CommandedSignal("inlet_flow_setpoint", "inlet_flow", CUBIC_METRE_PER_HOUR, minimum=0.0),
    CommandedSignal("jacket_temperature_setpoint", "jacket_temperature_setpoint", DEGREE_CELSIUS),
    CommandedSignal("agitator_speed_setpoint", "agitator_speed", REVOLUTION_PER_MINUTE, minimum=0.0),
)


class MixingTank(DeclaredPlant):
    """Jacketed stirred tank on the declared ``mixing_tank`` model; see the module docstring."""

    kind = KIND

    def __init__(self, parameters: MixingTankParameters | None = None, seed: int | None = None) -> None:
        self.parameters = parameters if parameters is not None else MixingTankParameters()
        p = self.parameters
        try:
            model: CompiledModel = compile_model(mixing_tank_model(**p.model_options()))
        except DeclarationError as exc:
            raise PlantParameterError(f"plant '{KIND}': {exc}") from exc
        measured = (
            MeasuredSignal("level", "level", "state", SI, p.level_noise_std_m),
            MeasuredSignal("temperature", "temperature", "state", DEGREE_CELSIUS, p.temperature_noise_std_c),
            MeasuredSignal("concentration", "outlet_concentration", "output", SI, p.concentration_noise_std_kg_per_m3),
            MeasuredSignal("jacket_temperature", "jacket_temperature", "state", DEGREE_CELSIUS,
                           p.jacket_temperature_noise_std_c),
            MeasuredSignal("outlet_flow", "outlet_flow", "output", CUBIC_METRE_PER_HOUR,
                           p.outlet_flow_noise_std_m3_per_h),
            MeasuredSignal("agitator_power", "agitator_power", "output", KILOWATT, p.agitator_power_noise_std_kw),
        )
        initial_state = {
            "level": p.initial_level_m,
            "concentration": p.initial_concentration_kg_per_m3,
            "temperature": p.initial_temperature_c + KELVIN_OFFSET,
            "jacket_temperature": p.initial_jacket_temperature_c + KELVIN_OFFSET,
            "liquid_fed": 0.0, "liquid_drained": 0.0, "solute_fed": 0.0, "solute_drained": 0.0, "energy_added": 0.0,
        }
        initial_commands = {
            # the inlet flow that holds the initial level: F = Cv sqrt(h0)
            "inlet_flow_setpoint": p.outlet_valve_coefficient_m2_5_per_s * math.sqrt(p.initial_level_m)
            * _SECONDS_PER_HOUR,
            "jacket_temperature_setpoint": p.initial_jacket_temperature_c,
            "agitator_speed_setpoint": p.initial_agitator_speed_rpm,
        }
        super().__init__(model, initial_state, _COMMANDED, measured, initial_commands, p.integration_substep_s,
                         seed=seed)

    # ------------------------------------------------------------------ true state (tests, benches)
    @property
    def level_m(self) -> float:
        """True liquid level, m."""
        return float(self.state_value("level")[0])

    @property
    def concentration_kg_per_m3(self) -> float:
        """True solute concentration leaving the tank (= in the tank when well mixed), kg/m³."""
        return float(self.output_value("outlet_concentration")[0])

    @property
    def temperature_c(self) -> float:
        """True liquid temperature, °C."""
        return float(self.state_value("temperature")[0]) - KELVIN_OFFSET

    @property
    def jacket_temperature_c(self) -> float:
        """True jacket temperature, °C."""
        return float(self.state_value("jacket_temperature")[0]) - KELVIN_OFFSET

    @property
    def solute_mass_kg(self) -> float:
        """Solute held in the tank, kg (V·c)."""
        return float(self.output_value("solute_mass")[0])

    @property
    def solute_fed_kg(self) -> float:
        """Solute brought in by the feed since construction, kg (∫ F_in c_feed dt)."""
        return float(self.state_value("solute_fed")[0])

    @property
    def solute_drained_kg(self) -> float:
        """Solute carried out by the outlet since construction, kg (∫ F_out c dt)."""
        return float(self.state_value("solute_drained")[0])

    def truth(self) -> dict[str, float]:
        """The TRUE state and flows (no noise): the measured tags' quantities in tag units plus the inventory
        totals (m³, kg, J since construction)."""
        return {
            "time_s": self.time_s,
            "level_m": self.level_m,
            "temperature_c": self.temperature_c,
            "concentration_kg_per_m3": self.concentration_kg_per_m3,
            "jacket_temperature_c": self.jacket_temperature_c,
            "outlet_flow_m3_per_h": float(self.output_value("outlet_flow")[0]) * _SECONDS_PER_HOUR,
            "agitator_power_kw": float(self.output_value("agitator_power")[0]) / 1000.0,
            "liquid_volume_m3": float(self.output_value("liquid_volume")[0]),
            "solute_mass_kg": self.solute_mass_kg,
            "liquid_fed_m3": float(self.state_value("liquid_fed")[0]),
            "liquid_drained_m3": float(self.state_value("liquid_drained")[0]),
            "solute_fed_kg": self.solute_fed_kg,
            "solute_drained_kg": self.solute_drained_kg,
            "energy_added_j": float(self.state_value("energy_added")[0]),
        }
