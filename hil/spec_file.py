"""The HIL bench's own files — scenarios (:mod:`hil.scenario`) and campaigns (:mod:`hil.campaign.spec`) — read and
checked alike.

Both report through the issue collector of every linetwin config (:class:`plc_adapters.config_issues.IssueCollector`),
so a problem reads as the twin's config errors do, ``FILE: KEY: got …; expected …``, and a file error lists every
problem at once (:class:`SpecFileError`, ``errors``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
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
