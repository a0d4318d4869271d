"""Known-truth history for the fit tests: stepped HIL batches of a crystallizer whose true kinetics differ from the
twin's model by known amounts, recorded into a real historian store (SQLite or InfluxDB) as the twin keeps it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from hil.scenario import Scenario, load_scenario
from linetwin_cli.bench_history import record_stepped_batches
from tests.conftest import REPO_ROOT
from twin_server.historian.records import HistoryBackend

PILOT = REPO_ROOT / "examples" / "pilot_line.toml"
GROWTH_FACTOR = 1.2
NUCLEATION_FACTOR = 1.2
SOLUBILITY_OFFSET = 0.001          # kg/kg
ANALYSER_DELAY_S = 30.0
FIRST_START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
BATCH_S = 3600.0
"""Each recorded batch's plant seconds: the first hour of the shipped 2 h scenario (every parameter identifiable,
the true values inside the intervals, at half the sensitivity integration of a 2 h batch)."""
ESTIMATED = ("growth_rate_constant", "secondary_nucleation_rate_constant", "solubility_coefficient_0")
DELAY_ARGS = [a for tag in ("solute_concentration", "chord_count_rate", "mean_chord_length")
              for a in ("--delay", f"{tag}={ANALYSER_DELAY_S:g}")]


def mismatched_scenario(resolution: str = "moments") -> Scenario:
    """The pilot line's crystallizer under linear cooling for :data:`BATCH_S`, the plant's kinetics off by the
    factors above, its analysers ``ANALYSER_DELAY_S`` late."""
    scenario = load_scenario(REPO_ROOT / "examples" / "scenarios" / "mismatch_plus20_mpc.toml")
    plant = {**scenario.plant, "plant_resolution": resolution, "growth_rate_factor": GROWTH_FACTOR,
             "nucleation_rate_factor": NUCLEATION_FACTOR, "solubility_offset_kg_per_kg": SOLUBILITY_OFFSET,
             "measurement_delay_s": ANALYSER_DELAY_S}
    return dataclasses.replace(scenario, strategy="linear_cooling", plant=plant, batch_duration_s=BATCH_S)


def true_values(nominal: dict[str, float]) -> dict[str, float]:
    """The plant's true values of :data:`ESTIMATED` from the twin's nominal ones."""
    return {"growth_rate_constant": nominal["growth_rate_constant"] * GROWTH_FACTOR,
            "secondary_nucleation_rate_constant": nominal["secondary_nucleation_rate_constant"] * NUCLEATION_FACTOR,
            "solubility_coefficient_0": nominal["solubility_coefficient_0"] + SOLUBILITY_OFFSET}


def record(backend: HistoryBackend, seeds: tuple[int, ...] = (1, 2)) -> list[str]:
    """Record one batch per seed into ``backend`` (keys of the pilot line); the batch ids."""
    return [bid for bid, _ in record_stepped_batches(mismatched_scenario(), backend, "pilot_line", FIRST_START,
                                                     seeds)]


def influx_config(tmp: Path, url: str, database: str) -> Path:
    """The pilot line with its history in InfluxDB 1.x at ``url``."""
    text = PILOT.read_text(encoding="utf-8")
    path = tmp / "pilot_line_influx.toml"
    path.write_text(text + f'\n[historian]\nbackend = "influxdb"\nurl = "{url}"\ndatabase = "{database}"\n',
                    encoding="utf-8")
    return path
