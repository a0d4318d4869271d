"""``linetwin fit`` from an InfluxDB historian (a real influxd 1.x): the same bench batches as in SQLite, read back
through the InfluxDB store, give a set whose intervals hold the plant's true values."""

from __future__ import annotations

import json

import pytest

from linetwin_cli.main import main
from process_models.parameter_sets import ParameterSetStore
from tests.linetwin_cli.fit_helpers import DELAY_ARGS, ESTIMATED, PILOT, influx_config, record, true_values
from tests.twin_server.historian.influxd import INFLUXD, SKIP_REASON, Influxd
from twin_server.historian.influx_store import InfluxStore
from twin_server.historian.settings import InfluxSettings

pytestmark = pytest.mark.xdist_group("cli_fit")


@pytest.fixture
def influxd(tmp_path):
    if INFLUXD is None:
        pytest.skip(SKIP_REASON)
    server = Influxd(tmp_path / "influxd")
    server.start()
    yield server
    server.stop()


def test_fit_reads_batches_from_influxdb(influxd, tmp_path, capsys):
    from controllers.crystallization.control_options import plan_declaration
    from twin_server.config import load_line_config

    data = tmp_path / "data"
    store = InfluxStore(InfluxSettings(url=influxd.url, database="fit_test"), data / "history", 10_000_000)
    try:
        ids = record(store)
        assert store.buffer.samples == 0      # everything reached InfluxDB, nothing waits in the forward buffer
    finally:
        store.close()
    config = influx_config(tmp_path, influxd.url, "fit_test")
    code = main(["fit", str(config), "--unit", "crystallizer", "--from", "2026-12-01T00:00:00Z", "--to",
                 "2026-12-02T00:00:00Z", "--estimate", *ESTIMATED, "--method", "ml", "--no-profile", "--no-input-noise",
                 *DELAY_ARGS, "--data-dir", str(data), "--out", str(tmp_path / "report")])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads((tmp_path / "report" / "fit_report.json").read_text())
    assert [b["id"] for b in report["batches"]] == ids
    unit = load_line_config(PILOT).unit("crystallizer")
    _, declaration = plan_declaration(unit.model, unit.control, "c", {t.name for t in unit.tags})
    truth = true_values(declaration.parameter_values())
    for name in ESTIMATED:
        lo, hi = report["estimates"][name]["linearised_95"]
        assert lo <= truth[name] <= hi, (name, truth[name], report["estimates"][name])
    set_id = out.strip().splitlines()[-1].removeprefix("parameter set ")
    assert ParameterSetStore(data / "parameter_sets").get(set_id).batch_ids == tuple(ids)
