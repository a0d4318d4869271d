"""Jacketed stirred mixing/feed tank: the plant behind the ``mixing_tank`` virtual PLC.

Model (SI inside; temperatures in kelvin inside, °C at the tag map), one well-mixed liquid phase:

* Mass (volume) balance, constant density, gravity-drained outlet valve (Torricelli's law,
  F_out = Cv·sqrt(h); Bird, Stewart & Lightfoot, *Transport Phenomena*, 2nd ed., Wiley 2002, §7.6;
  Seborg, Edgar, Mellichamp & Doyle, *Process Dynamics and Control*, 4th ed., Wiley 2016, §2.4.5)::

      A dh/dt = F_in − Cv·sqrt(h)

* Solute balance (Seborg et al. 2016, §2.4.6)::

      d(V c)/dt = F_in c_feed − F_out c      ⇔   V dc/dt = F_in (c_feed − c)

* Energy balance with jacket heat transfer and agitator power dissipated as heat (Seborg et al. 2016,
  §2.4.4)::

      ρ cp V dT/dt = ρ cp F_in (T_feed − T) + U A_j (T_jacket − T) + P_agitator

* Jacket temperature follows its setpoint as a first-order lag (a temperature control unit holding the
  jacket supply; default time constant 60 s)::

      τ_j dT_jacket/dt = T_jacket,sp − T_jacket

* Agitator shaft power from the power-number correlation P = Np ρ N³ D⁵ with Np ≈ 5 for a six-blade
  Rushton turbine in the fully turbulent regime (Re = ρ N D²/μ > ~10⁴), Paul, Atiemo-Obeng & Kresta,
  *Handbook of Industrial Mixing*, Wiley 2004, ch. 6 (power curves). With the defaults (D = 0.35 m,
  water) Re ≈ 3·10⁵ at 150 rpm, so the constant-Np regime holds for every speed the tag map allows.

Simplifications, stated: the jacket area and the agitator power do not depend on the level; when the
tank is nearly empty the concentration and energy balances use a small minimum mixing volume so that
they stay finite (the level itself is exact down to zero). Integration: fixed-step RK4 in substeps of
at most 0.5 s (the fastest mode, a nearly empty tank at full feed, has a time constant of ~4 s), stable
for plant steps of 1 s and beyond.

The parameter names are those of ``[units.<unit>.model]`` in the line configuration.
Later the physics will come from ``process_models``; this class only holds state, noise and tag names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hil.plants.integration import rk4
from hil.plants.parameters import check_ranges

KIND = "mixing_tank"
_KELVIN = 273.15
_SECONDS_PER_HOUR = 3600.0
_MAX_SUBSTEP_S = 0.5


@dataclass(frozen=True, slots=True)
class MixingTankParameters:
    """True parameters of the simulated tank (units in the names)."""

    tank_cross_section_m2: float = 1.0
    outlet_valve_coefficient_m2_5_per_s: float = 0.0008
    overall_heat_transfer_coefficient_w_per_m2_k: float = 450.0
    jacket_area_m2: float = 4.0
    feed_concentration_kg_per_m3: float = 120.0
    feed_temperature_c: float = 20.0
    impeller_diameter_m: float = 0.35
    power_number: float = 5.0  # Rushton turbine, turbulent (Paul et al. 2004, ch. 6)
    liquid_density_kg_per_m3: float = 1000.0  # water
    liquid_heat_capacity_j_per_kg_k: float = 4180.0  # water at 20–40 °C
    jacket_time_constant_s: float = 60.0
    minimum_mixing_volume_m3: float = 0.01
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

    def __post_init__(self) -> None:
        check_ranges(
            KIND,
            self,
            positive=(
                "tank_cross_section_m2", "impeller_diameter_m", "power_number", "liquid_density_kg_per_m3",
                "liquid_heat_capacity_j_per_kg_k", "jacket_time_constant_s", "minimum_mixing_volume_m3",
            ),
            non_negative=(
                "outlet_valve_coefficient_m2_5_per_s", "overall_heat_transfer_coefficient_w_per_m2_k",
                "jacket_area_m2", "feed_concentration_kg_per_m3", "initial_level_m",
                "initial_concentration_kg_per_m3", "initial_agitator_speed_rpm",
            ),
        )


class MixingTank:
    """Jacketed stirred tank with Torricelli drain; see the module docstring for the equations."""

    kind = KIND
    measured_names = (
        "level", "temperature", "concentration", "jacket_temperature", "outlet_flow", "agitator_power",
    )
    commanded_names = ("inlet_flow_setpoint", "jacket_temperature_setpoint", "agitator_speed_setpoint")

    def __init__(self, parameters: MixingTankParameters | None = None, seed: int | None = None) -> None:
        self.parameters = parameters if parameters is not None else MixingTankParameters()
        p = self.parameters
        self._rng = np.random.default_rng(seed)
        # state: level m, concentration kg/m3, temperature K, jacket temperature K,
        # cumulative solute fed kg, cumulative solute drained kg
        self._state = [
            p.initial_level_m,
            p.initial_concentration_kg_per_m3,
            p.initial_temperature_c + _KELVIN,
            p.initial_jacket_temperature_c + _KELVIN,
            0.0,
            0.0,
        ]
        self._commands = self.initial_commands()
        self._time_s = 0.0

    # ------------------------------------------------------------------ Plant protocol
    def initial_commands(self) -> dict[str, float]:
        """Inlet flow that holds the initial level (m³/h), jacket setpoint = initial jacket temperature (°C),
        initial agitator speed (rpm)."""
        p = self.parameters
        return {
            "inlet_flow_setpoint": p.outlet_valve_coefficient_m2_5_per_s * math.sqrt(p.initial_level_m)
            * _SECONDS_PER_HOUR,
            "jacket_temperature_setpoint": p.initial_jacket_temperature_c,
            "agitator_speed_setpoint": p.initial_agitator_speed_rpm,
        }

    def step(self, dt_s: float, commands: Mapping[str, float]) -> None:
        """Advance by ``dt_s`` seconds holding ``commands`` (engineering units of the tag map).

        Missing commands keep their last value; a non-finite command is ignored (last value kept);
        a negative flow or speed is saturated at zero, as a pump or drive would.
        """
        for name, value in commands.items():
            if name not in self._commands:
                raise KeyError(f"plant '{KIND}': unknown command '{name}'; commands: {', '.join(self.commanded_names)}")
            if math.isfinite(value):
                self._commands[name] = float(value)
        self._state = rk4(self._rhs, self._state, dt_s, _MAX_SUBSTEP_S)
        self._state[0] = max(self._state[0], 0.0)
        self._time_s += dt_s

    def measurements(self) -> dict[str, float]:
        """Measured values in tag-map units (m, °C, kg/m³, °C, m³/h, kW) with Gaussian sensor noise."""
        p = self.parameters
        level, conc, temp_k, jacket_k = self._state[:4]
        noise = self._rng.normal
        return {
            "level": level + noise(0.0, p.level_noise_std_m),
            "temperature": temp_k - _KELVIN + noise(0.0, p.temperature_noise_std_c),
            "concentration": conc + noise(0.0, p.concentration_noise_std_kg_per_m3),
            "jacket_temperature": jacket_k - _KELVIN + noise(0.0, p.jacket_temperature_noise_std_c),
            "outlet_flow": self._outlet_flow_m3_per_s(level) * _SECONDS_PER_HOUR
            + noise(0.0, p.outlet_flow_noise_std_m3_per_h),
            "agitator_power": self._agitator_power_w() / 1000.0 + noise(0.0, p.agitator_power_noise_std_kw),
        }

    # ------------------------------------------------------------------ true state (tests, benches)
    @property
    def time_s(self) -> float:
        """Plant time since construction, s."""
        return self._time_s

    @property
    def level_m(self) -> float:
        return self._state[0]

    @property
    def concentration_kg_per_m3(self) -> float:
        return self._state[1]

    @property
    def temperature_c(self) -> float:
        return self._state[2] - _KELVIN

    @property
    def jacket_temperature_c(self) -> float:
        return self._state[3] - _KELVIN

    @property
    def solute_mass_kg(self) -> float:
        """Solute held in the tank, kg (V·c)."""
        return self.parameters.tank_cross_section_m2 * self._state[0] * self._state[1]

    @property
    def solute_fed_kg(self) -> float:
        """Solute brought in by the feed since construction, kg (∫ F_in c_feed dt)."""
        return self._state[4]

    @property
    def solute_drained_kg(self) -> float:
        """Solute carried out by the outlet since construction, kg (∫ F_out c dt)."""
        return self._state[5]

    # ------------------------------------------------------------------ model
    def _outlet_flow_m3_per_s(self, level_m: float) -> float:
        return self.parameters.outlet_valve_coefficient_m2_5_per_s * math.sqrt(max(level_m, 0.0))

    def _agitator_power_w(self) -> float:
        p = self.parameters
        speed_rps = max(self._commands["agitator_speed_setpoint"], 0.0) / 60.0
        return p.power_number * p.liquid_density_kg_per_m3 * speed_rps**3 * p.impeller_diameter_m**5

    def _rhs(self, x: Sequence[float]) -> list[float]:
        p = self.parameters
        level, conc, temp_k, jacket_k = x[0], x[1], x[2], x[3]
        inlet = max(self._commands["inlet_flow_setpoint"], 0.0) / _SECONDS_PER_HOUR
        jacket_setpoint_k = self._commands["jacket_temperature_setpoint"] + _KELVIN
        outlet = self._outlet_flow_m3_per_s(level)
        volume = max(p.tank_cross_section_m2 * level, p.minimum_mixing_volume_m3)
        rho_cp = p.liquid_density_kg_per_m3 * p.liquid_heat_capacity_j_per_kg_k
        heat_w = (
            rho_cp * inlet * (p.feed_temperature_c + _KELVIN - temp_k)
            + p.overall_heat_transfer_coefficient_w_per_m2_k * p.jacket_area_m2 * (jacket_k - temp_k)
            + self._agitator_power_w()
        )
        return [
            (inlet - outlet) / p.tank_cross_section_m2,
            inlet * (p.feed_concentration_kg_per_m3 - conc) / volume,
            heat_w / (rho_cp * volume),
            (jacket_setpoint_k - jacket_k) / p.jacket_time_constant_s,
            inlet * p.feed_concentration_kg_per_m3,
            outlet * conc,
        ]
