"""Fixtures of the historian tests: a real influxd per test (skipped, with the reason, only if not installed)."""

from __future__ import annotations

import pytest

from tests.twin_server.historian.influxd import INFLUXD, SKIP_REASON, Influxd


@pytest.fixture
def influxd(tmp_path):
    if INFLUXD is None:
        pytest.skip(SKIP_REASON)
    server = Influxd(tmp_path / "influxd")
    server.start()
    yield server
    server.stop()
