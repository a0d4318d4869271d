"""Every request bounded: the ``[security.limits]`` table and the checks that answer an oversized request with the
OPC UA Part 4 status code before any work is done.

.. code-block:: toml

    [security.limits]
    max_nodes_per_read = 10000            # Read: NodesToRead                       → BadTooManyOperations
    max_nodes_per_write = 1000            # Write: NodesToWrite                     → BadTooManyOperations
    max_nodes_per_call = 100              # Call: MethodsToCall                     → BadTooManyOperations
    max_nodes_per_history_read = 100      # HistoryRead: NodesToRead                → BadTooManyOperations
    max_monitored_items_per_call = 10000  # CreateMonitoredItems: ItemsToCreate     → BadTooManyOperations
    max_read_at_time_times = 10000        # HistoryRead ReadAtTime: ReqTimes        → BadTooManyOperations (per node)
    max_history_values = 10000            # values / events per node per HistoryRead; raw reads go on with
                                          # a continuation point; more processed intervals → BadTooManyOperations
    max_value_bytes = 65536               # a written String / ByteString value or a method argument
                                          #                                         → BadEncodingLimitsExceeded
    max_message_bytes = 16777216          # one request message (asyncua's transport limit) → BadRequestTooLarge

Loading a config imports no asyncua (this module is config only). The checks are :class:`RequestLimits` methods,
called by the session hooks (:mod:`.sessions`: Read, Call, HistoryRead, CreateMonitoredItems) and the write guard
(Write, value size), which answer with the codes above; the message size is asyncua's own transport limit, set
through the asyncua seam (:func:`plc_adapters.asyncua_seam.set_message_limit`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The bounds of one client request (see the module docstring for the codes)."""

    max_nodes_per_read: int = 10_000
    max_nodes_per_write: int = 1_000
    max_nodes_per_call: int = 100
    max_nodes_per_history_read: int = 100
    max_monitored_items_per_call: int = 10_000
    max_read_at_time_times: int = 10_000
    max_history_values: int = 10_000
    max_value_bytes: int = 65_536
    max_message_bytes: int = 16 * 1024 * 1024

    def too_many(self, what: str, count: int) -> str | None:
        """Why a request with ``count`` operations of ``what`` (a field name of this class, e.g.
        ``max_nodes_per_read``) is refused with ``BadTooManyOperations``, else None."""
        limit = getattr(self, what)
        return f"{count} operations, more than [security.limits] {what} = {limit}" if count > limit else None

    def value_too_large(self, value: object) -> str | None:
        """Why a written value or method argument is too large (``BadEncodingLimitsExceeded``), else None."""
        size = value_size(value)
        if size > self.max_value_bytes:
            return f"{size} bytes, more than [security.limits] max_value_bytes = {self.max_value_bytes}"
        return None


def value_size(value: object) -> int:
    """Bytes a value takes on the wire, roughly: strings (UTF-8), ByteStrings, and arrays of them summed; 8 for
    anything else."""
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "replace"))
    if isinstance(value, list | tuple):
        total = 0
        for item in value:
            total += value_size(item)
            if total > 1 << 30:
                break
        return total
    return 8


LIMIT_RANGES = {f.name: (1, 1 << 31) for f in fields(RequestLimits)}
LIMIT_RANGES["max_message_bytes"] = (64 * 1024, 1 << 30)
LIMIT_RANGES["max_value_bytes"] = (16, 1 << 30)


def parse_request_limits(raw: object, add: Callable[[str, object, str], None]) -> RequestLimits:
    """Validate ``[security.limits]`` (``None``: defaults); wrong keys reported to ``add`` and left at their
    defaults."""
    if raw is None:
        return RequestLimits()
    if not isinstance(raw, Mapping):
        add("security.limits", raw, "a table [security.limits]")
        return RequestLimits()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        bounds = LIMIT_RANGES.get(key)
        if bounds is None:
            add(f"security.limits.{key}", "an unknown key", "one of " + ", ".join(sorted(LIMIT_RANGES)))
        elif isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
            add(f"security.limits.{key}", value, f"an integer in [{bounds[0]}, {bounds[1]}]")
        else:
            values[key] = value
    return RequestLimits(**values)
