"""What every virtual PLC is, whatever protocol it serves: one unit's PLC driven by a plant in paced time.

:class:`VirtualPlcBase` holds the shared part — the constructor shape ``(unit, connection, tags, plant, speed,
step_s)``, the plant's pacing (:class:`~hil.plant_pacing.PlantPacer`), start/stop, and the fault primitives:
:meth:`~VirtualPlcBase.suspend_communication` (drops off the network), :meth:`~VirtualPlcBase.hang` (TCP stays
open, nothing is answered) — both on a :class:`~hil.fault_proxy.FaultProxy` in front of the protocol's server, so
no server internals are touched — and :meth:`~VirtualPlcBase.hold_measurement` (an instrument fails; how the
PLC shows it is the protocol's). A protocol's virtual PLC module adds its server (``_serve``/``_close``), how a
held measurement looks, and how commands and measurements move between memory and the server; it registers itself
with :func:`register_virtual_plc` under its connection kind, and :func:`virtual_plc_class` finds it (every
``hil/virtual_*plc.py`` module is imported on the first look-up).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from hil.fault_proxy import FaultProxy
from hil.plant import Plant
from hil.plant_pacing import PlantPacer
from plc_adapters.tag import Direction, TagDescription

INTERNAL_HOST = "127.0.0.1"
"""Where a virtual PLC's own server listens, behind its fault proxy (loopback, a port the OS picks)."""


class VirtualPlcConfigError(ValueError):
    """The tag map cannot be served for this plant (names the unit and the tag)."""


def check_plant_signals(unit: str, tags: Sequence[TagDescription], plant: Plant) -> None:
    """Every tag is a signal of ``plant``, declared once, with the plant's direction.

    Raises:
        VirtualPlcConfigError: naming the unit, the tag and the plant's signals.
    """
    seen: set[str] = set()
    for tag in tags:
        where = f"unit '{unit}', tag '{tag.name}'"
        if tag.name in seen:
            raise VirtualPlcConfigError(f"{where}: declared twice")
        seen.add(tag.name)
        if tag.name in plant.measured_names:
            expected = Direction.MEASURED
        elif tag.name in plant.commanded_names:
            expected = Direction.COMMANDED
        else:
            raise VirtualPlcConfigError(
                f"{where}: the '{plant.kind}' plant has no such signal; measured: {', '.join(plant.measured_names)}; "
                f"commanded: {', '.join(plant.commanded_names)}")
        if tag.direction is not expected:
            raise VirtualPlcConfigError(f"{where}: declared {tag.direction.value} but the '{plant.kind}' plant has "
                                        f"it {expected.value}")


TagT = TypeVar("TagT", bound=TagDescription)


class VirtualPlcBase(ABC):
    """One unit's virtual PLC: plant, pacing, network faults. Subclasses serve a protocol.

    Args:
        unit: unit name (log lines, errors).
        connection: the protocol's connection declaration; ``host``/``port`` is where clients reach the PLC (port 0
            picks a free one, kept for restarts).
        tags: the unit's tags (checked against the plant by :meth:`check_tags`).
        plant: the simulated process.
        speed: plant seconds per wall second (> 0).
        step_s: plant seconds per step (> 0).
    """

    protocol: ClassVar[str]
    """Connection kind served (the registry's key)."""
    kind_text: ClassVar[str] = "virtual PLC"
    """How log lines name this kind of PLC."""

    def __init__(self, unit: str, connection: Any, tags: Sequence[Any], plant: Plant, speed: float = 1.0,
                 step_s: float = 0.1) -> None:
        if not speed > 0.0:
            raise VirtualPlcConfigError(f"unit '{unit}': speed must be > 0, got {speed!r}")
        if not step_s > 0.0:
            raise VirtualPlcConfigError(f"unit '{unit}': step_s must be > 0 plant seconds, got {step_s!r}")
        if not 0 <= connection.port <= 65535:
            raise VirtualPlcConfigError(f"unit '{unit}': port must be 0..65535, got {connection.port}")
        self.check_tags(unit, tags, plant)
        self.unit = unit
        self.connection = connection
        self.plant = plant
        self.speed = float(speed)
        self.step_s = float(step_s)
        self._tags = tuple(tags)
        self._commanded = tuple(t for t in self._tags if t.direction is Direction.COMMANDED)
        self._measured = tuple(t for t in self._tags if t.direction is Direction.MEASURED)
        self._held: set[str] = set()
        self._log = logging.getLogger(type(self).__module__)
        """The protocol module's logger: each kind of PLC logs under its own module, as before the base existed."""
        self._proxy = FaultProxy(f"{self.kind_text} '{unit}'", connection.host, connection.port)
        self._pacer = PlantPacer(unit, self.step_s, self.speed, self._step_once, self._log,
                                 after_burst=self._after_burst)
        self._running = False
        self._loop_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.lockstep = False
        """Set before :meth:`start`: the plant is not paced by the wall clock; plant time moves only by
        :meth:`advance` (a socket bench driven in lockstep with the twin, deterministic on any machine load)."""

    @classmethod
    def check_tags(cls, unit: str, tags: Sequence[Any], plant: Plant) -> None:
        """Raise :class:`VirtualPlcConfigError` if this PLC cannot serve ``tags`` for ``plant`` (protocols add
        their own checks)."""
        check_plant_signals(unit, tags, plant)

    # ------------------------------------------------------------------ public
    @property
    def port(self) -> int:
        """The TCP port clients connect to (the one picked by the OS after a start with port 0)."""
        return self._proxy.port

    @property
    def plant_time_s(self) -> float:
        """Plant time advanced by the loop since construction, s."""
        return self._pacer.plant_time_s

    @property
    def dropped_steps(self) -> int:
        """Steps skipped because the loop fell more than 1 s of wall time behind (0 on a healthy bench)."""
        return self._pacer.dropped_steps

    @property
    def paused_wall_s(self) -> float:
        """Wall seconds the plant clock paused because the event loop was blocked elsewhere (start-up, ...)."""
        return self._pacer.paused_wall_s

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._running

    @property
    def communicating(self) -> bool:
        """True while clients are answered (False after stop(), during suspend_communication() and hang())."""
        return self._running and self._proxy.listening and not self._proxy.hung

    @property
    def tags(self) -> tuple[Any, ...]:
        return self._tags

    @property
    def held_measurements(self) -> frozenset[str]:
        """Measured tags currently held by :meth:`hold_measurement`."""
        return frozenset(self._held)

    def hold_measurement(self, name: str) -> None:
        """Fault: the instrument behind measured tag ``name`` fails until :meth:`release_measurement` (how the PLC
        shows it is the protocol's: :meth:`_show_held`). The plant keeps running.

        Raises:
            KeyError: ``name`` is not a measured tag of this PLC.
        """
        tag = self._measured_tag(name)
        self._held.add(name)
        self._show_held(tag)
        self._log.info("%s '%s': measurement '%s' held at plant time %.1f s", self.kind_text, self.unit, name,
                    self.plant_time_s)

    def release_measurement(self, name: str) -> None:
        """End :meth:`hold_measurement`: the tag gets the plant's current value again (KeyError if unknown)."""
        self._measured_tag(name)
        if name in self._held:
            self._held.discard(name)
            self._publish_measurements()
            self._log.info("%s '%s': measurement '%s' released at plant time %.1f s", self.kind_text, self.unit, name,
                        self.plant_time_s)

    async def start(self) -> None:
        """Serve host:port and start the plant loop. Does nothing if running. OSError names the unit if the address
        cannot be bound."""
        async with self._lock:
            if self._running:
                return
            port = await self._proxy.bind()
            try:
                self._proxy.target = (INTERNAL_HOST, await self._serve(port))
                await self._proxy.listen()
            except BaseException:
                await self._proxy.drop()
                await self._close()
                raise
            self._running = True
            if not self.lockstep:
                self._loop_task = asyncio.create_task(self._pacer.run(), name=f"hil-plant-{self.unit}")
            self._log.info("%s '%s' (%s) listening on %s:%d, speed %g×", self.kind_text, self.unit, self.plant.kind,
                        self.connection.host, self.port, self.speed)

    def advance(self, plant_s: float) -> None:
        """Lockstep (:attr:`lockstep`): advance the plant by ``plant_s`` plant seconds (whole steps of ``step_s``)
        at once and publish its measurements. RuntimeError unless running in lockstep."""
        if not (self.lockstep and self._running):
            raise RuntimeError(f"{self.kind_text} '{self.unit}': advance() needs a running PLC with lockstep = True")
        self._pacer.step_now(int(round(plant_s / self.step_s)))

    async def stop(self) -> None:
        """Stop the plant loop, close the listening socket and every client connection. Idempotent.

        Like a PLC with retentive memory, the tags keep their values; the plant is frozen until the next start(),
        which listens on the same port again.
        """
        async with self._lock:
            task, self._loop_task = self._loop_task, None
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # a failing plant was logged by the loop
                    pass
            was_running, self._running = self._running, False
            await self._proxy.drop()
            await self._close()
            if was_running:
                self._log.info("%s '%s' stopped at plant time %.1f s (plant clock paused %.1f s while the event loop "
                            "was blocked elsewhere, %d steps dropped)", self.kind_text, self.unit, self.plant_time_s,
                            self.paused_wall_s, self.dropped_steps)

    async def suspend_communication(self) -> None:
        """Fault: the PLC drops off the network (listening socket closed, every connection cut) while the plant
        keeps running on the last commanded values. Does nothing unless running and listening."""
        async with self._lock:
            if self._running and self._proxy.listening:
                await self._proxy.drop()
                self._log.info("%s '%s': communication suspended at plant time %.1f s", self.kind_text, self.unit,
                            self.plant_time_s)

    async def resume_communication(self) -> None:
        """End :meth:`suspend_communication` (listen on the same port again) or :meth:`hang`."""
        async with self._lock:
            if self._proxy.hung:
                self._proxy.unhang()
                self._log.info("%s '%s': hang ended at plant time %.1f s", self.kind_text, self.unit, self.plant_time_s)
            elif self._running and not self._proxy.listening:
                await self._proxy.listen()
                self._log.info("%s '%s': communication resumed at plant time %.1f s", self.kind_text, self.unit,
                            self.plant_time_s)

    async def hang(self) -> None:
        """Fault: the PLC's communication task hangs: connections stay open, nothing is read or answered, new
        connections are accepted and never answered. :meth:`resume_communication` ends it (the hung connections
        are then closed, as a PLC's watchdog restart would)."""
        if self._running and self._proxy.listening and not self._proxy.hung:
            self._proxy.hang()
            self._log.info("%s '%s': hung at plant time %.1f s", self.kind_text, self.unit, self.plant_time_s)

    def _measured_tag(self, name: str) -> Any:
        for tag in self._measured:
            if tag.name == name:
                return tag
        raise KeyError(f"{self.kind_text} '{self.unit}': no measured tag '{name}'; measured: "
                       f"{', '.join(t.name for t in self._measured)}")

    # ------------------------------------------------------------------ the protocol's part
    @abstractmethod
    def read_tag(self, name: str) -> float:
        """The PLC's current value of tag ``name`` in engineering units (KeyError if unknown)."""

    @abstractmethod
    async def _serve(self, advertised_port: int) -> int:
        """Start the protocol's server on :data:`INTERNAL_HOST` (a port the OS picks); clients are told
        ``advertised_port`` (the proxy's). Returns the internal port."""

    @abstractmethod
    async def _close(self) -> None:
        """Stop the protocol's server (memory kept). Idempotent."""

    @abstractmethod
    def _show_held(self, tag: Any) -> None:
        """Show measured ``tag`` as a failed instrument."""

    @abstractmethod
    def _publish_measurements(self) -> None:
        """Copy the plant's measurements (not held ones) into the PLC's memory / server."""

    @abstractmethod
    def _step_once(self) -> None:
        """Commands from the PLC's memory into the plant, one plant step, measurements back."""

    def _after_burst(self) -> None:  # noqa: B027 - an optional hook
        """After a run of back-to-back plant steps (the pacer's hook); nothing by default."""


PlcT = TypeVar("PlcT", bound=VirtualPlcBase)
_VIRTUAL_PLCS: dict[str, type[VirtualPlcBase]] = {}
_discovered = False


def register_virtual_plc(cls: type[PlcT]) -> type[PlcT]:
    """Class decorator: ``cls`` serves connections whose ``protocol`` is ``cls.protocol``."""
    if _VIRTUAL_PLCS.get(cls.protocol, cls) is not cls:
        raise ValueError(f"protocol '{cls.protocol}' already has a virtual PLC ({_VIRTUAL_PLCS[cls.protocol]!r})")
    _VIRTUAL_PLCS[cls.protocol] = cls
    return cls


def virtual_plc_class(protocol: str) -> type[VirtualPlcBase]:
    """The virtual PLC serving connection kind ``protocol`` (ValueError naming the known ones)."""
    global _discovered
    if not _discovered:
        import hil

        for module in pkgutil.iter_modules(hil.__path__):
            if module.name.startswith("virtual_") and module.name.endswith("plc"):
                importlib.import_module(f"hil.{module.name}")
        _discovered = True
    cls = _VIRTUAL_PLCS.get(protocol)
    if cls is None:
        raise ValueError(f"no virtual PLC for protocol '{protocol}'; known: {', '.join(sorted(_VIRTUAL_PLCS))}")
    return cls
