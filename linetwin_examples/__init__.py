"""The shipped lines, HIL scenarios and case files, as package data (``importlib.resources``).

The files live in the repository's ``examples/`` (the paths the README and docs name); ``files`` in this package
is a link to that folder, so a checkout, an editable install and a non-editable ``pip install .`` (the wheel
carries real copies, see ``[tool.setuptools.package-data]``) all find them here, never beside the source tree::

    examples_dir()                      # the folder: pilot_line.toml, mixed_line.toml, production_line.toml, …
    example_path("pilot_line.toml")     # one shipped file
    example_path("cases/chromatography_sma_load_wash_elute.toml")

This package holds data only and imports nothing of linetwin, so every layer may use it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["ExampleNotFound", "example_path", "examples_dir"]


class ExampleNotFound(FileNotFoundError):
    """A shipped file that is not in this installation (names the path tried and what is there)."""


def examples_dir() -> Path:
    """The folder of shipped examples (a real directory: linetwin is installed unzipped)."""
    return Path(str(files(__name__) / "files"))


def example_path(relative: str) -> Path:
    """The shipped file ``relative`` (e.g. ``"pilot_line.toml"``, ``"cases/mixing_tank.toml"``); raises
    :class:`ExampleNotFound` naming the path tried and the files of that folder."""
    path = examples_dir() / relative
    if not path.is_file():
        available = sorted(p.name for p in path.parent.glob("*.toml")) if path.parent.is_dir() else []
        raise ExampleNotFound(f"shipped example {relative!r} not found at {path}; available there: {available}")
    return path
