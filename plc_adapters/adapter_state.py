"""What every adapter keeps between scans, kept once: counters and the last sample of each tag."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from plc_adapters.quality import Quality
from plc_adapters.sample import Sample


@dataclass(frozen=True, slots=True)
class WriteStats:
    """Write counters every adapter keeps (its stats type adds the protocol's acquisition counters).

    Attributes:
        writes: writes the PLC accepted.
        refused_writes: writes refused (by the checks, the link or the PLC).
        unknown_outcome_writes: writes sent whose answer never came (timeout, link lost mid-request); each is
            reconciled by reading the tag back.
    """

    writes: int = 0
    refused_writes: int = 0
    unknown_outcome_writes: int = 0


StatsT = TypeVar("StatsT", bound=WriteStats)


class Counters(Generic[StatsT]):
    """Mutable counters named by the fields of a frozen stats dataclass; :meth:`snapshot` gives one."""

    def __init__(self, stats_type: type[StatsT], **initial: Any) -> None:
        self._stats_type = stats_type
        self._initial = initial
        self._values: dict[str, Any] = {}
        self.reset()

    def reset(self, **initial: Any) -> None:
        """All counters back to their defaults (and ``initial``, remembered for later resets)."""
        self._initial = {**self._initial, **initial}
        defaults = self._stats_type()
        self._values = {f.name: getattr(defaults, f.name) for f in fields(self._stats_type)}  # type: ignore[arg-type]
        self._values.update(self._initial)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in self._values:
            raise KeyError(f"no counter '{name}' in {self._stats_type.__name__}")
        self._values[name] = value

    def snapshot(self) -> StatsT:
        return self._stats_type(**self._values)


class SampleStore:
    """The last sample of each tag and its last usable value (what a Bad sample carries on)."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = tuple(names)
        self.last_values: dict[str, float | None] = dict.fromkeys(self._names)
        """Tag → last usable (finite, not Bad) value, None before the first one."""
        now = datetime.now(UTC)
        self._samples: dict[str, Sample] = {
            name: Sample(name, None, Quality.BAD_WAITING_FOR_INITIAL_DATA, now) for name in self._names}

    @property
    def view(self) -> Mapping[str, Sample]:
        """Latest sample per tag (read-only)."""
        return MappingProxyType(self._samples)

    def replace_all(self, samples: Sequence[Sample]) -> None:
        """One scan of every tag: the view returned before keeps the previous scan (a snapshot)."""
        self._samples = {sample.tag: sample for sample in samples}

    def update(self, samples: Iterable[Sample]) -> None:
        """Some tags changed (a publish, a read-back): a new mapping, so earlier views stay snapshots."""
        self._samples = {**self._samples, **{sample.tag: sample for sample in samples}}

    def bad(self, quality: Quality) -> list[Sample]:
        """Every tag's sample of ``quality`` (a Bad code) carrying its last usable value, stamped now."""
        now = datetime.now(UTC)
        return [Sample(name, self.last_values[name], quality, now) for name in self._names]
