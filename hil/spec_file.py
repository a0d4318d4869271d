"""The HIL bench's own files — scenarios (:mod:`hil.scenario`) and campaigns (:mod:`hil.campaign.spec`) — read and
checked alike.

Both report through the issue collector of every linetwin config (:class:`plc_adapters.config_issues.IssueCollector`),
so a problem reads as the twin's config errors do, ``FILE: KEY: got …; expected …``, and a file error lists every
problem at once (:class:`SpecFileError`, ``errors``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.line_unit import LineUnit, UnknownUnitError, read_line_unit
from plc_adapters.config_issues import ConfigError, IssueCollector

_NOT_EMPTY = re.compile(r".")


class SpecFileError(ValueError):
    """A bench file is invalid; ``errors`` lists every problem (``FILE: KEY: got …; expected …``)."""

    what = "file"
    """What the file is, for the message (``invalid scenario``)."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = tuple(errors)
        super().__init__(f"invalid {self.what}:\n  " + "\n  ".join(errors))


def read_spec_file(path: Path, error: type[SpecFileError]) -> dict[str, Any]:
    """The TOML of ``path``; ``error`` naming the file when it cannot be read or is not TOML."""
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise error([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise error([f"{path}: TOML syntax: {exc}"]) from None


@dataclass(frozen=True)
class ScenarioHeader:
    """The ``[scenario]`` keys every bench scenario has (crystallizer batches, pooling runs), checked: ``table`` the
    ``[scenario]`` table itself (for the kind's own keys), ``line_path`` resolved against the scenario's folder,
    ``line_unit`` the unit as the bench reads it (None after a problem was reported), speed (plant s per wall s),
    seed, PLC step (plant s)."""

    table: Mapping[str, Any]
    name: str
    description: str
    line_path: Path
    unit: str
    strategy: str
    speed: float
    seed: int
    plant_step_s: float
    line_unit: LineUnit | None


class SpecChecks(IssueCollector):
    """The issue collector of one bench file, with the checks scenarios and campaigns share."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path

    @property
    def errors(self) -> list[str]:
        """Every problem so far, as its error line."""
        return [str(issue) for issue in self.issues]

    def text(self, data: Mapping[str, Any], key: str, prefix: str) -> str:
        """A required non-empty string (``""`` after reporting a problem)."""
        value = self.string(data, key, prefix, pattern=_NOT_EMPTY, what="a non-empty string")
        return value if _NOT_EMPTY.match(value) else ""

    def description(self, data: Mapping[str, Any], prefix: str) -> str:
        """The optional ``description`` (``""`` when missing or not a string)."""
        value = self.string(data, "description", prefix, default="")
        return value if isinstance(data.get("description", ""), str) else ""

    def scenario_header(self, data: Mapping[str, Any], sections: Sequence[str], keys: Sequence[str],
                        strategies: Sequence[str], default_speed: float) -> ScenarioHeader:
        """The file's sections (``sections`` known), and of its ``[scenario]`` table (``keys`` known) the keys every
        scenario has: ``name``, ``line`` and ``unit`` (required), ``description``, ``strategy`` (one of
        ``strategies``), ``speed`` (> 0, default ``default_speed``), ``seed`` (>= 0, default 0) and
        ``plant_step_s`` (> 0, default 1 s); the line's unit read when ``line`` and ``unit`` are given."""
        self.unknown_keys(data, "", set(sections))
        s = self.table(data, "scenario")
        self.unknown_keys(s, "scenario", set(keys))
        name = self.text(s, "name", "scenario")
        description = self.description(s, "scenario")
        line_value = self.text(s, "line", "scenario")
        unit = self.text(s, "unit", "scenario")
        strategy = self.choice(s, "strategy", "scenario", list(strategies)) or ""
        speed = self.number(s, "speed", "scenario", default_speed, low=0.0, low_exclusive=True)
        seed = self.integer(s, "seed", "scenario", 0, None, default=0)
        plant_step = self.number(s, "plant_step_s", "scenario", 1.0, low=0.0, low_exclusive=True)
        line_path = (self.path.parent / line_value).resolve() if line_value else self.path.parent
        line_unit = self.line_unit(line_path, unit) if line_value and unit else None
        return ScenarioHeader(s, name, description, line_path, unit, strategy, speed, seed, plant_step, line_unit)

    def line_unit(self, line_path: Path, unit: str) -> LineUnit | None:
        """The scenario's unit as the bench reads it (:mod:`hil.line_unit`); ``None`` after reporting a problem."""
        try:
            return read_line_unit(line_path, unit)
        except OSError as exc:
            # the file's name as "got" (a long path would be shortened there), the full path in what was expected
            self.add("scenario.line", line_path.name, f"a readable line config at {line_path} "
                     f"({exc.strerror or exc})")
        except tomllib.TOMLDecodeError as exc:
            self.add("scenario.line", line_path.name, f"a valid TOML line config at {line_path} ({exc})")
        except UnknownUnitError as exc:
            self.add("scenario.unit", unit, f"a unit of {line_path.name} ({', '.join(exc.units) or 'none'})")
        except ConfigError as exc:
            self.add("scenario.line", str(line_path),
                     f"a line config whose unit '{unit}' reads (" + "; ".join(map(str, exc.issues)) + ")")
        return None

    def raise_if_any(self, error: type[SpecFileError]) -> None:
        if self.issues:
            raise error(self.errors)
