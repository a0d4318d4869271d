"""Validity envelope: inside the training ranges and near the data, or not."""

from __future__ import annotations

import numpy as np

from process_models.surrogates.envelope import ValidityEnvelope, fit_envelope


def _envelope() -> ValidityEnvelope:
    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, size=(500, 2))
    train = train[np.hypot(train[:, 0] - 0.6, train[:, 1] - 0.6) > 0.35]  # an empty corner inside the box
    validation = rng.uniform(-1, 1, size=(100, 2))
    validation = validation[np.hypot(validation[:, 0] - 0.6, validation[:, 1] - 0.6) > 0.35]
    return fit_envelope(("a", "b"), train, validation)


def test_points_in_the_data_are_inside():
    verdict = _envelope().check(np.array([[0.0, 0.0], [-0.9, 0.9]]))
    assert verdict.all_inside and verdict.outside_features == ((), ())


def test_points_outside_the_ranges_name_the_feature():
    verdict = _envelope().check(np.array([[0.0, 1.5], [np.nan, 0.0]]))
    assert not verdict.inside.any() and not verdict.in_ranges.any()
    assert verdict.outside_features[0] == ("b",)


def test_a_hole_in_the_data_is_outside_although_in_range():
    verdict = _envelope().check(np.array([0.6, 0.6]))
    assert bool(verdict.in_ranges[0]) and not bool(verdict.inside[0])
    assert verdict.distance[0] > _envelope().threshold


def test_envelope_survives_the_artifact_round_trip():
    env = _envelope()
    again = ValidityEnvelope.from_parts(env.to_json(), env.to_arrays())
    points = np.array([[0.0, 0.0], [0.6, 0.6], [2.0, 0.0]])
    assert np.array_equal(env.check(points).inside, again.check(points).inside)
