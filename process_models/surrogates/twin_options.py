"""The ``[units.<unit>.surrogate]`` table of a line config, validated without loading the surrogate (no torch).

::

    [units.crystallizer.surrogate]
    path = "surrogates/crystallizer"   # artifact directory (`linetwin surrogate train`), relative to the
                                       # working directory or absolute
    disagreement_threshold = 0.02      # drift when surrogate vs physics NRMSE over the window exceeds this
    window = 10                        # comparisons (estimator periods) in the disagreement window
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SurrogateOptions", "parse_surrogate_options"]

_KEYS = ("path", "disagreement_threshold", "window")


@dataclass(frozen=True)
class SurrogateOptions:
    path: Path
    disagreement_threshold: float = 0.02
    window: int = 10


def parse_surrogate_options(raw: Mapping[str, Any], prefix: str
                            ) -> tuple[SurrogateOptions | None, list[tuple[str, object, str]]]:
    """Options and every problem as (key, got, expected)."""
    issues: list[tuple[str, object, str]] = []
    for key in raw:
        if key not in _KEYS:
            issues.append((f"{prefix}.{key}", "an unknown key", "one of " + ", ".join(_KEYS)))
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        issues.append((f"{prefix}.path", path if path is not None else "nothing",
                       "the directory of a surrogate artifact (`linetwin surrogate train`)"))
    else:
        meta = Path(path) / "surrogate.json"
        try:
            kind = json.loads(meta.read_text()).get("kind")
        except (OSError, ValueError):
            issues.append((f"{prefix}.path", path, "a surrogate artifact directory with a readable surrogate.json"))
        else:
            if kind != "state_transition":
                issues.append((f"{prefix}.path", path, f"a state_transition surrogate (this one is {kind!r})"))
    threshold = raw.get("disagreement_threshold", 0.02)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
            math.isfinite(threshold) and threshold > 0):
        issues.append((f"{prefix}.disagreement_threshold", threshold, "a number > 0 (fraction, e.g. 0.02)"))
        threshold = 0.02
    window = raw.get("window", 10)
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 10000:
        issues.append((f"{prefix}.window", window, "an integer in [1, 10000]"))
        window = 10
    if issues or not isinstance(path, str):
        return None, issues
    return SurrogateOptions(Path(path), float(threshold), int(window)), issues
