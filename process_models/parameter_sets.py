"""Versioned, immutable model parameter sets and their write-once store (docs/fitting.md).

A :class:`ParameterSet` is what a fit produces and what a running twin deploys: the values of one unit's model
parameters (with the covariance of those that were estimated), the set it was fitted from (``parent``), the hash of
the unit's model declaration it belongs to (a set for another declaration must be refused), the batches and time
window of the data, and the fit report. Its :attr:`ParameterSet.id` is a content hash, so a set cannot change
without changing its name: :meth:`ParameterSetStore.get` re-hashes what it reads and refuses a file whose content
no longer matches its id (edited by hand, corrupted).

Canonical JSON (the basis of both hashes): keys sorted, no whitespace, UTF-8, floats as Python writes them
(``repr``, shortest round-trip form), no NaN or infinity (refused: they have no JSON form).

The store is one folder, normally ``<data dir>/parameter_sets`` (``twin_server.data_dir``): one ``<id>.json`` per
set, folder mode 0700, files 0600, each written once (temporary file + rename, so a reader never sees half a
file). This module does no other I/O and knows nothing of the twin server.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "NOMINAL_CREATED",
    "ParameterSet",
    "ParameterSetError",
    "ParameterSetStore",
    "canonical_json",
    "declaration_hash",
    "diff_parameter_sets",
    "nominal_parameter_set",
    "unit_model_declaration",
    "utc_timestamp",
]

FORMAT = "linetwin.parameter_set/1"
"""The ``format`` key of a stored set file."""
NOMINAL_CREATED = "1970-01-01T00:00:00+00:00"
"""``created`` of a nominal set: fixed, so the nominal set's id depends only on the declaration and its values."""
_ID = re.compile(r"^[0-9a-f]{16}$")


class ParameterSetError(ValueError):
    """A parameter set or its file is malformed, unknown, ambiguous or tampered with (the message names the set
    id, the file or the key)."""


def _plain(value: Any) -> Any:
    """``value`` as plain JSON types (dict/list/str/float/int/bool/None); mappings and tuples unfrozen."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    try:                                        # numpy scalars
        import numpy as np

        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, np.ndarray):
            return _plain(value.tolist())
    except ImportError:                         # pragma: no cover - numpy is a dependency
        pass
    raise TypeError(f"{type(value).__name__} {value!r} has no JSON form")


def _frozen(value: Any) -> Any:
    """A read-only copy of a plain JSON value: dicts as mapping proxies, lists as tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON (sorted keys, no whitespace, no NaN/infinity: ``ValueError``)."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def declaration_hash(declaration: Mapping[str, Any]) -> str:
    """SHA-256 (hex, 64 characters) of the canonical JSON of a unit's model declaration.

    ``declaration`` is what identifies the model a set belongs to; the CLI and the twin both pass
    :func:`unit_model_declaration` of the unit's config, so a set fitted for one declaration is recognised (and a
    set for another refused) by whoever holds the same line config.
    """
    try:
        return _sha256(declaration)
    except (TypeError, ValueError) as exc:
        raise ParameterSetError(f"model declaration cannot be hashed: {exc}") from exc


def unit_model_declaration(kind: str, model: Mapping[str, Any]) -> dict[str, Any]:
    """The declaration of a unit's model that :func:`declaration_hash` hashes: the unit kind and its
    ``[units.<unit>.model]`` table (model options and declared parameter values)."""
    return {"kind": str(kind), "model": _plain(model)}


def utc_timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as ISO-8601 UTC with an explicit ``+00:00`` offset, microseconds kept."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ParameterSetError(f"timestamp {moment!r} has no time zone; expected UTC")
    return moment.astimezone(UTC).isoformat()


def _check_timestamp(key: str, text: Any) -> str:
    if not isinstance(text, str):
        raise ParameterSetError(f"parameter set key '{key}': expected an ISO-8601 UTC timestamp, got {text!r}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterSetError(
            f"parameter set key '{key}': expected an ISO-8601 UTC timestamp, got {text!r}") from None
    if moment.utcoffset() is None or moment.utcoffset().total_seconds() != 0:
        raise ParameterSetError(f"parameter set key '{key}': {text!r} is not in UTC (expected offset +00:00 or Z)")
    return text


@dataclass(frozen=True)
class ParameterSet:
    """One immutable set of model parameter values for one unit.

    ``values``: parameter name -> value in the model declaration's unit of that parameter (SI, as
    :class:`process_models.declaration.Parameter` states it); every parameter the set fixes; a parameter absent from
    ``values`` takes the declaration's value. ``names``: the parameters that were estimated, in the row/column
    order of ``covariance`` (variances in the parameters' units squared); ``()`` with ``covariance=None`` for a
    nominal set. ``parent``: the id of the set the fit started from (``None``: fitted from, or being, the
    declaration's nominal values). ``batch_ids`` / ``data_window`` (ISO-8601 UTC start, end): the data the fit used.
    ``report``: the fit report (JSON-able; kept read-only). ``created``: ISO-8601 UTC.
    """

    unit: str
    model: str
    declaration_hash: str
    values: Mapping[str, float]
    covariance: tuple[tuple[float, ...], ...] | None
    names: tuple[str, ...]
    parent: str | None
    batch_ids: tuple[str, ...]
    data_window: tuple[str, str] | None
    report: Mapping[str, Any]
    created: str

    def __post_init__(self) -> None:
        def bad(key: str, got: Any, expected: str) -> ParameterSetError:
            return ParameterSetError(
                f"parameter set for unit {self.unit!r}: key '{key}' is {got!r}; expected {expected}")

        for key in ("unit", "model", "declaration_hash"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise bad(key, getattr(self, key), "a non-empty string")
        if not isinstance(self.values, Mapping):
            raise bad("values", self.values, "a mapping of parameter name -> number")
        values: dict[str, float] = {}
        for name, v in self.values.items():
            if not isinstance(name, str) or isinstance(v, bool):
                raise bad(f"values.{name}", v, "a finite number")
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise bad(f"values.{name}", v, "a finite number") from None
            if not math.isfinite(f):
                raise bad(f"values.{name}", v, "a finite number")
            values[name] = f
        object.__setattr__(self, "values", MappingProxyType(dict(sorted(values.items()))))
        names = tuple(self.names)
        if any(not isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise bad("names", names, "distinct parameter names")
        missing = [n for n in names if n not in values]
        if missing:
            raise bad("names", names, f"names that have values (no value for {missing})")
        object.__setattr__(self, "names", names)
        if self.covariance is not None:
            try:
                cov = tuple(tuple(float(x) for x in row) for row in self.covariance)
            except (TypeError, ValueError):
                raise bad("covariance", self.covariance, "a square matrix of numbers") from None
            if len(cov) != len(names) or any(len(row) != len(names) for row in cov):
                raise bad("covariance", self.covariance, f"a {len(names)}x{len(names)} matrix (one row per name)")
            if not all(math.isfinite(x) for row in cov for x in row):
                raise bad("covariance", self.covariance, "finite numbers (an unidentifiable parameter has no "
                                                         "finite variance: leave it out of the fit)")
            object.__setattr__(self, "covariance", cov)
        if self.parent is not None and (not isinstance(self.parent, str) or not _ID.match(self.parent)):
            raise bad("parent", self.parent, "None or a parameter set id (16 hex digits)")
        batch_ids = tuple(self.batch_ids)
        if any(not isinstance(b, str) for b in batch_ids):
            raise bad("batch_ids", batch_ids, "strings")
        object.__setattr__(self, "batch_ids", batch_ids)
        if self.data_window is not None:
            window = tuple(self.data_window)
            if len(window) != 2:
                raise bad("data_window", self.data_window, "None or (start, end)")
            _check_timestamp("data_window.start", window[0])
            _check_timestamp("data_window.end", window[1])
            object.__setattr__(self, "data_window", window)
        if not isinstance(self.report, Mapping):
            raise bad("report", self.report, "a mapping (the fit report)")
        try:
            report = json.loads(canonical_json(self.report))
        except (TypeError, ValueError) as exc:
            raise bad("report", "...", f"a JSON-able mapping without NaN/infinity ({exc})") from None
        object.__setattr__(self, "report", _frozen(report))
        _check_timestamp("created", self.created)

    def content(self) -> dict[str, Any]:
        """Every field as plain JSON types (what the id hashes and the store writes)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @property
    def id(self) -> str:
        """Content hash: the first 16 hex digits of SHA-256 of :func:`canonical_json` of :meth:`content`."""
        return _sha256(self.content())[:16]

    def __hash__(self) -> int:
        return hash(self.id)

    def standard_errors(self) -> dict[str, float]:
        """Square roots of the covariance diagonal per estimated name (empty without a covariance)."""
        if self.covariance is None:
            return {}
        return {n: math.sqrt(max(self.covariance[i][i], 0.0)) for i, n in enumerate(self.names)}

    @classmethod
    def from_content(cls, content: Mapping[str, Any], where: str = "parameter set") -> ParameterSet:
        """A set from :meth:`content` (as read from JSON); unknown or missing keys are refused, naming ``where``."""
        if not isinstance(content, Mapping):
            raise ParameterSetError(f"{where}: expected a JSON object, got {type(content).__name__}")
        keys = {f.name for f in fields(cls)}
        missing = sorted(keys - set(content))
        unknown = sorted(set(content) - keys)
        if missing or unknown:
            raise ParameterSetError(f"{where}: missing keys {missing}, unknown keys {unknown}; expected {sorted(keys)}")
        kwargs = dict(content)
        cov = kwargs["covariance"]
        kwargs["covariance"] = None if cov is None else tuple(tuple(row) for row in cov)
        kwargs["names"] = tuple(kwargs["names"] or ())
        kwargs["batch_ids"] = tuple(kwargs["batch_ids"] or ())
        window = kwargs["data_window"]
        kwargs["data_window"] = None if window is None else tuple(window)
        try:
            return cls(**kwargs)
        except ParameterSetError as exc:
            raise ParameterSetError(f"{where}: {exc}") from None


def nominal_parameter_set(unit: str, model: str, declaration: Mapping[str, Any],
                          values: Mapping[str, float]) -> ParameterSet:
    """The set of a unit's declared (nominal) values: no covariance, no parent, no data; ``created`` is
    :data:`NOMINAL_CREATED`, so its id is a function of the declaration and ``values`` only."""
    return ParameterSet(unit=unit, model=model, declaration_hash=declaration_hash(declaration), values=values,
                        covariance=None, names=(), parent=None, batch_ids=(), data_window=None,
                        report={"kind": "nominal"}, created=NOMINAL_CREATED)


class ParameterSetStore:
    """Write-once parameter sets in one folder (``<id>.json``, folder 0700, files 0600)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, set_id: str) -> Path:
        if not isinstance(set_id, str) or not _ID.match(set_id):
            raise ParameterSetError(f"parameter set id {set_id!r}: expected 16 lower-case hex digits")
        return self.directory / f"{set_id}.json"

    def put(self, parameter_set: ParameterSet) -> str:
        """Store ``parameter_set`` as ``<id>.json`` (atomic) and return its id; storing the same set again changes
        nothing. A file already there under that id whose content does not match is refused (tampered)."""
        set_id = parameter_set.id
        path = self._path(set_id)
        if path.exists():
            self.get(set_id)                     # raises if the file there was altered
            return set_id
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        text = json.dumps({"format": FORMAT, "id": set_id, **parameter_set.content()}, sort_keys=True, indent=1,
                          ensure_ascii=False, allow_nan=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{set_id}.", suffix=".tmp", dir=self.directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return set_id

    def _read(self, path: Path, set_id: str) -> ParameterSet:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ParameterSetError(f"parameter set {set_id}: not in the store {self.directory}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParameterSetError(f"parameter set {set_id}: {path} is not readable JSON ({exc})") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ParameterSetError(f"parameter set {set_id}: {path} has format {got!r}; expected {FORMAT!r}")
        stored_id = raw.pop("id", None)
        raw.pop("format")
        ps = ParameterSet.from_content(raw, where=f"parameter set {set_id} ({path})")
        if ps.id != set_id or stored_id != set_id:
            raise ParameterSetError(f"parameter set {set_id}: {path} was altered: its content hashes to {ps.id} "
                                    f"(file says {stored_id!r}); a parameter set is immutable, refit instead")
        return ps

    def get(self, set_id: str) -> ParameterSet:
        """The set ``set_id``; its content is re-hashed and a mismatch refused (``ParameterSetError``)."""
        return self._read(self._path(set_id), set_id)

    def __contains__(self, set_id: object) -> bool:
        return isinstance(set_id, str) and bool(_ID.match(set_id)) and (self.directory / f"{set_id}.json").exists()

    def ids(self) -> list[str]:
        """The ids of the stored files (unverified), sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json") if _ID.match(p.stem))

    def resolve(self, prefix: str) -> str:
        """The one stored id starting with ``prefix`` (at least 4 hex digits); unknown or ambiguous is refused."""
        if not isinstance(prefix, str) or not re.fullmatch(r"[0-9a-f]{4,16}", prefix):
            raise ParameterSetError(f"parameter set id {prefix!r}: expected 4 to 16 lower-case hex digits")
        matches = [i for i in self.ids() if i.startswith(prefix)]
        if not matches:
            raise ParameterSetError(f"parameter set {prefix}: not in the store {self.directory}")
        if len(matches) > 1:
            raise ParameterSetError(f"parameter set {prefix}: ambiguous, matches {matches}; give more digits")
        return matches[0]

    def list(self, unit: str | None = None) -> list[ParameterSet]:
        """Every stored set (of ``unit`` if given), verified, oldest first (by ``created``, then id)."""
        sets = [self.get(i) for i in self.ids()]
        if unit is not None:
            sets = [s for s in sets if s.unit == unit]
        return sorted(sets, key=lambda s: (datetime.fromisoformat(s.created.replace("Z", "+00:00")), s.id))


def diff_parameter_sets(old: ParameterSet, new: ParameterSet) -> list[dict[str, Any]]:
    """Per parameter whose value differs (or exists in one set only): name, old, new, relative change."""
    rows = []
    for name in sorted(set(old.values) | set(new.values)):
        a, b = old.values.get(name), new.values.get(name)
        if a == b:
            continue
        rel = None if a in (None, 0.0) or b is None else (b - a) / abs(a)
        rows.append({"parameter": name, "old": a, "new": b, "relative_change": rel})
    return rows

