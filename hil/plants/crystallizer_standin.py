"""STAND-IN cooling crystallizer for the HIL bench (simple, plausible dynamics, not the physics model).

The real population-balance crystallizer model is written in ``process_models``; until it is wired in,
this stand-in gives the virtual PLC signals with the right names, units and qualitative behaviour:

* jacket temperature: first-order lag toward its setpoint (thermostat), τ_j = 30 s;
* slurry temperature: lumped heat balance ρ cp V dT/dt = UA (T_jacket − T) (heat of crystallization and
  agitator heat neglected);
* solubility: exponential in temperature, c*(T) = c*_ref · exp(k (T − T_ref)) (van 't Hoff-type form,
  e.g. Mullin, *Crystallization*, 4th ed., Butterworth-Heinemann 2001, §3.6);
* nucleation only beyond a metastable zone width Δc_mz: B = k_b · max(c − c* − Δc_mz, 0)² (power law,
  Mullin 2001, §5.3), counted as a particle number density n (1/m³);
* desupersaturation (growth) first order in c − c*, only once crystals exist (weighted n/(n + n_ref));
  dissolution below saturation while crystal mass remains; solute + crystal mass is conserved;
* FBRM stand-ins: chord count rate ∝ n · (N/300 rpm)^0.5, mean chord length = (m_crystal/(ρ_c k_v n))^(1/3).

State clearly: none of these numbers is fitted to a real system.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hil.plants.integration import rk4
from hil.plants.parameters import check_ranges, hold_commands

KIND = "crystallizer"
_MAX_SUBSTEP_S = 0.5
_MICROMETRE_PER_M = 1.0e6


@dataclass(frozen=True, slots=True)
class CrystallizerStandInParameters:
    """Stand-in parameters (units in the names)."""

    volume_m3: float = 0.02
    heat_transfer_ua_w_per_k: float = 100.0
    slurry_density_kg_per_m3: float = 1000.0
    slurry_heat_capacity_j_per_kg_k: float = 3800.0
    jacket_time_constant_s: float = 30.0
    solubility_at_reference_kg_per_m3: float = 200.0
    solubility_reference_temperature_c: float = 40.0
    solubility_temperature_coefficient_per_k: float = 0.03
    metastable_zone_width_kg_per_m3: float = 10.0
    nucleation_rate_constant: float = 4.0e4  # 1/(m³ s) per (kg/m³)²
    growth_rate_constant_per_s: float = 5.0e-3
    reference_number_density_per_m3: float = 1.0e9
    crystal_density_kg_per_m3: float = 1300.0
    volume_shape_factor: float = 0.5
    counts_per_number_density_m3_per_s: float = 5.0e-7
    initial_temperature_c: float = 50.0
    initial_concentration_kg_per_m3: float = 220.0
    initial_agitator_speed_rpm: float = 300.0
    temperature_noise_std_c: float = 0.02
    jacket_temperature_noise_std_c: float = 0.02
    solute_concentration_noise_std_kg_per_m3: float = 0.5
    chord_count_rate_noise_std: float = 20.0
    mean_chord_length_noise_std_um: float = 1.0

    def __post_init__(self) -> None:
        check_ranges(
            KIND,
            self,
            positive=(
                "volume_m3", "heat_transfer_ua_w_per_k", "slurry_density_kg_per_m3", "slurry_heat_capacity_j_per_kg_k",
                "jacket_time_constant_s", "solubility_at_reference_kg_per_m3", "reference_number_density_per_m3",
                "crystal_density_kg_per_m3", "volume_shape_factor",
            ),
            non_negative=(
                "metastable_zone_width_kg_per_m3", "nucleation_rate_constant", "growth_rate_constant_per_s",
                "counts_per_number_density_m3_per_s", "initial_concentration_kg_per_m3", "initial_agitator_speed_rpm",
            ),
        )


class CrystallizerStandIn:
    """Stand-in batch cooling crystallizer (see module docstring: NOT the physics model)."""

    kind = KIND
    measured_names = (
        "temperature", "jacket_temperature", "solute_concentration", "chord_count_rate", "mean_chord_length",
    )
    commanded_names = ("jacket_temperature_setpoint", "agitator_speed_setpoint")

    def __init__(self, parameters: CrystallizerStandInParameters | None = None, seed: int | None = None) -> None:
        self.parameters = parameters if parameters is not None else CrystallizerStandInParameters()
        p = self.parameters
        self._rng = np.random.default_rng(seed)
        self._total_solute_kg_per_m3 = p.initial_concentration_kg_per_m3  # dissolved + crystal, conserved
        # state: slurry temperature °C, jacket temperature °C, dissolved solute kg/m³, number density 1/m³
        self._state = [p.initial_temperature_c, p.initial_temperature_c, p.initial_concentration_kg_per_m3, 0.0]
        self._commands = self.initial_commands()

    def initial_commands(self) -> dict[str, float]:
        """Jacket setpoint = initial slurry temperature (°C), initial agitator speed (rpm)."""
        p = self.parameters
        return {
            "jacket_temperature_setpoint": p.initial_temperature_c,
            "agitator_speed_setpoint": p.initial_agitator_speed_rpm,
        }

    def step(self, dt_s: float, commands: Mapping[str, float]) -> None:
        """Advance by ``dt_s`` s holding ``commands`` (°C, rpm); non-finite commands are ignored."""
        hold_commands(KIND, self._commands, commands)
        x = rk4(self._rhs, self._state, dt_s, _MAX_SUBSTEP_S)
        x[2] = min(max(x[2], 0.0), self._total_solute_kg_per_m3)
        x[3] = max(x[3], 0.0)
        self._state = x

    def measurements(self) -> dict[str, float]:
        """Temperatures °C, solute kg/m³, chord counts 1/s, mean chord length µm, with Gaussian noise."""
        p = self.parameters
        temp, jacket, conc, number = self._state
        noise = self._rng.normal
        speed_factor = math.sqrt(max(self._commands["agitator_speed_setpoint"], 0.0) / 300.0)
        counts = p.counts_per_number_density_m3_per_s * number * speed_factor
        return {
            "temperature": temp + noise(0.0, p.temperature_noise_std_c),
            "jacket_temperature": jacket + noise(0.0, p.jacket_temperature_noise_std_c),
            "solute_concentration": conc + noise(0.0, p.solute_concentration_noise_std_kg_per_m3),
            "chord_count_rate": max(counts + noise(0.0, p.chord_count_rate_noise_std), 0.0),
            "mean_chord_length": max(
                self.mean_size_m * _MICROMETRE_PER_M + noise(0.0, p.mean_chord_length_noise_std_um), 0.0
            ),
        }

    @property
    def solubility_kg_per_m3(self) -> float:
        """Solubility at the current slurry temperature, kg/m³."""
        return self._solubility(self._state[0])

    @property
    def crystal_mass_kg_per_m3(self) -> float:
        """Crystal mass per slurry volume, kg/m³ (total solute minus dissolved)."""
        return self._total_solute_kg_per_m3 - self._state[2]

    @property
    def mean_size_m(self) -> float:
        """Mean crystal size from crystal mass and number density, m (0 before nucleation)."""
        p = self.parameters
        number = self._state[3]
        if number < 1.0:
            return 0.0
        crystal_volume_m3_per_m3 = max(self.crystal_mass_kg_per_m3, 0.0) / p.crystal_density_kg_per_m3
        return (crystal_volume_m3_per_m3 / (p.volume_shape_factor * number)) ** (1.0 / 3.0)

    def _solubility(self, temperature_c: float) -> float:
        p = self.parameters
        exponent = p.solubility_temperature_coefficient_per_k * (temperature_c - p.solubility_reference_temperature_c)
        return p.solubility_at_reference_kg_per_m3 * math.exp(exponent)

    def _rhs(self, x: Sequence[float]) -> list[float]:
        p = self.parameters
        temp, jacket, conc, number = x[0], x[1], x[2], max(x[3], 0.0)
        supersaturation = conc - self._solubility(temp)
        crystal = max(self._total_solute_kg_per_m3 - conc, 0.0)
        if supersaturation > 0.0:
            weight = number / (number + p.reference_number_density_per_m3)
        else:
            weight = crystal / (crystal + 1.0)
        deposition = p.growth_rate_constant_per_s * supersaturation * weight  # kg/(m³ s), < 0 dissolves
        nucleation = p.nucleation_rate_constant * max(supersaturation - p.metastable_zone_width_kg_per_m3, 0.0) ** 2
        vanishing = number * (weight * p.growth_rate_constant_per_s if supersaturation < 0.0 and crystal < 1.0 else 0.0)
        heat_capacity_j_per_k = p.slurry_density_kg_per_m3 * p.slurry_heat_capacity_j_per_kg_k * p.volume_m3
        return [
            p.heat_transfer_ua_w_per_k * (jacket - temp) / heat_capacity_j_per_k,
            (self._commands["jacket_temperature_setpoint"] - jacket) / p.jacket_time_constant_s,
            -deposition,
            nucleation - vanishing,
        ]
