"""History export (the ``linetwin history export`` command is :mod:`linetwin_cli.history`): a node's history
(values, setpoints written, or control and alarm events) as CSV or JSON lines, read straight from the configured
store (the twin need not run; SQLite allows reading while it does).
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from asyncua import ua

from twin_server.config import LineConfig
from twin_server.historian.alarm_history import decode_alarm
from twin_server.historian.service import open_backend
from twin_server.historian.timebase import from_us, to_us

_RELATIVE = re.compile(r"^-?(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ExportError(Exception):
    """Bad arguments (the message names the argument and what was expected)."""


def parse_time(text: str, what: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (``2026-11-30T06:00:00Z``; naive = UTC), ``now``, or an age (``15m``, ``2h``, ``1d``; ``-2h`` too)."""
    now = now or datetime.now(UTC)
    if text == "now":
        return now
    if m := _RELATIVE.match(text):
        return now - timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ExportError(f"{what}: got {text!r}; expected an ISO 8601 time (2026-11-30T06:00:00Z), 'now' "
                          "or an age like 15m, 2h, 1d") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def node_key(config: LineConfig, node: str) -> str:
    """The history key of ``--node``: ``line.unit.tag``, ``unit.tag`` or ``ns=..;s=line.unit.tag``."""
    if node.startswith("ns="):
        node = str(ua.NodeId.from_string(node).Identifier)
    return node if node.startswith(config.name + ".") else f"{config.name}.{node}"


def _iso(t_us: int) -> str:
    return from_us(t_us).isoformat().replace("+00:00", "Z")


ALARM_COLUMNS = ["condition", "transition", "active", "acked", "confirmed", "severity", "user", "comment"]
"""Extra columns of ``--kind events``: filled for alarm events (:mod:`.alarm_history`), empty for control events."""


def _event_row(t: int, unit: str, source: str, message: str) -> list[str]:
    alarm = decode_alarm(source, message)
    if alarm is None:
        return [_iso(t), unit, source, message, *([""] * len(ALARM_COLUMNS))]
    return [_iso(t), unit, source, str(alarm["message"]), *(str(alarm[c]).lower() if isinstance(alarm[c], bool)
                                                            else str(alarm[c]) for c in ALARM_COLUMNS)]


def export_history(config: LineConfig, data_dir: Path, node: str | None, start: datetime, end: datetime,
                   out: TextIO, fmt: str = "csv", kind: str = "values") -> int:
    """Write the history to ``out``; the number of rows written."""
    backend = open_backend(config.historian, data_dir)
    try:
        lo, hi = to_us(start), to_us(end)
        if kind == "values":
            if node is None:
                raise ExportError("--node: got nothing; expected a node id like feed_tank.level")
            key = node_key(config, node)
            if key not in backend.keys():
                known = ", ".join(backend.keys()[:10])
                raise ExportError(f"--node: got {node!r}; expected a historized node of {data_dir} ({known} …)")
            raw = backend.read_raw(key, lo, hi)
            header = ["source_timestamp", "server_timestamp", "value", "status"]
            rows = [[_iso(t), _iso(srv), "" if v is None else repr(v), ua.StatusCode(st).name]
                    for t, v, st, srv in zip(raw.times_us, raw.values, raw.statuses, raw.server_times_us, strict=True)]
        elif kind == "setpoints":
            key = node_key(config, node) if node else None
            header = ["timestamp", "node", "value", "source", "user"]
            rows = [[_iso(t), k, repr(v), src, user] for k, t, v, src, user in backend.read_setpoints(key, lo, hi)]
        else:
            header = ["timestamp", "unit", "source", "message", *ALARM_COLUMNS]
            rows = [_event_row(t, unit, src, msg) for t, unit, src, msg in backend.read_events(node, lo, hi)]
    finally:
        backend.close()
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    else:
        for row in rows:
            out.write(json.dumps(dict(zip(header, row, strict=True))) + "\n")
    return len(rows)
