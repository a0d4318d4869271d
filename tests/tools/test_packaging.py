"""Packaging (issue 7): the project metadata is read by setuptools without the licence-table deprecation warning."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_pyproject_licence_is_an_spdx_string_and_setuptools_reads_it_without_warnings(monkeypatch):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(REPO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), REPO / "pyproject.toml")
    assert dist.metadata.license_expression == "Apache-2.0"
    licence_warnings = [str(w.message) for w in caught if "license" in str(w.message).lower()]
    assert licence_warnings == []
