"""The contract every PLC adapter keeps, and the registry that picks one by connection kind.

The twin (``twin_server.runtime``) sees only :class:`PlcAdapter`: it never asks which protocol a unit speaks. A
protocol's adapter module registers its class under its connection kind (``connection.protocol``) with
:func:`register_adapter`; :func:`adapter_for` finds it. Adapter modules are found by name — every
``plc_adapters/*_adapter.py`` is imported on the first look-up — so a new protocol is one new module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from plc_adapters.adapter_state import WriteStats
from plc_adapters.guarded_write import ReconciledCallback
from plc_adapters.sample import Sample
from plc_adapters.sample_delivery import SamplesCallback
from plc_adapters.tag import TagDescription


class PlcConnection(Protocol):
    """What the twin reads of any protocol's connection declaration."""

    @property
    def protocol(self) -> str:
        """Connection kind (``modbus``, ``opcua`` ...): the registries' key."""
        ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def endpoint(self) -> str:
        """How the PLC is reached, for status lines (``modbus://host:port``, ``opc.tcp://...``)."""
        ...

    @property
    def register_space(self) -> tuple[str, int, int] | None:
        """Register space units may share (their tags must not overlap), or None."""
        ...


@runtime_checkable
class PlcAdapter(Protocol):
    """One unit's link to its PLC, whatever the protocol.

    * ``start()`` returns at once and acquires in the background; ``stop()`` ends it and may be called twice.
    * Samples go out through the ``on_samples`` callback given to the constructor (one list per scan or
      publish; Bad samples keep the last usable value); ``last_samples`` is the latest sample per tag.
    * ``write(tag, value)`` is the guarded write of :mod:`plc_adapters.guarded_write`: it raises
      :class:`~plc_adapters.errors.WriteRefused` (nothing written, or the PLC said no) or
      :class:`~plc_adapters.errors.WriteOutcomeUnknown` (reconciled by a read-back, then handed to
      ``on_write_reconciled``).
    * ``stats`` is a snapshot of counters, at least :class:`~plc_adapters.adapter_state.WriteStats`'.
    """

    unit: str
    on_write_reconciled: ReconciledCallback | None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def write(self, tag: str, value: float) -> None: ...

    @property
    def connected(self) -> bool: ...

    @property
    def last_samples(self) -> Mapping[str, Sample]: ...

    @property
    def unconfirmed_writes(self) -> Mapping[str, float]: ...

    @property
    def stats(self) -> WriteStats: ...

    @property
    def eu_mismatches(self) -> Mapping[str, str]:
        """Tag → why the PLC's engineering units disagree with the config (empty where the protocol cannot say)."""
        ...


class AdapterFactory(Protocol):
    """An adapter class (or any callable) built as ``factory(unit, connection, tags, scan_period_s, **kwargs)``."""

    def __call__(self, unit: str, connection: Any, tags: Sequence[Any], scan_period_s: float, /,
                 on_samples: SamplesCallback | None = ..., **kwargs: Any) -> PlcAdapter: ...


_ADAPTERS: dict[str, AdapterFactory] = {}
_discovered = False
_ADAPTER_MODULE_SUFFIX = "_adapter"

DEFAULT_PROTOCOL = "modbus"
"""Connection kind of a unit whose ``[units.X.plc]`` table names no ``protocol``."""


def _adapter_modules() -> list[str]:
    import plc_adapters

    return [m.name for m in pkgutil.iter_modules(plc_adapters.__path__) if m.name.endswith(_ADAPTER_MODULE_SUFFIX)]


def protocol_names() -> tuple[str, ...]:
    """The protocol table: connection kinds with an adapter module here (``plc_adapters/<kind>_adapter.py``), sorted.

    Read from the module names, importing none of them, so a config loader lists the protocols without loading a
    protocol stack (pymodbus, asyncua). Each module registers its adapter under the same kind
    (:func:`adapter_protocols` gives the registered ones; a test keeps the two equal).
    """
    return tuple(sorted(name.removesuffix(_ADAPTER_MODULE_SUFFIX) for name in _adapter_modules()))


def register_adapter(protocol: str, factory: AdapterFactory) -> None:
    """Make ``factory`` the adapter of connections whose ``protocol`` is ``protocol`` (its module calls this)."""
    if _ADAPTERS.get(protocol, factory) is not factory:
        raise ValueError(f"protocol '{protocol}' already has an adapter ({_ADAPTERS[protocol]!r})")
    _ADAPTERS[protocol] = factory


def _discover() -> None:
    """Import every ``plc_adapters/*_adapter.py`` (each registers itself) once."""
    global _discovered
    if _discovered:
        return
    for name in _adapter_modules():
        importlib.import_module(f"plc_adapters.{name}")
    _discovered = True


def adapter_protocols() -> tuple[str, ...]:
    """Connection kinds an adapter is registered for."""
    _discover()
    return tuple(sorted(_ADAPTERS))


def adapter_for(unit: str, connection: PlcConnection, tags: Sequence[TagDescription], scan_period_s: float,
                *args: Any, **kwargs: Any) -> PlcAdapter:
    """The adapter of ``connection.protocol`` for one unit (same arguments as the adapter classes).

    Raises:
        ValueError: no adapter is registered for that connection kind.
    """
    _discover()
    factory = _ADAPTERS.get(connection.protocol)
    if factory is None:
        raise ValueError(f"unit '{unit}': no PLC adapter for protocol '{connection.protocol}'; known: "
                         f"{', '.join(sorted(_ADAPTERS))}")
    return factory(unit, connection, tags, scan_period_s, *args, **kwargs)
