"""Validity envelope of a surrogate: the training ranges plus a distance-to-data measure.

Every query point (the surrogate's scaled network inputs, one row per prediction) is checked twice:

* **ranges**: each feature inside the range seen in training, widened by ``margin`` x its span;
* **distance to data**: the Euclidean distance (scaled coordinates) to the nearest of up to ``max_reference``
  training points must not exceed ``threshold``, the ``quantile`` of the same distance for held-out validation
  points (times ``slack``), so a point inside the box but in an empty corner of it is still flagged.

A point is in the envelope only when both hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["EnvelopeVerdict", "ValidityEnvelope", "fit_envelope"]


@dataclass(frozen=True)
class EnvelopeVerdict:
    """Per query point: ``inside`` (both checks), ``in_ranges``, ``distance`` (to nearest training point) and,
    per point, the names of features outside their range."""

    inside: np.ndarray
    in_ranges: np.ndarray
    distance: np.ndarray
    outside_features: tuple[tuple[str, ...], ...]

    @property
    def all_inside(self) -> bool:
        return bool(np.all(self.inside))


@dataclass
class ValidityEnvelope:
    """Feature ranges, reference points and the distance threshold (scaled coordinates)."""

    feature_names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    reference: np.ndarray
    threshold: float

    def __post_init__(self) -> None:
        self._tree = cKDTree(self.reference) if self.reference.size else None

    def check(self, features: np.ndarray) -> EnvelopeVerdict:
        """Verdict for ``features`` (n, d) or (d,)."""
        f = np.atleast_2d(np.asarray(features, dtype=float))
        if f.shape[1] != self.lower.size:
            raise ValueError(f"envelope: expected {self.lower.size} features {list(self.feature_names)}, "
                             f"got {f.shape[1]}")
        finite = np.all(np.isfinite(f), axis=1)
        low_ok = f >= self.lower
        high_ok = f <= self.upper
        in_ranges = np.all(low_ok & high_ok, axis=1) & finite
        if self._tree is not None:
            dist, _ = self._tree.query(np.where(np.isfinite(f), f, 1e300))
        else:
            dist = np.zeros(f.shape[0])
        inside = in_ranges & (dist <= self.threshold)
        outside = tuple(tuple(self.feature_names[j] for j in np.nonzero(~(low_ok[i] & high_ok[i]))[0])
                        for i in range(f.shape[0]))
        return EnvelopeVerdict(inside, in_ranges, np.asarray(dist, dtype=float), outside)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"envelope_lower": self.lower, "envelope_upper": self.upper, "envelope_reference": self.reference}

    def to_json(self) -> dict[str, Any]:
        return {"feature_names": list(self.feature_names), "threshold": self.threshold,
                "lower": self.lower.tolist(), "upper": self.upper.tolist()}

    @classmethod
    def from_parts(cls, doc: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> ValidityEnvelope:
        return cls(tuple(doc["feature_names"]), np.asarray(arrays["envelope_lower"], dtype=float),
                   np.asarray(arrays["envelope_upper"], dtype=float),
                   np.asarray(arrays["envelope_reference"], dtype=float), float(doc["threshold"]))


def fit_envelope(feature_names: Sequence[str], train: np.ndarray, validation: np.ndarray, *, margin: float = 0.05,
                 quantile: float = 0.99, slack: float = 1.5, max_reference: int = 4000, seed: int = 0
                 ) -> ValidityEnvelope:
    """Envelope of training features ``train`` (n, d), threshold from ``validation`` features (m, d)."""
    train = np.asarray(train, dtype=float)
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    rng = np.random.default_rng(seed)
    ref = train if train.shape[0] <= max_reference else train[rng.choice(train.shape[0], max_reference,
                                                                         replace=False)]
    tree = cKDTree(ref)
    val = np.asarray(validation, dtype=float)
    if val.shape[0]:
        d_val, _ = tree.query(val)
        threshold = float(np.quantile(d_val, quantile)) * slack
    else:
        threshold = float("inf")
    # never tighter than the typical spacing of the training points themselves
    d_train, _ = tree.query(ref, k=2)
    threshold = max(threshold, float(np.quantile(d_train[:, 1], quantile)) * slack)
    return ValidityEnvelope(tuple(feature_names), lo - margin * span, hi + margin * span, ref, threshold)
