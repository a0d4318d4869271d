"""The guarded write, once for every protocol: what is checked before a setpoint goes on the wire, how a refusal
is counted and said, and how a write of unknown outcome is reconciled from what the PLC is read to hold.

An adapter hands :meth:`GuardedWrites.write` its protocol part (``send``: encode for the PLC, put it on the wire,
read the answer). Around it the core does, in this order, before anything is sent:

1. the tag exists (UNKNOWN_TAG), is writable (NOT_WRITABLE: :attr:`TagDescription.not_writable_reason`), the
   value is a finite real number (TYPE_MISMATCH) within the tag's write limits (OUT_OF_RANGE);
2. one write per tag at a time (a lock per tag), so the rate check sees the previous write's outcome;
3. ``send`` runs; it calls back :meth:`refuse` (the link is down, the value does not fit the PLC's type ...),
   :meth:`check_rate` with the value the PLC will hold (RATE_LIMIT, the step-bounded rule of
   :mod:`plc_adapters.rate_limit` against :meth:`needs_read_back`'s reference), then :meth:`accepted` or
   :meth:`outcome_unknown` (the request left but no answer came: the PLC may hold it).

Reconciliation: every value the adapter reads of a commanded tag (scan, publish, read-back) goes through
:meth:`observed`; the first one after a write of unknown outcome resolves it — logged, handed to
``on_write_reconciled`` (the twin audits it), and it becomes the rate reference.

Refusals and write lines are logged on the adapter's logger, rate-limited per tag and reason (a bulk write cannot
flood the log).
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Generic, NoReturn, TypeVar

from plc_adapters.adapter_state import Counters
from plc_adapters.errors import WriteOutcomeUnknown, WriteRefusal, WriteRefused
from plc_adapters.log_text import RepeatLimiter, shorten
from plc_adapters.rate_limit import rate_limit_refusal
from plc_adapters.tag import TagDescription, quantity_text

ReconciledCallback = Callable[[str, float, float], None]
"""``(tag, value sent, value the PLC holds)``: a write of unknown outcome was resolved by a read-back."""

TagT = TypeVar("TagT", bound=TagDescription)


def is_finite_real(value: object) -> bool:
    """True for a real number (bool, int, float, numpy scalar) that converts to a finite float."""
    if not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond the float range
        return False


class GuardedWrites(Generic[TagT]):
    """The write checks, counters and reconciliation of one adapter.

    Args:
        unit: unit name, for messages.
        tags: the unit's tags by name.
        counters: the adapter's counters (``writes``, ``refused_writes``, ``unknown_outcome_writes`` are counted).
        logger: the adapter's logger (refusals and write lines are its lines).
    """

    def __init__(self, unit: str, tags: Mapping[str, TagT], counters: Counters, logger: logging.Logger) -> None:
        self.unit = unit
        self._tags = tags
        self._counters = counters
        self._logger = logger
        self._limiter = RepeatLimiter(burst=5, window_s=60.0)
        self._locks: dict[str, asyncio.Lock] = {}
        self._rate_reference: dict[str, tuple[float, float]] = {}
        """Commanded tag → (value the PLC holds, event-loop time it took that value)."""
        self._unconfirmed: dict[str, float] = {}
        """Commanded tag whose last write has an unknown outcome → the value the PLC would hold had it applied."""
        self.on_write_reconciled: ReconciledCallback | None = None

    @property
    def unconfirmed(self) -> Mapping[str, float]:
        return MappingProxyType(self._unconfirmed)

    async def write(self, tag: str, value: object, send: Callable[[TagT, float], Awaitable[None]]) -> None:
        """Check ``value`` for ``tag``, then run the protocol's ``send(spec, value)`` under the tag's lock."""
        spec = self._tags.get(tag)
        if spec is None:
            self.refuse(tag, value, WriteRefusal.UNKNOWN_TAG, f"unit '{self.unit}' has no tag {shorten(tag)}")
        why = spec.not_writable_reason
        if why is not None:
            self.refuse(tag, value, WriteRefusal.NOT_WRITABLE, why)
        if not is_finite_real(value):
            self.refuse(tag, value, WriteRefusal.TYPE_MISMATCH, f"expected a finite real number, got {shorten(value)}")
        number = float(value)  # type: ignore[arg-type]
        limits = spec.effective_write_limits
        if not limits.contains(number):
            self.refuse(tag, number, WriteRefusal.OUT_OF_RANGE, f"{quantity_text(number, spec.symbol)} is outside "
                        f"the write limits [{limits.low:g}, {limits.high:g}] {spec.symbol}")
        async with self._locks.setdefault(tag, asyncio.Lock()):
            await send(spec, number)

    def needs_read_back(self, spec: TagT) -> bool:
        """True when the PLC's value must be read before this write: the last write's outcome is unknown, or a
        rate limit needs a reference that is not known yet."""
        return spec.name in self._unconfirmed or (spec.max_rate is not None and spec.name not in self._rate_reference)

    def check_rate(self, spec: TagT, held_value: float) -> None:
        """Refuse (RATE_LIMIT) a step to ``held_value`` that breaks the tag's ``max_rate``."""
        if spec.max_rate is None:
            return
        why = rate_limit_refusal(spec.max_rate, spec.symbol, self._rate_reference.get(spec.name), held_value,
                                 _now())
        if why is not None:
            self.refuse(spec.name, held_value, WriteRefusal.RATE_LIMIT, why)

    def accepted(self, spec: TagT, value: float, held_value: float) -> None:
        """The PLC answered Good: ``held_value`` is the new rate reference."""
        self._rate_reference[spec.name] = (held_value, _now())
        self._counters["writes"] += 1
        self._log(logging.INFO, f"wrote|{spec.name}", "unit %s: wrote %s = %s", self.unit, spec.name,
                  quantity_text(value, spec.symbol))

    def outcome_unknown(self, spec: TagT, value: float, held_value: float, message: str) -> WriteOutcomeUnknown:
        """The request left and no answer came: counted, remembered for reconciliation; returns the error to raise."""
        self._unconfirmed[spec.name] = held_value
        self._counters["unknown_outcome_writes"] += 1
        self._log(logging.WARNING, f"write-unknown|{spec.name}", "unit %s: write %s = %s: outcome unknown: %s",
                  self.unit, spec.name, shorten(value), message)
        return WriteOutcomeUnknown(spec.name, value, message)

    def refuse(self, tag: str, value: object, reason: WriteRefusal, message: str) -> NoReturn:
        """Count, log (rate-limited) and raise a refusal: nothing was written (unless the PLC said no)."""
        self.refused(WriteRefused(tag, reason, message), value)

    def refused(self, error: WriteRefused, value: object) -> NoReturn:
        """Count, log and raise ``error`` (e.g. a protocol's subclass carrying the PLC's own status code)."""
        self._counters["refused_writes"] += 1
        name = shorten(error.tag, 80)
        self._log(logging.WARNING, f"refused|{name}|{error.reason.value}", "unit %s: write %s = %s refused (%s): %s",
                  self.unit, name, shorten(value), error.reason.value, error.message[:400])
        raise error

    def observed(self, spec: TagT, value: float) -> None:
        """A usable value of commanded tag ``spec`` read from the PLC: resolves a pending write of unknown outcome,
        and becomes the rate reference when the PLC's value changed (someone else wrote it, or first read)."""
        pending = self._unconfirmed.pop(spec.name, None)
        if pending is not None:
            applied = "applied" if value == pending else "not applied (or overwritten since)"
            self._logger.warning("unit %s: write %s = %g of unknown outcome reconciled: the PLC holds %g (%s)",
                                 self.unit, spec.name, pending, value, applied)
            if self.on_write_reconciled is not None:
                try:
                    self.on_write_reconciled(spec.name, pending, value)
                except Exception:
                    self._logger.exception("unit %s: on_write_reconciled callback failed", self.unit)
            self._rate_reference[spec.name] = (value, _now())
            return
        reference = self._rate_reference.get(spec.name)
        if reference is None or reference[0] != value:
            self._rate_reference[spec.name] = (value, _now())

    def _log(self, level: int, key: str, fmt: str, *args: object) -> None:
        suppressed = self._limiter.allow(key)
        if suppressed is None:
            return
        if suppressed:
            fmt += f" ({suppressed} similar lines suppressed)"
        self._logger.log(level, fmt, *args)


def _now() -> float:
    """The rate rule's clock: the running event loop's (monotonic) time, seconds."""
    return asyncio.get_running_loop().time()
