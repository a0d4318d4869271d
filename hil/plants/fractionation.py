"""The chromatography skid's fractionation: the collection valve run by the PLC from two cut setpoints, and the pool.

A skid's PLC (or its method software) opens the outlet's collection valve between two cut points of the run that
the twin — or an operator — writes as setpoints: ``cut_start_time`` and ``cut_stop_time`` (s of run time, the
``run_time`` the skid publishes: seconds since the current run's load started). The valve is open while
``cut_start_time <= run_time < cut_stop_time``; one pool per run: once it has closed after collecting it stays
closed until the next run starts (a start or stop written later moves nothing already collected), and while it is
open a new start does not close it (the pool in progress keeps its start; only the stop moves). Setpoints of
``0, 0`` (the PLC's power-up values) arm nothing. A setpoint written in the past acts at once: a late start opens
the valve at the next PLC step, a late stop closes it — the skid never waits for a time that has gone.

The pool integrates what leaves the column while the valve is open: ``n_i += c_i Q dt`` per component (mol), the
outlet concentration ``c_i`` (mol/m3) at the end of each PLC step times the step's mean flow ``Q`` (m3/s) and length
``dt`` (s) (rectangle rule; the step is the PLC's, 1 s on the bench against a peak a few minutes wide).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

CUT_START = "cut_start_time"
CUT_STOP = "cut_stop_time"
RUN_TIME = "run_time"
VALVE = "collection_valve_open"
COMMANDS = (CUT_START, CUT_STOP)
"""The commanded tags of the fractionation (s of run time)."""
MEASUREMENTS = (RUN_TIME, VALVE)
"""The measured tags: run time (s) and the valve's position (1 open, 0 closed)."""


@dataclass
class FractionCollector:
    """One skid's collection valve and pool (module docstring). ``amounts_mol``: the pool by component (mol);
    ``opened_s``/``closed_s``: the run times (s) the valve opened and closed in this run (None: not yet)."""

    amounts_mol: dict[str, float] = field(default_factory=dict)
    open: bool = False
    opened_s: float | None = None
    closed_s: float | None = None

    def new_run(self) -> None:
        """A new run starts: an empty pool, the valve closed and ready for one more pool."""
        self.amounts_mol, self.open, self.opened_s, self.closed_s = {}, False, None, None

    def update(self, run_time_s: float, commands: Mapping[str, float]) -> bool:
        """The valve's position at ``run_time_s`` (s) under the cut setpoints in ``commands`` (s of run time)."""
        start, stop = float(commands.get(CUT_START, 0.0)), float(commands.get(CUT_STOP, 0.0))
        if not (math.isfinite(start) and math.isfinite(stop)):
            return self.open
        if self.open:
            if run_time_s >= stop:
                self.open, self.closed_s = False, run_time_s
        elif self.closed_s is None and start <= run_time_s < stop:
            self.open, self.opened_s = True, run_time_s
        return self.open

    def collect(self, outlet_mol_per_m3: Mapping[str, float], flow_m3_per_s: float, dt_s: float) -> None:
        """Add one PLC step's outlet to the pool while the valve is open (concentrations mol/m3, flow m3/s, s)."""
        if not self.open or dt_s <= 0.0:
            return
        for name, c in outlet_mol_per_m3.items():
            self.amounts_mol[name] = self.amounts_mol.get(name, 0.0) + max(float(c), 0.0) * flow_m3_per_s * dt_s

    def purity(self, target: str, impurities: tuple[str, ...]) -> float:
        """Pool purity of ``target`` against ``impurities`` (fraction; 0 for an empty pool)."""
        product = self.amounts_mol.get(target, 0.0)
        total = product + sum(self.amounts_mol.get(c, 0.0) for c in impurities)
        return product / total if total > 0.0 else 0.0
