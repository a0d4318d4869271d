"""OPC UA adapter: mirrors a unit's PLC nodes through subscriptions and writes guarded setpoints.

The same contract as :class:`plc_adapters.modbus_adapter.ModbusAdapter` (``start``/``stop``, ``on_samples``
callback, ``last_samples``, ``stats``, ``write`` raising :class:`~plc_adapters.errors.WriteRefused`), with what
OPC UA adds:

* **Subscriptions**: one monitored item per tag (sampling interval, queue size, deadband filter — absolute, or
  percent of the node's EURange turned into an absolute value by the adapter), in subscriptions of at most
  ``max_items_per_subscription`` items, publishing every ``publishing_interval_s`` (default: the line's scan
  period) with a keep-alive count of 1 (the PLC answers every interval even when nothing changed). Each publish
  response becomes one ``on_samples`` call with the samples of the tags that changed (in the order the PLC
  queued them). A PLC that refuses subscriptions is polled with Read every publishing interval instead
  (``stats.mode`` says which); ``mode = "poll"`` forces that.
* **Truthful status**: a sample carries the PLC's status code (Uncertain/Bad from the PLC stay what they were,
  including codes linetwin has no name for) and the PLC's source timestamp (the server timestamp if the PLC
  sends none). The twin's own codes are used only for what the PLC cannot say: ``Bad_CommunicationError`` while
  the link is down, ``Bad_WaitingForInitialData`` before the first value, BadNodeIdUnknown for a node the PLC
  lacks, BadTypeMismatch for a non-numeric value, Bad_DeviceFailure for a NaN under a Good status.
* **Link supervision**: no publish response (data or keep-alive) for 1.75 publishing intervals (at least
  0.25 s; a stall of the twin's own event loop is not counted), a Bad
  subscription status change, or a failed poll ends the session: every tag becomes ``Bad_CommunicationError``
  (last value kept) at once — within two publishing intervals of the last sign of life. The adapter reconnects
  with :class:`~plc_adapters.backoff.Backoff` (capped exponential, jitter); on each connect the session, the
  namespace indices (resolved from the URIs again: a PLC restart may renumber them), the node information and
  the subscriptions are created afresh. Values recovered after an outage keep the PLC's source timestamps, so
  a burst of queued values is historic data with its own times, never "live now".
* **Engineering units**: on connect the nodes' EngineeringUnits / EURange properties are read and compared with
  the config; a mismatch is logged as a warning and listed in :attr:`OpcUaAdapter.eu_mismatches` (the
  status line shows it).
* **Writes** (see :meth:`OpcUaAdapter.write`) are checked like the Modbus adapter's, converted to the node's
  DataType, and a Bad result from the PLC is raised with the PLC's status code; a write that got no answer is
  raised as :class:`~plc_adapters.errors.WriteOutcomeUnknown` and reconciled by reading the node back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NoReturn

from asyncua import Client, ua

from plc_adapters.adapter import register_adapter
from plc_adapters.adapter_core import AdapterCore
from plc_adapters.adapter_state import Counters, SampleStore, WriteStats
from plc_adapters.backoff import Backoff
from plc_adapters.errors import WriteRefusal
from plc_adapters.guarded_write import GuardedWrites
from plc_adapters.log_text import RepeatLimiter, shorten
from plc_adapters.opcua_errors import PlcRefusedWrite
from plc_adapters.opcua_session import (
    BATCH,
    SessionInfo,
    SessionSetupError,
    close_client,
    learn_details,
    make_client,
    read_values,
    read_variant_type,
    resolve_nodes,
)
from plc_adapters.opcua_spec import AcquisitionMode, DeadbandKind, OpcUaConnection, OpcUaTagSpec
from plc_adapters.opcua_values import (
    BAD_NODE_ID_UNKNOWN,
    WRITABLE_VARIANT_TYPES,
    sample_from_data_value,
    setpoint_variant,
    status_name,
)
from plc_adapters.quality import Quality
from plc_adapters.sample import Sample
from plc_adapters.sample_delivery import SampleDelivery, SamplesCallback
from plc_adapters.tag_map import Direction

logger = logging.getLogger(__name__)


class _LostLinkPublishFilter(logging.Filter):
    """asyncua's publish loop logs a traceback at ERROR each second while a link is down ("Publish iteration
    crashed" with a ConnectionError/TimeoutError); the adapter reports the outage itself (one warning, then
    rate-limited lines), so these are demoted to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith("Publish iteration crashed") and \
                record.exc_info and isinstance(record.exc_info[1], ConnectionError | TimeoutError | OSError):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


logging.getLogger("asyncua.client.ua_session.UaSession").addFilter(_LostLinkPublishFilter())


WATCHDOG_INTERVALS = 1.75
"""Publishing intervals without any publish response after which the link is declared lost."""
MIN_WATCHDOG_S = 0.25
"""Floor of that silence, seconds: below it event-loop latency, not the PLC, decides (publishing intervals < 0.15 s)."""
_REFUSE_SUBSCRIPTIONS = frozenset({
    ua.StatusCodes.BadServiceUnsupported, ua.StatusCodes.BadTooManySubscriptions, ua.StatusCodes.BadNotSupported,
    ua.StatusCodes.BadNotImplemented, ua.StatusCodes.BadUserAccessDenied,
})
_FILTER_REFUSED = frozenset({
    ua.StatusCodes.BadMonitoredItemFilterUnsupported, ua.StatusCodes.BadFilterNotAllowed,
    ua.StatusCodes.BadMonitoredItemFilterInvalid, ua.StatusCodes.BadDeadbandFilterInvalid,
})


@dataclass(frozen=True, slots=True)
class OpcUaAdapterStats(WriteStats):
    """Counters of one OPC UA adapter since start (and :class:`~plc_adapters.adapter_state.WriteStats`' write
    counters).

    Attributes:
        mode: ``subscribe`` or ``poll`` (the mode of the current or last session).
        publishes: publish responses with data (subscription mode) or polls (poll mode) handled.
        samples: samples handed to ``on_samples`` (comm-loss samples included).
        sessions: sessions opened (the first one included).
        reconnects: sessions opened after an outage.
        outages: times the link was declared lost (or could not be opened).
        subscriptions: subscriptions of the current session.
        eu_mismatches: tags whose EngineeringUnits/EURange on the PLC disagree with the config.
    """

    mode: str = AcquisitionMode.SUBSCRIBE.value
    publishes: int = 0
    samples: int = 0
    sessions: int = 0
    reconnects: int = 0
    outages: int = 0
    subscriptions: int = 0
    eu_mismatches: int = 0


class _LinkLost(Exception):
    """The session is unusable; the reason is the message."""


class _Session:
    """One connected session: client, learnt nodes, monitored-item handles, liveness."""

    def __init__(self, client: Client, info: SessionInfo, loop_now: float) -> None:
        self.client = client
        self.info = info
        self.handles: dict[int, str] = {}
        self.last_alive = loop_now
        self.lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.mode = AcquisitionMode.SUBSCRIBE
        self.subscription_ids: list[int] = []
        self.revised_interval_s = 0.0
        """Longest publishing interval the PLC granted (it may revise the one asked), seconds."""
        self.revised_keep_alive = 1

    def fail(self, reason: str) -> None:
        if not self.lost.done():
            self.lost.set_result(reason)

    @property
    def alive(self) -> bool:
        return not self.lost.done()


class OpcUaAdapter(AdapterCore[OpcUaAdapterStats]):
    """Mirrors one unit's PLC over OPC UA and writes its commanded tags.

    Args:
        unit: unit name, used in logs.
        connection: the PLC endpoint, security, subscription parameters.
        tags: the unit's tags (:class:`~plc_adapters.opcua_spec.OpcUaTagSpec`).
        scan_period_s: the line's scan period, seconds: the publishing interval unless the connection sets one.
        on_samples: called (awaited if it returns an awaitable) with each batch of samples.
        backoff_initial_s / backoff_max_s: reconnect delays in seconds (initial → ×2 → max, ±10 % jitter).
    """

    def __init__(
        self, unit: str, connection: OpcUaConnection, tags: Sequence[OpcUaTagSpec], scan_period_s: float,
        on_samples: SamplesCallback | None = None, backoff_initial_s: float = 0.2, backoff_max_s: float = 5.0,
    ) -> None:
        if not (math.isfinite(scan_period_s) and scan_period_s > 0):
            raise ValueError(f"unit '{unit}': scan_period_s must be a finite number of seconds > 0, "
                             f"got {scan_period_s!r}")
        if not tags:
            raise ValueError(f"unit '{unit}': the tag map is empty")
        names = [t.name for t in tags]
        if len(set(names)) != len(names):
            raise ValueError(f"unit '{unit}': duplicate tag names")
        Backoff(backoff_initial_s, backoff_max_s)  # validates now
        self.unit = unit
        self.connection = connection
        self.publishing_interval_s = connection.publishing_interval_s or scan_period_s
        self._tags: dict[str, OpcUaTagSpec] = {t.name: t for t in tags}
        self._delivery = SampleDelivery(unit, on_samples, logger)
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._session: _Session | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._emit_task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[list[Sample]] = asyncio.Queue()
        self._store = SampleStore(self._tags)
        self._last_values = self._store.last_values
        self._mismatches: dict[str, str] = {}
        self._counters = Counters(OpcUaAdapterStats, mode=connection.mode.value)
        self._writes = GuardedWrites(unit, self._tags, self._counters, logger)
        self._outage_since: float | None = None
        self._down_emitted = False
        self._log_limit = RepeatLimiter(burst=3, window_s=60.0)
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """True while a session to the PLC is open and alive."""
        return self._session is not None and self._session.alive

    @property
    def eu_mismatches(self) -> Mapping[str, str]:
        """Tag → why the PLC node's EngineeringUnits/EURange disagree with the config (from the last connect)."""
        return MappingProxyType(self._mismatches)

    @property
    def namespace_indices(self) -> dict[str, int]:
        """Namespace URI → index resolved on the current session (empty while disconnected)."""
        session = self._session
        if session is None:
            return {}
        return {uri: i for i, uri in enumerate(session.info.namespaces)}

    async def start(self) -> None:
        """Start connecting and mirroring in background tasks; returns at once."""
        if self._run_task is not None and not self._run_task.done():
            raise RuntimeError(f"unit '{self.unit}': adapter already started")
        self._counters.reset()
        self._emit_task = asyncio.create_task(self._emitter(), name=f"opcua-emit-{self.unit}")
        self._run_task = asyncio.create_task(self._run(), name=f"opcua-run-{self.unit}")

    async def stop(self) -> None:
        """Stop mirroring, close the session (a hung PLC gets its socket dropped). Safe to call twice."""
        tasks = [t for t in (self._run_task, self._emit_task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._run_task = self._emit_task = None
        session, self._session = self._session, None
        if session is not None:
            session.fail("adapter stopped")
            await close_client(session.client, self.connection.timeout_s)

    async def write(self, tag: str, value: float) -> None:
        """Write a commanded tag's engineering value to the PLC node.

        The checks of :mod:`plc_adapters.guarded_write` (UNKNOWN_TAG, NOT_WRITABLE, TYPE_MISMATCH, write limits
        OUT_OF_RANGE), then here: a session is open and the node known (COMMUNICATION_ERROR); the value fits the
        node's DataType (OUT_OF_RANGE); the step-bounded rate rule against the value the PLC holds (RATE_LIMIT;
        refused while no value is known yet). The PLC's answer: Good → done; a Bad status →
        :class:`~plc_adapters.opcua_errors.PlcRefusedWrite` carrying that status; no answer within
        ``timeout_s`` → :class:`~plc_adapters.errors.WriteOutcomeUnknown` (the node is then read back, the
        outcome logged and handed to ``on_write_reconciled``).

        Raises:
            WriteRefused: or one of its subclasses above.
        """
        await self._writes.write(tag, value, self._send)

    # ------------------------------------------------------------------ writes

    async def _send(self, spec: OpcUaTagSpec, value: float) -> None:
        """The OPC UA part of a guarded write: the node and its DataType, rate check, Write, the PLC's answer."""
        tag = spec.name
        refuse = self._writes.refuse
        session = self._session
        node = session.info.nodes.get(tag) if session is not None and session.alive else None
        if session is None or node is None:
            refuse(tag, value, WriteRefusal.COMMUNICATION_ERROR, f"PLC {self.connection.endpoint} is not connected")
        if node.node_id is None or node.status:
            refuse(tag, value, WriteRefusal.COMMUNICATION_ERROR,
                   f"node {spec.node} is unknown to the PLC ({status_name(node.status)})")
        if not node.typed:  # the DataType is read in the background after connect; this write needs it now
            try:
                node.variant_type = await read_variant_type(session.client, node.node_id, self.connection.timeout_s)
                node.typed = True
            except Exception as exc:  # noqa: BLE001
                refuse(tag, value, WriteRefusal.COMMUNICATION_ERROR, f"cannot read the node's DataType: {exc}")
        if node.variant_type not in WRITABLE_VARIANT_TYPES:
            what = node.variant_type.name if node.variant_type is not None else "not a built-in type"
            refuse(tag, value, WriteRefusal.TYPE_MISMATCH, f"the PLC node's DataType is {what}")
        try:
            variant, held_value = setpoint_variant(value, node.variant_type)
        except ValueError as exc:
            refuse(tag, value, WriteRefusal.OUT_OF_RANGE, str(exc))
        self._writes.check_rate(spec, held_value)
        params = ua.WriteParameters()
        params.NodesToWrite = [ua.WriteValue(NodeId=node.node_id, AttributeId=ua.AttributeIds.Value,
                                             Value=ua.DataValue(variant))]
        try:
            results = await asyncio.wait_for(session.client.uaclient.write(params), self.connection.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the request went out: its outcome is unknown
            code = getattr(exc, "code", None)
            if isinstance(exc, ua.UaStatusCodeError) and code is not None and code not in (
                    ua.StatusCodes.BadTimeout, ua.StatusCodes.BadRequestTimeout):
                self._plc_refused(spec, value, int(code))  # the PLC answered the request with a Bad service result
            message = (f"no answer from {self.connection.endpoint} within {self.connection.timeout_s:g} s "
                       f"({type(exc).__name__}); the PLC may or may not hold {value:g}, reading it back")
            unknown = self._writes.outcome_unknown(spec, value, held_value, message)
            self._reconcile_later(session, spec)
            raise unknown from exc
        code = int(results[0].value) if results else ua.StatusCodes.BadUnexpectedError
        if code >> 30 != 0:
            self._plc_refused(spec, value, code)
        self._writes.accepted(spec, value, held_value)

    def _plc_refused(self, spec: OpcUaTagSpec, value: float, code: int) -> NoReturn:
        name = status_name(code)
        self._writes.refused(PlcRefusedWrite(spec.name, code, name, f"the PLC answered {name} for node {spec.node}"),
                             value)

    async def _learn_details(self, session: _Session) -> None:
        """DataType and EngineeringUnits/EURange of every node, after the data flows; then report mismatches."""
        try:
            await learn_details(session.client, list(self._tags.values()), session.info, self.connection.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the session is failing; the next connect tries again
            logger.debug("unit %s: reading node details failed: %s", self.unit, exc)
            return
        if session.alive:
            self._report_mismatches(session.info)

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _reconcile_later(self, session: _Session, spec: OpcUaTagSpec) -> None:
        """Read the node back until the PLC answers (this session or a later one); the value it holds resolves the
        write of unknown outcome (unless a publish of the node did first)."""
        async def reconcile() -> None:
            node = session.info.nodes[spec.name]
            for _ in range(20):
                if spec.name not in self._writes.unconfirmed:
                    return  # a publish of the node reconciled it
                current = self._session
                if current is not None and current.alive:
                    node = current.info.nodes.get(spec.name, node)
                    try:
                        dvs = await read_values(current.client, [node.node_id], self.connection.timeout_s)
                    except Exception:  # noqa: BLE001 - still unreachable; try again
                        pass
                    else:
                        held = dvs[0].Value.Value if dvs and dvs[0].Value is not None else None
                        if isinstance(held, numbers.Real) and math.isfinite(float(held)) and \
                                spec.name in self._writes.unconfirmed:
                            self._writes.observed(spec, float(held))
                            return
                await asyncio.sleep(max(self.publishing_interval_s, 0.2))
            if spec.name in self._writes.unconfirmed:
                logger.warning("unit %s: write %s: outcome still unknown (PLC unreachable)", self.unit, spec.name)

        self._spawn(reconcile(), f"opcua-reconcile-{self.unit}-{spec.name}")

    # ------------------------------------------------------------------ session life cycle

    async def _run(self) -> None:
        backoff = Backoff(self._backoff_initial_s, self._backoff_max_s)
        while True:
            session: _Session | None = None
            try:
                session = await self._open()
                backoff.reset()
                reason = await self._supervise(session)
            except asyncio.CancelledError:  # stop(): close this session's client here, nobody else holds it
                if session is not None:
                    session.fail("adapter stopped")
                    if self._session is session:
                        self._session = None
                    await close_client(session.client, min(self.connection.timeout_s, 1.0))
                raise
            except (SessionSetupError, _LinkLost) as exc:
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - any failure of the peer is an outage, never a crash
                logger.debug("unit %s: session failed", self.unit, exc_info=True)
                reason = f"{type(exc).__name__}: {shorten(str(exc) or repr(exc), 200)}"
            finally:
                if session is not None:
                    session.fail("closing")
                    if self._session is session:
                        self._session = None
            self._link_down(reason)
            if session is not None:
                await close_client(session.client, min(self.connection.timeout_s, self.publishing_interval_s))
            await asyncio.sleep(backoff.next_delay())

    async def _open(self) -> _Session:
        loop = asyncio.get_running_loop()
        client = await make_client(self.connection)
        try:
            await asyncio.wait_for(client.connect(), self.connection.timeout_s * 2)
            for name in ("_stale_watchdog_task",):  # asyncua's own subscription re-creation: the adapter does it
                task = getattr(client, name, None)
                if task is not None:
                    task.cancel()
            tags = list(self._tags.values())
            info = await resolve_nodes(client, tags, self.connection.timeout_s)
            percent = [t for t in tags if t.deadband and t.deadband_kind is DeadbandKind.PERCENT]
            if percent:  # their deadband needs the PLC's EURange before the monitored items are created
                await learn_details(client, percent, info, self.connection.timeout_s)
            session = _Session(client, info, loop.time())
            await self._acquire(session)
        except BaseException:
            await close_client(client, min(self.connection.timeout_s, 1.0))
            raise
        session.last_alive = loop.time()  # the watchdog counts from now, not from before the items were created
        self._session = session
        self._counters["sessions"] += 1
        if self._counters["sessions"] > 1:
            self._counters["reconnects"] += 1
        self._counters["mode"] = session.mode.value
        if self._outage_since is not None:
            logger.info("unit %s: PLC %s recovered after %.2f s (%s)", self.unit, self.connection.endpoint,
                        loop.time() - self._outage_since, session.mode.value)
        self._outage_since = None
        self._down_emitted = False
        received = datetime.now(UTC)
        unknown = [Sample(n, self._last_values[n], Quality(info.nodes[n].status or BAD_NODE_ID_UNKNOWN), received)
                   for n in self._tags if info.nodes[n].node_id is None]
        if unknown:
            self._enqueue(unknown)
        self._spawn(self._learn_details(session), f"opcua-details-{self.unit}")
        return session

    async def _acquire(self, session: _Session) -> None:
        if self.connection.mode is AcquisitionMode.POLL:
            session.mode = AcquisitionMode.POLL
            return
        try:
            await self._subscribe(session)
        except ua.UaStatusCodeError as exc:
            if exc.code not in _REFUSE_SUBSCRIPTIONS:
                raise
            logger.warning("unit %s: PLC %s refuses subscriptions (%s); polling every %.3g s instead", self.unit,
                           self.connection.endpoint, status_name(exc.code), self.publishing_interval_s)
            session.mode = AcquisitionMode.POLL

    async def _subscribe(self, session: _Session) -> None:
        uaclient = session.client.uaclient
        interval_ms = self.publishing_interval_s * 1000.0
        usable = [n for n in self._tags if session.info.nodes[n].node_id is not None and not
                  session.info.nodes[n].status]
        per_sub = max(1, self.connection.max_items_per_subscription)
        keep_alive = max(1, self.connection.keep_alive_count)
        for start in range(0, max(len(usable), 1), per_sub):
            chunk = usable[start:start + per_sub]
            params = ua.CreateSubscriptionParameters(
                RequestedPublishingInterval=interval_ms, RequestedMaxKeepAliveCount=keep_alive,
                RequestedLifetimeCount=max(3 * keep_alive, int(math.ceil(
                    max(10.0, 3 * self.connection.timeout_s) / self.publishing_interval_s))),
                MaxNotificationsPerPublish=0, PublishingEnabled=True, Priority=0)
            result = await asyncio.wait_for(
                uaclient.create_subscription(params, callback=self._publish_callback(session)),
                self.connection.timeout_s)
            session.subscription_ids.append(result.SubscriptionId)
            revised_s = result.RevisedPublishingInterval / 1000.0
            session.revised_interval_s = max(session.revised_interval_s, revised_s)
            session.revised_keep_alive = max(session.revised_keep_alive, int(result.RevisedMaxKeepAliveCount or 1))
            if revised_s > self.publishing_interval_s * 1.01 and start == 0:
                logger.warning("unit %s: PLC revised the publishing interval to %.3g s (asked %.3g s)", self.unit,
                               revised_s, self.publishing_interval_s)
            await self._create_items(session, result.SubscriptionId, chunk)
        self._counters["subscriptions"] = len(session.subscription_ids)

    async def _create_items(self, session: _Session, subscription_id: int, names: list[str]) -> None:
        for start in range(0, len(names), BATCH):
            batch = names[start:start + BATCH]
            requests = [self._item_request(session, name, with_filter=True) for name in batch]
            results = await self._send_items(session, subscription_id, requests)
            retry = [name for name, r in zip(batch, results, strict=True) if r.StatusCode.value in _FILTER_REFUSED]
            if retry:
                logger.warning("unit %s: PLC refuses deadband filters (%s); %d tags report every change", self.unit,
                               status_name(results[batch.index(retry[0])].StatusCode.value), len(retry))
                results_retry = await self._send_items(
                    session, subscription_id, [self._item_request(session, n, with_filter=False) for n in retry])
                by_name = dict(zip(retry, results_retry, strict=True))
                results = [by_name.get(n, r) for n, r in zip(batch, results, strict=True)]
            bad = []
            for name, result in zip(batch, results, strict=True):
                if not result.StatusCode.is_good():
                    bad.append(Sample(name, self._last_values[name], Quality(int(result.StatusCode.value)),
                                      datetime.now(UTC)))
                    session.info.nodes[name].status = int(result.StatusCode.value)
            if bad:
                logger.warning("unit %s: PLC refused monitored items for %s", self.unit,
                               shorten(", ".join(f"{s.tag} ({status_name(int(s.quality))})" for s in bad), 300))
                self._enqueue(bad)

    async def _send_items(self, session: _Session, subscription_id: int,
                          requests: list[ua.MonitoredItemCreateRequest]) -> list[ua.MonitoredItemCreateResult]:
        params = ua.CreateMonitoredItemsParameters(SubscriptionId=subscription_id,
                                                   TimestampsToReturn=ua.TimestampsToReturn.Both,
                                                   ItemsToCreate=requests)
        return await asyncio.wait_for(session.client.uaclient.create_monitored_items(params),
                                      self.connection.timeout_s * 2)

    def _item_request(self, session: _Session, name: str, with_filter: bool) -> ua.MonitoredItemCreateRequest:
        spec = self._tags[name]
        node = session.info.nodes[name]
        handle = len(session.handles) + 1
        session.handles[handle] = name
        sampling_s = spec.sampling_interval_s if spec.sampling_interval_s is not None else self.publishing_interval_s
        params = ua.MonitoringParameters(ClientHandle=handle, SamplingInterval=sampling_s * 1000.0,
                                         QueueSize=max(1, self.connection.queue_size), DiscardOldest=True)
        deadband = self._absolute_deadband(spec, node.eu_range) if with_filter else None
        if deadband is not None:
            params.Filter = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValue,
                                                DeadbandType=ua.DeadbandType.Absolute, DeadbandValue=deadband)
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=node.node_id, AttributeId=ua.AttributeIds.Value),
            MonitoringMode=ua.MonitoringMode.Reporting, RequestedParameters=params)

    @staticmethod
    def _absolute_deadband(spec: OpcUaTagSpec, plc_range: Any) -> float | None:
        if spec.deadband is None or spec.deadband <= 0:
            return None
        if spec.deadband_kind is DeadbandKind.ABSOLUTE:
            return spec.deadband
        span_range = plc_range if plc_range is not None else spec.eu_range
        return spec.deadband / 100.0 * (span_range.high - span_range.low)

    def _publish_callback(self, session: _Session) -> Callable[[ua.PublishResult], None]:
        loop = asyncio.get_running_loop()

        def on_publish(result: ua.PublishResult) -> None:
            if not session.alive:
                return
            session.last_alive = loop.time()
            data = result.NotificationMessage.NotificationData
            if not data:
                return  # keep-alive
            received = datetime.now(UTC)
            samples: list[Sample] = []
            for notification in data:
                if isinstance(notification, ua.DataChangeNotification):
                    handles = session.handles
                    for item in notification.MonitoredItems:
                        name = handles.get(item.ClientHandle)
                        if name is not None:
                            samples.append(self._sample(name, item.Value, received))
                elif isinstance(notification, ua.StatusChangeNotification):
                    status = notification.Status
                    if status is not None and not status.is_good():
                        session.fail(f"subscription status {status_name(int(status.value))}")
                        return
            if samples:
                self._counters["publishes"] += 1
                self._enqueue(samples)

        return on_publish

    async def _supervise(self, session: _Session) -> str:
        """Wait until the session is lost; returns why."""
        loop = asyncio.get_running_loop()
        if session.mode is AcquisitionMode.POLL:
            return await self._poll(session)
        period = max(self.publishing_interval_s, session.revised_interval_s)  # as granted by the PLC
        keep_alive = max(1, self.connection.keep_alive_count, session.revised_keep_alive)
        limit = max(WATCHDOG_INTERVALS * period * keep_alive, MIN_WATCHDOG_S)
        tick = max(0.02, period / 10.0)
        previous = loop.time()
        while session.alive:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(session.lost), timeout=max(0.005, tick))
            now = loop.time()
            late, previous = now - previous > 3 * tick + 0.05, now
            if late:
                # this event loop itself stalled (a long computation elsewhere): publish responses may sit unread
                # in the socket; let them in before judging the PLC
                for _ in range(3):
                    await asyncio.sleep(0)
                previous = loop.time()
                continue
            silent = now - session.last_alive
            if silent > limit:
                session.fail(f"no publish response (data or keep-alive) for {silent:.2f} s "
                             f"(publishing interval {period:g} s)")
        return session.lost.result()

    async def _poll(self, session: _Session) -> str:
        loop = asyncio.get_running_loop()
        period = self.publishing_interval_s
        names = [n for n in self._tags if session.info.nodes[n].node_id is not None and not
                 session.info.nodes[n].status]
        node_ids = [session.info.nodes[n].node_id for n in names]
        previous: dict[str, tuple[Any, int, Any]] = {}
        next_due = loop.time()
        while session.alive:
            try:
                dvs = await read_values(session.client, node_ids, min(self.connection.timeout_s, 2 * period))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                session.fail(f"poll failed: {type(exc).__name__}: {shorten(str(exc), 200)}")
                break
            session.last_alive = loop.time()
            received = datetime.now(UTC)
            changed = []
            for name, dv in zip(names, dvs, strict=True):
                key = (dv.Value.Value if dv.Value is not None else None,
                       int(dv.StatusCode.value) if dv.StatusCode is not None else 0, dv.SourceTimestamp)
                if previous.get(name) != key:
                    previous[name] = key
                    changed.append(self._sample(name, dv, received))
            self._counters["publishes"] += 1
            if changed:
                self._enqueue(changed)
            next_due += period
            await asyncio.sleep(max(0.0, next_due - loop.time()))
            if next_due < loop.time() - period:
                next_due = loop.time()
        return session.lost.result()

    def _link_down(self, reason: str) -> None:
        loop = asyncio.get_running_loop()
        self._counters["outages"] += 1
        if self._outage_since is None:
            self._outage_since = loop.time()
            logger.warning("unit %s: PLC %s unavailable: %s; samples are Bad_CommunicationError until it recovers",
                           self.unit, self.connection.endpoint, reason)
        elif self._log_limit.allow(f"retry:{reason[:60]}") is not None:
            logger.info("unit %s: PLC %s still unavailable: %s", self.unit, self.connection.endpoint, reason)
        if not self._down_emitted:
            self._down_emitted = True
            self._enqueue(self._store.bad(Quality.BAD_COMMUNICATION_ERROR))

    def _report_mismatches(self, info: SessionInfo) -> None:
        self._mismatches = dict(info.mismatches)
        self._counters["eu_mismatches"] = len(self._mismatches)
        for name, text in self._mismatches.items():
            logger.warning("unit %s: tag %s: engineering units differ between the PLC and the config: %s", self.unit,
                           name, text)

    # ------------------------------------------------------------------ samples

    def _sample(self, name: str, dv: ua.DataValue, received: datetime) -> Sample:
        sample = sample_from_data_value(name, dv, self._last_values[name], received)
        if sample.value is not None and not sample.quality.is_bad:
            self._last_values[name] = sample.value
            spec = self._tags[name]
            if spec.direction is Direction.COMMANDED:
                self._writes.observed(spec, sample.value)
        return sample

    def _enqueue(self, samples: list[Sample]) -> None:
        self._store.update(samples)
        self._counters["samples"] += len(samples)
        self._queue.put_nowait(samples)

    async def _emitter(self) -> None:
        while True:
            samples = await self._queue.get()
            await self._delivery.deliver(samples)


register_adapter(OpcUaConnection.protocol, OpcUaAdapter)
