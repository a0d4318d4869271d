"""Content keys of campaign runs: a re-run of a campaign recomputes only what changed (issue 18 item 8).

A run's key is the SHA-256 of (the base scenario file's text, the line file's text, the sampled point, the
strategy's name and what it depends on (its ``key_content()``: e.g. the control options it adds, or the fit's
settings and the code of the packages it runs beyond the loop's: :mod:`hil.campaign.strategies`), the plant's noise
seed, the code version); a case sweep's run, of (the case file's text, the point, the code version). The code version
is the SHA-256 of every ``*.py`` file of the packages a run executes (``hil``, ``controllers``, ``process_models``,
``plc_adapters``; :func:`code_version` of other packages for a strategy's key content), by relative path and
content: any change to the loop's code gives every run a new key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from hil.scenario import Scenario

RUN_PACKAGES = ("hil", "controllers", "process_models", "plc_adapters")


@cache
def code_version(packages: tuple[str, ...] = RUN_PACKAGES) -> str:
    """SHA-256 (hex, 16 characters) of the sources of ``packages`` (default: the run packages)."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run_key(base: Scenario, point: Mapping[str, Any], strategy: str, seed: int,
            strategy_content: Mapping[str, Any] | None = None) -> str:
    """The content key (hex, 24 characters) of one run (see the module docstring); ``strategy_content``: the
    strategy's ``key_content()``."""
    return _key({"scenario": base.path.read_text(), "line": base.line_path.read_text(), "point": dict(point),
                 "strategy": strategy, "strategy_content": dict(strategy_content or {}), "seed": seed,
                 "code": code_version()})


def case_run_key(case_path: Path, point: Mapping[str, Any]) -> str:
    """The content key (hex, 24 characters) of one run of a case sweep (see the module docstring)."""
    return _key({"case": case_path.read_text(), "point": dict(point), "code": code_version()})


def _key(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:24]
