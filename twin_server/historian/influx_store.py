"""The production historian store: InfluxDB through ``influxdb-client``, with store and forward.

Line protocol is produced by the client library's ``Point`` (µs precision):

- ``linetwin_value,node=<key> value=<float>,status=<int>i,server_ts=<µs>i <source µs>``
- ``linetwin_setpoint,node=<key>,source=<operator|mpc|recipe|fallback> value=<float>,user="<name>" <µs>``
- ``linetwin_event,unit=<unit>,source=<source> message="<text>" <µs>``

InfluxDB 1.x (``api = "v1"``): written through the v1 ``/write`` endpoint (``db``, ``precision=u``) and read
with InfluxQL through ``/query`` (chunked JSON); the database is created if missing. Credentials (user,
password) come from the environment variables named in the config. InfluxDB 2.x (``api = "v2"``): the
client library's write API (synchronous; the recorder batches) and Flux queries, token from the environment.

Store and forward: when InfluxDB cannot be reached (connection refused, timeout, HTTP 5xx, auth refused), a
batch goes to the on-disk :class:`ForwardBuffer` instead, and while anything waits there new batches queue
behind it, so the order is kept. Every write attempt first replays the buffer, oldest batch first (retried
with a back-off of up to :data:`MAX_RETRY_S`). A point written twice (a crash between a replay and its
removal from the buffer) overwrites itself in InfluxDB (same series and timestamp): nothing is doubled.
A batch InfluxDB rejects as malformed (HTTP 400) cannot succeed on retry: it is dropped, counted and logged.
History that is still in the buffer is not yet visible to HistoryRead.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from influxdb_client import Point, WritePrecision

from plc_adapters.log_text import RepeatLimiter, shorten
from twin_server.historian.forward_buffer import FILE_NAME as BUFFER_FILE
from twin_server.historian.forward_buffer import ForwardBuffer
from twin_server.historian.records import EventRow, RawSeries, SampleRow, SetpointRow
from twin_server.historian.settings import InfluxSettings

log = logging.getLogger("linetwin.historian")

VALUES, SETPOINTS, EVENTS = "linetwin_value", "linetwin_setpoint", "linetwin_event"
MAX_RETRY_S = 2.0
_NS_LIMIT = 9_000_000_000_000_000_000
"""InfluxDB's time range is ±9.22e18 ns; wider query bounds are clamped to this."""


class SinkDown(Exception):
    """InfluxDB could not take the batch now (unreachable, 5xx, auth): keep it and retry."""


class SinkRefused(Exception):
    """InfluxDB refused the batch's content (HTTP 400): retrying cannot help."""


def sample_lines(samples: Sequence[SampleRow], keys: Sequence[str]) -> list[str]:
    out = []
    for sid, t, v, st, srv in samples:
        p = Point(VALUES).tag("node", keys[sid])
        if v is not None:
            p = p.field("value", float(v))
        out.append(p.field("status", int(st)).field("server_ts", round(srv * 1e6))
                   .time(round(t * 1e6), WritePrecision.US).to_line_protocol())
    return out


def setpoint_lines(setpoints: Sequence[SetpointRow]) -> list[str]:
    return [Point(SETPOINTS).tag("node", key).tag("source", source).field("value", float(v)).field("user", user)
            .time(t, WritePrecision.US).to_line_protocol() for key, t, v, source, user in setpoints]


def event_lines(events: Sequence[EventRow]) -> list[str]:
    return [Point(EVENTS).tag("unit", unit).tag("source", source).field("message", message)
            .time(t, WritePrecision.US).to_line_protocol() for t, unit, source, message in events]


def _ns(t_us: int) -> int:
    return max(-_NS_LIMIT, min(_NS_LIMIT, t_us * 1000))


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _V1:
    """InfluxDB 1.x over HTTP: ``/write`` and ``/query`` (stdlib HTTP; line protocol from ``Point``)."""

    def __init__(self, s: InfluxSettings) -> None:
        self.s = s
        self.base = s.url.rstrip("/")
        user, password = s.username(), s.password()
        self.headers = {}
        if user:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.database_ready = False

    def _request(self, path: str, params: dict[str, str], body: bytes | None = None) -> bytes:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, data=body, headers=self.headers,
                                     method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=self.s.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            detail = shorten(exc.read().decode(errors="replace"), 200)
            if exc.code == 400:
                raise SinkRefused(f"InfluxDB refused the batch: {detail}") from exc
            if exc.code == 404 and "database not found" in detail:
                self.database_ready = False
            raise SinkDown(f"InfluxDB answered HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise SinkDown(f"InfluxDB at {self.base} unreachable: {getattr(exc, 'reason', exc)}") from exc

    def ensure_database(self) -> None:
        if not self.database_ready:
            self._request("/query", {"q": f'CREATE DATABASE "{self.s.database}"'}, b"")
            self.database_ready = True

    def write(self, body: str) -> None:
        self.ensure_database()
        self._request("/write", {"db": self.s.database, "precision": "u"}, body.encode())

    def query(self, q: str) -> list[dict[str, Any]]:
        """Series of an InfluxQL query (chunked answers merged), times in µs."""
        raw = self._request("/query", {"db": self.s.database, "q": q, "epoch": "u", "chunked": "true",
                                       "chunk_size": "20000"})
        series: dict[tuple[str, str], dict[str, Any]] = {}
        for line in raw.splitlines():
            if not line.strip():
                continue
            doc = json.loads(line)
            for result in doc.get("results", []):
                if "error" in result and "database not found" in result["error"]:
                    return []  # nothing written yet
                if "error" in result:
                    raise SinkDown(f"InfluxDB query failed: {shorten(result['error'], 200)}")
                for s in result.get("series", []):
                    k = (s.get("name", ""), json.dumps(s.get("tags", {}), sort_keys=True))
                    if k in series:
                        series[k]["values"] += s.get("values", [])
                    else:
                        series[k] = {"name": s.get("name"), "tags": s.get("tags", {}), "columns": s["columns"],
                                     "values": list(s.get("values", []))}
        return list(series.values())

    def raw(self, key: str, lo: int, hi: int, limit: int, reverse: bool) -> list[list[Any]]:
        q = (f'SELECT "value", "status", "server_ts" FROM "{VALUES}" WHERE "node" = {_quote(key)} '
             f"AND time >= {_ns(lo)} AND time <= {_ns(hi)} ORDER BY time {'DESC' if reverse else 'ASC'}"
             + (f" LIMIT {limit}" if limit > 0 else ""))
        rows: list[list[Any]] = []
        for s in self.query(q):
            rows += s["values"]
        return rows


class _V2:
    """InfluxDB 2.x through the client library's write and query APIs (token from the environment)."""

    def __init__(self, s: InfluxSettings) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.s = s
        self.client = InfluxDBClient(url=s.url, token=s.token(), org=s.org, timeout=int(s.timeout_s * 1000))
        self.write_api = self.client.write_api(write_options=SYNCHRONOUS)
        self.query_api = self.client.query_api()

    def write(self, body: str) -> None:
        from influxdb_client.rest import ApiException

        try:
            self.write_api.write(bucket=self.s.bucket, org=self.s.org, record=body, write_precision=WritePrecision.US)
        except ApiException as exc:
            if exc.status == 400:
                raise SinkRefused(f"InfluxDB refused the batch: {shorten(exc.body, 200)}") from exc
            raise SinkDown(f"InfluxDB answered HTTP {exc.status}: {shorten(exc.body, 200)}") from exc
        except Exception as exc:  # urllib3 connection errors and timeouts
            raise SinkDown(f"InfluxDB at {self.s.url} unreachable: {shorten(str(exc), 200)}") from exc

    def flux(self, measurement: str, lo: int, hi: int, predicate: str, fields: list[str]) -> list[dict[str, Any]]:
        q = (f'from(bucket: "{self.s.bucket}") |> range(start: time(v: {max(lo, 0) * 1000}), '
             f"stop: time(v: {min(hi, _NS_LIMIT // 1000) * 1000 + 1})) "
             f'|> filter(fn: (r) => r._measurement == "{measurement}"{predicate}) '
             f'|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") |> sort(columns: ["_time"])')
        out = []
        for table in self.query_api.query(q, org=self.s.org):
            for rec in table.records:
                row = {"time": int(rec.get_time().timestamp() * 1e6)}
                row.update({f: rec.values.get(f) for f in fields})
                row.update({k: v for k, v in rec.values.items() if k in ("node", "source", "unit")})
                out.append(row)
        out.sort(key=lambda r: r["time"])
        return out

    def raw(self, key: str, lo: int, hi: int, limit: int, reverse: bool) -> list[list[Any]]:
        rows = self.flux(VALUES, lo, hi, f' and r.node == "{key}"', ["value", "status", "server_ts"])
        values = [[r["time"], r["value"], r["status"], r["server_ts"]] for r in rows]
        if reverse:
            values.reverse()
        return values[:limit] if limit > 0 else values


class InfluxStore:
    """History in InfluxDB (1.x or 2.x), with an on-disk forward buffer in ``data_dir``."""

    name = "influxdb"

    def __init__(self, settings: InfluxSettings, data_dir: Path, buffer_max_samples: int) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.client: _V1 | _V2 = _V1(settings) if settings.api == "v1" else _V2(settings)
        self.buffer = ForwardBuffer(data_dir / BUFFER_FILE, buffer_max_samples)
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._backoff = 0.25
        self._written = 0
        self.refused = 0
        self._limiter = RepeatLimiter(burst=3, window_s=60.0)
        self._keys: list[str] = []
        self._ids: dict[str, int] = {}

    def series_id(self, key: str) -> int:
        sid = self._ids.get(key)
        if sid is None:
            sid = self._ids[key] = len(self._keys)
            self._keys.append(key)
        return sid

    # -- writing (the recorder's thread) ------------------------------------------------------------------
    def write(self, samples: Sequence[SampleRow], setpoints: Sequence[SetpointRow],
              events: Sequence[EventRow]) -> None:
        lines = sample_lines(samples, self._keys) + setpoint_lines(setpoints) + event_lines(events)
        if not lines:
            return
        body = "\n".join(lines)
        if self.buffer.batches:
            self.buffer.append(body, len(samples))
            self.idle()
            return
        try:
            self._send(body, len(samples))
        except SinkDown as exc:
            self._went_down(exc)
            self.buffer.append(body, len(samples))

    def idle(self) -> None:
        """Replay the forward buffer, oldest first, while InfluxDB takes it (called on every flush)."""
        if not self.buffer.batches or time.monotonic() < self._retry_at:
            return
        while (batch := self.buffer.oldest()) is not None:
            seq, body, n = batch
            try:
                self._send(body, n)
            except SinkDown as exc:
                self._went_down(exc)
                return
            except SinkRefused:
                pass  # counted and logged by _send; cannot succeed later
            self.buffer.remove(seq, n)
        if self.down_since is not None:
            log.info("historian: InfluxDB back after %.1f s; forward buffer replayed",
                     time.monotonic() - self.down_since)
        self.down_since = None
        self._backoff = 0.25

    def _send(self, body: str, n: int) -> None:
        try:
            self.client.write(body)
        except SinkRefused as exc:
            self.refused += n
            log.error("historian: %s (%d samples dropped)", exc, n)
            raise
        self._written += n
        if self.down_since is not None and not self.buffer.batches:
            log.info("historian: InfluxDB reachable again after %.1f s", time.monotonic() - self.down_since)
            self.down_since = None

    def _went_down(self, exc: Exception) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
        self._retry_at = now + self._backoff
        self._backoff = min(self._backoff * 2, MAX_RETRY_S)
        suppressed = self._limiter.allow("down")
        if suppressed is not None:
            log.warning("historian: %s; buffering on disk (%d samples waiting)", exc, self.buffer.samples)

    def purge_before(self, t_us: int) -> int:
        """Retention in InfluxDB is the database's retention policy; nothing is deleted from here."""
        return 0

    # -- reading (worker threads) ---------------------------------------------------------------------
    def read_raw(self, key: str, start_us: int, end_us: int, limit: int = 0, reverse: bool = False) -> RawSeries:
        rows = self.client.raw(key, start_us, end_us, limit, reverse)
        out = RawSeries()
        for t, v, st, srv in rows:
            out.times_us.append(int(t))
            out.values.append(None if v is None else float(v))
            out.statuses.append(int(st or 0))
            out.server_times_us.append(int(srv or 0))
        return out

    def read_setpoints(self, key: str | None, start_us: int, end_us: int) -> list[SetpointRow]:
        if isinstance(self.client, _V2):
            pred = f' and r.node == "{key}"' if key else ""
            return [(r["node"], r["time"], float(r["value"]), r["source"], r["user"] or "")
                    for r in self.client.flux(SETPOINTS, start_us, end_us, pred, ["value", "user"])]
        where = f' AND "node" = {_quote(key)}' if key else ""
        rows = []
        for s in self.client.query(f'SELECT "value", "user", "node", "source" FROM "{SETPOINTS}" WHERE '
                                   f"time >= {_ns(start_us)} AND time <= {_ns(end_us)}{where} ORDER BY time"):
            rows += [(node, int(t), float(v), source, user or "") for t, v, user, node, source in s["values"]]
        return rows

    def read_events(self, unit: str | None, start_us: int, end_us: int) -> list[EventRow]:
        if isinstance(self.client, _V2):
            pred = f' and r.unit == "{unit}"' if unit else ""
            return [(r["time"], r["unit"], r["source"], r["message"])
                    for r in self.client.flux(EVENTS, start_us, end_us, pred, ["message"])]
        where = f' AND "unit" = {_quote(unit)}' if unit else ""
        rows = []
        for s in self.client.query(f'SELECT "message", "unit", "source" FROM "{EVENTS}" WHERE '
                                   f"time >= {_ns(start_us)} AND time <= {_ns(end_us)}{where} ORDER BY time"):
            rows += [(int(t), u, source, message) for t, message, u, source in s["values"]]
        return rows

    def keys(self) -> list[str]:
        if isinstance(self.client, _V2):
            return sorted({r["node"] for r in self.client.flux(VALUES, 0, 2**62, "", [])})
        keys: list[str] = []
        for s in self.client.query(f'SHOW TAG VALUES FROM "{VALUES}" WITH KEY = "node"'):
            keys += [v[1] for v in s["values"]]
        return sorted(keys)

    def state(self) -> str:
        if self.down_since is not None or self.buffer.batches:
            return f"DOWN, {self.buffer.samples} buffered"
        return "ok"

    def stored_samples(self) -> int:
        """Samples written to InfluxDB by this process."""
        return self._written

    def close(self) -> None:
        if self.buffer.batches:
            log.warning("historian: %d samples still in the forward buffer %s; they are sent at the next start",
                        self.buffer.samples, self.buffer.path)
        self.buffer.close()
        if isinstance(self.client, _V2):
            self.client.client.close()
