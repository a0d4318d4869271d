"""What every adapter shows of its core, written once: last samples, stats, unconfirmed writes, the reconciled hook.

An adapter class derives from :class:`AdapterCore` and sets ``_store`` (:class:`~plc_adapters.adapter_state.
SampleStore`), ``_counters`` (:class:`~plc_adapters.adapter_state.Counters` over its stats type) and ``_writes``
(:class:`~plc_adapters.guarded_write.GuardedWrites`) in its constructor; the rest of the
:class:`~plc_adapters.adapter.PlcAdapter` contract (start/stop, write, ``connected``, ``eu_mismatches``) is the
protocol's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic

from plc_adapters.adapter_state import Counters, SampleStore, StatsT
from plc_adapters.guarded_write import GuardedWrites, ReconciledCallback
from plc_adapters.sample import Sample


class AdapterCore(Generic[StatsT]):
    """The state views of one unit's adapter, over its sample store, counters and guarded writes."""

    _store: SampleStore
    _counters: Counters[StatsT]
    _writes: GuardedWrites[Any]

    @property
    def on_write_reconciled(self) -> ReconciledCallback | None:
        """Called when a read-back resolves a write of unknown outcome (e.g. to audit it)."""
        return self._writes.on_write_reconciled

    @on_write_reconciled.setter
    def on_write_reconciled(self, callback: ReconciledCallback | None) -> None:
        self._writes.on_write_reconciled = callback

    @property
    def last_samples(self) -> Mapping[str, Sample]:
        """Latest sample per tag name (a read-only view)."""
        return self._store.view

    @property
    def unconfirmed_writes(self) -> Mapping[str, float]:
        """Commanded tags whose last write has an unknown outcome (not yet read back): tag → the value the PLC would
        hold had it applied."""
        return self._writes.unconfirmed

    @property
    def stats(self) -> StatsT:
        """Counters since start (a snapshot)."""
        return self._counters.snapshot()
