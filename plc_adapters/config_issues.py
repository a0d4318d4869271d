"""Config issues: what is wrong in a config file, as (file, key, got, expected), and the one collector that
records them while a file is read.

Every parser of a config table (line, units, tags, PLC connections, alarms, historian, security, control and
surrogate options) reports through an :class:`IssueCollector`: ``add(key, got, expected)``. It lives in
``plc_adapters``, the lowest layer with config tables of its own (the tag tables, :mod:`plc_adapters.tag_config`),
so the twin's config loader and the HIL bench's reader of a line (``hil.line_unit``) report alike. Parsers in
``controllers`` and ``process_models`` do not import it; they return their problems as ``(key, got, expected)``
triples, which :meth:`IssueCollector.extend` records. The collector adds the file.

How a found value is shown after "got" (:func:`show`: ``repr``, shortened, huge integers by their size) and an
exception text cut for an error line (:func:`brief`) are here too, with :func:`is_finite_number`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from plc_adapters.log_text import shorten
from plc_adapters.tag import Range

__all__ = ["ConfigError", "ConfigIssue", "Described", "IssueCollector", "NAME_RE", "brief", "is_finite_number", "show"]

MAX_REASON_CHARS = 300
"""Characters of an exception text kept in a config error's "expected" part."""

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}\Z")
"""Line, unit and tag names: a letter, then letters, digits and ``_``, 64 characters at most."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file."""

    file: str
    key: str
    got: str
    expected: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: got {self.got}; expected {self.expected}"


class ConfigError(Exception):
    """The config has one or more problems; ``issues`` lists all of them.

    ``buildable_units``: the units (:class:`twin_server.config.UnitConfig`) of a line config whose model, plant and
    control tables were free of problems, which ``check`` still builds to report every problem at once.
    """

    def __init__(self, issues: list[ConfigIssue], buildable_units: tuple[Any, ...] = ()) -> None:
        self.issues = issues
        self.buildable_units = buildable_units
        lines = "\n".join(f"  - {i}" for i in issues)
        super().__init__(f"{len(issues)} configuration error(s):\n{lines}")


class IssueCollector:
    """Collects the issues of one config file while its raw TOML mapping is read."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.issues: list[ConfigIssue] = []

    def add(self, key: str, got: object, expected: str) -> None:
        """One problem: ``key`` (dotted, e.g. ``units.feed_tank.tags.level.scale``), what was found, what was
        expected."""
        self.issues.append(ConfigIssue(self.file, key, _show(got), expected))

    def extend(self, issues: Iterable[tuple[str, object, str]]) -> None:
        """Problems reported as ``(key, got, expected)`` triples (by parsers of the layers below the twin)."""
        for key, got, expected in issues:
            self.add(key, got, expected)

    def table(self, data: Mapping[str, Any], key: str, required: bool = True) -> Mapping[str, Any]:
        parts = key.split(".")
        value = data.get(parts[-1]) if isinstance(data, Mapping) else None
        if value is None:
            if required:
                self.add(key, "nothing", "a table [" + key + "]")
            return {}
        if not isinstance(value, Mapping):
            self.add(key, value, "a table")
            return {}
        return value

    def named_table(self, raw: Any, prefix: str, name: str, what: str,
                    allowed: set[str] | None) -> Mapping[str, Any] | None:
        """The table ``[PREFIX]`` of a named thing (a unit, a tag): ``None`` unless it is a table; its ``name``
        checked against :data:`NAME_RE` and its keys against ``allowed`` (``None``: not checked)."""
        if not isinstance(raw, Mapping):
            self.add(prefix, raw, f"a table describing the {what}")
            return None
        if not NAME_RE.match(name):
            self.add(prefix, name, f"a {what} name of letters, digits and _ starting with a letter")
        if allowed is not None:
            self.unknown_keys(raw, prefix, allowed)
        return raw

    def unknown_keys(self, data: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for k in data:
            if k not in allowed:
                self.add(f"{prefix}.{k}" if prefix else k, "an unknown key", "one of " + ", ".join(sorted(allowed)))

    def string(self, data: Mapping[str, Any], key: str, prefix: str, default: str | None = None,
               pattern: re.Pattern[str] | None = None, what: str = "a string") -> str:
        full = f"{prefix}.{key}"
        value = data.get(key, default)
        if value is None:
            self.add(full, "nothing", what + " (required)")
            return ""
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            self.add(full, value, what)
            return value if isinstance(value, str) else ""
        return value

    def number(self, data: Mapping[str, Any], key: str, prefix: str, default: float | None = None,
               low: float = -math.inf, high: float = math.inf, low_exclusive: bool = False) -> float:
        full = f"{prefix}.{key}"
        value = data.get(key, default)
        if value is None:
            self.add(full, "nothing", "a number (required)")
            return math.nan
        if not is_finite_number(value):
            self.add(full, value, "a finite number")
            return math.nan
        if value < low or value > high or (low_exclusive and value == low):
            bounds = [f"> {low}" if low_exclusive else f">= {low}"] if low > -math.inf else []
            bounds += [f"<= {high}"] if high < math.inf else []
            self.add(full, value, "a number " + " and ".join(bounds))
        return float(value)

    def integer(self, data: Mapping[str, Any], key: str, prefix: str, low: int, high: int | None,
                default: int | None = None) -> int:
        """An integer in ``[low, high]`` (``high`` None: no upper bound); ``low`` after reporting a problem."""
        full = f"{prefix}.{key}"
        value = data.get(key, default)
        expected = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        if value is None:
            self.add(full, "nothing", f"{expected} (required)")
            return low
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            self.add(full, value, expected)
            return low
        return value

    def choice(self, data: Mapping[str, Any], key: str, prefix: str, options: list[str],
               default: str | None = None) -> str | None:
        full = f"{prefix}.{key}"
        value = data.get(key, default)
        if value is None:
            self.add(full, "nothing", "one of " + ", ".join(options) + " (required)")
            return None
        if value not in options:
            self.add(full, value, "one of " + ", ".join(options))
            return None
        return str(value)

    def range(self, data: Mapping[str, Any], key: str, prefix: str, required: bool) -> Range | None:
        full = f"{prefix}.{key}"
        value = data.get(key)
        if value is None:
            if required:
                self.add(full, "nothing", "[low, high] (required)")
            return None
        if (not isinstance(value, list) or len(value) != 2
                or not all(is_finite_number(v) for v in value)):
            self.add(full, value, "[low, high] with two finite numbers")
            return None
        if not value[0] < value[1]:
            self.add(full, value, "[low, high] with low < high")
            return None
        return Range(float(value[0]), float(value[1]))


def _show(value: object) -> str:
    if isinstance(value, str) and value in ("nothing", "an unknown key"):
        return value
    return show(value)


class Described(str):
    """A "got" text that describes what was found (shown as is, not quoted like a string value)."""

    __slots__ = ()


def is_finite_number(value: object) -> bool:
    """True for an int or float (not a bool) that is finite as a float (an int too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def show(value: object) -> str:
    """A value as it appears after "got" in an error line: ``repr``, shortened; huge integers by their size."""
    if isinstance(value, Described):
        return brief(value)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        try:
            return f"an integer of {len(str(abs(value)))} digits"
        except ValueError:  # longer than Python converts to text
            return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        return shorten(value)
    except ValueError:  # e.g. a container holding an integer too long for str()
        return f"a {type(value).__name__} that cannot be shown"


def brief(text: object, limit: int = MAX_REASON_CHARS) -> str:
    """An exception's text (or any text) cut to ``limit`` characters for an error line."""
    try:
        s = str(text)
    except ValueError:
        s = type(text).__name__
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + f"… ({len(s)} chars)"
