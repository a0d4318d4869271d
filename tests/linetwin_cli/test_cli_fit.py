"""``linetwin fit`` and ``linetwin params`` on a real historian holding two bench batches of a crystallizer whose true
kinetics are known: the true values inside the fitted 95 % intervals, a parameter the batches cannot determine
refused by name, bad input refused in one line, the parameter sets listed, shown, diffed, exported and audited."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from linetwin_cli.main import main
from process_models.parameter_sets import ParameterSetStore
from tests.linetwin_cli.fit_helpers import DELAY_ARGS, ESTIMATED, PILOT, record, true_values
from twin_server.historian.sqlite_store import SqliteStore

pytestmark = pytest.mark.xdist_group("cli_fit")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A line data dir whose SQLite history holds two stepped batches (seeds 1, 2) of the mismatched plant."""
    data = tmp_path_factory.mktemp("fit_data")
    store = SqliteStore(data / "history")
    try:
        ids = record(store)
    finally:
        store.close()
    return data, ids


@pytest.fixture(scope="module")
def nominal() -> dict[str, float]:
    from controllers.crystallization.control_options import plan_declaration
    from twin_server.config import load_line_config

    unit = load_line_config(PILOT).unit("crystallizer")
    _, declaration = plan_declaration(unit.model, unit.control, "c", {t.name for t in unit.tags})
    return declaration.parameter_values()


def fit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["fit", str(PILOT), "--unit", "crystallizer", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_maximum_likelihood_recovers_the_true_parameters_with_profile_intervals(recorded, nominal, capsys, tmp_path):
    data, ids = recorded
    code, out, err = fit(capsys, "--batch", *ids, "--estimate", *ESTIMATED, "--method", "ml", *DELAY_ARGS,
                         "--data-dir", str(data), "--out", str(tmp_path / "report"))
    assert code == 0, err
    set_id = out.strip().splitlines()[-1].removeprefix("parameter set ")
    report = json.loads((tmp_path / "report" / "fit_report.json").read_text())
    truth = true_values(nominal)
    for name in ESTIMATED:
        estimate = report["estimates"][name]
        lo, hi = estimate["linearised_95"]
        assert lo <= truth[name] <= hi, (name, truth[name], estimate)
        p_lo, p_hi = estimate["profile_95"]
        assert p_lo < estimate["value"] < p_hi and p_lo <= truth[name] <= p_hi, (name, truth[name], estimate)
        assert estimate["parent_value"] == pytest.approx(nominal[name])
        # the read-back jacket temperature's noise is in the covariance (errors in variables), a small share here
        # (the 60 s window means average 60 samples of 0.02 degC noise)
        total, measured, inputs = (estimate[k] for k in ("standard_error", "standard_error_measurements",
                                                         "standard_error_inputs"))
        assert 0 < inputs < measured < total and total == pytest.approx(math.hypot(measured, inputs), rel=1e-9)
    assert report["identifiability"]["not_identifiable"] == {}
    assert set(report["identifiability"]["ranking"]) == set(ESTIMATED)
    # the ML variance model finds the plant's sensor noise (0.02 degC, 1 um; hil/plants/crystallizer_physics.py)
    assert report["variance_parameters"]["temperature"] == pytest.approx(0.02, rel=0.15)
    assert report["variance_parameters"]["mean_chord_length"] == pytest.approx(1e-6, rel=0.15)
    assert {r["n"] > 100 for r in report["residuals"].values()} == {True}  # two 1 h batches, 60 s windows: ~120
    assert sorted(p.name for p in (tmp_path / "report").glob("fit_*.png")) == [
        "fit_chord_count_rate.png", "fit_mean_chord_length.png", "fit_solute_concentration.png",
        "fit_temperature.png"]
    assert "profile likelihood of growth_rate_constant" in err and "NOT IDENTIFIABLE" not in out
    assert "propagating the noise of the measured input(s) jacket_temperature" in err and "(errors in variables)" in out

    store = ParameterSetStore(data / "parameter_sets")
    fitted = store.get(set_id)
    parent = store.get(fitted.parent)
    assert parent.names == () and parent.report["kind"] == "nominal"
    assert fitted.names == ESTIMATED and fitted.batch_ids == tuple(ids) and fitted.declaration_hash == \
        parent.declaration_hash
    assert fitted.values["solubility_coefficient_1"] == parent.values["solubility_coefficient_1"]  # not estimated
    assert fitted.data_window[0].startswith("2026-12-01T08:00:00")

    # params: list, show, diff, export
    assert main(["params", "list", str(PILOT), "--data-dir", str(data)]) == 0
    listed = capsys.readouterr().out
    assert set_id in listed and parent.id in listed
    assert main(["params", "show", str(PILOT), set_id[:6], "--data-dir", str(data)]) == 0
    shown = capsys.readouterr().out
    assert f"parameter set {set_id}" in shown and "*growth_rate_constant" in shown
    assert main(["params", "diff", str(PILOT), parent.id, set_id, "--data-dir", str(data)]) == 0
    diff = capsys.readouterr().out
    assert "growth_rate_constant" in diff and "solubility_coefficient_1" not in diff
    assert main(["params", "export", str(PILOT), set_id, "--output", str(tmp_path / "set.json"),
                 "--data-dir", str(data)]) == 0
    assert json.loads((tmp_path / "set.json").read_text())["id"] == set_id

    # the fit's puts are in the audit trail, with the set ids
    assert main(["audit", "export", "--config", str(PILOT), "--data-dir", str(data)]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    puts = [e["new_value"]["id"] for e in entries if e["action"] == "parameter_set_put"]
    assert parent.id in puts and set_id in puts


def test_a_parameter_the_batches_cannot_determine_is_named_and_nothing_is_stored(recorded, capsys, tmp_path):
    data, ids = recorded
    before = ParameterSetStore(data / "parameter_sets").ids()
    code, out, err = fit(capsys, "--batch", ids[0], "--estimate", "growth_rate_constant",
                         "homogeneous_nucleation_prefactor", "--no-profile", *DELAY_ARGS, "--data-dir", str(data),
                         "--out", str(tmp_path / "report"))
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert "cannot identify homogeneous_nucleation_prefactor" in line and "no parameter set stored" in line
    assert "Traceback" not in err
    assert "NOT IDENTIFIABLE" in out
    report = json.loads((tmp_path / "report" / "fit_report.json").read_text())
    assert list(report["identifiability"]["not_identifiable"]) == ["homogeneous_nucleation_prefactor"]
    assert ParameterSetStore(data / "parameter_sets").ids() == before


@pytest.mark.parametrize(("args", "expected"), [
    (["--unit", "reactor", "--batch", "2026", "--estimate", "growth_rate_constant"], "--unit reactor: the line"),
    (["--unit", "crystallizer", "--batch", "2026", "--estimate", "growth_speed"], "--estimate: got ['growth_speed']"),
    (["--unit", "crystallizer", "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-02T00:00:00Z", "--estimate",
      "growth_rate_constant"], "no batch of unit 'crystallizer' started in that range"),
    (["--unit", "crystallizer", "--batch", "1999-01-01", "--estimate", "growth_rate_constant"],
     "--batch 1999-01-01: no recorded batch with that id"),
    (["--unit", "crystallizer", "--batch", "2026-12-01", "--estimate", "growth_rate_constant"],
     "--batch 2026-12-01: matches 2 batches"),
    (["--unit", "crystallizer", "--batch", "2026", "--from", "1d", "--estimate", "growth_rate_constant"],
     "--batch and --from: expected exactly one"),
    (["--unit", "crystallizer", "--batch", "2026-12-01T08", "--estimate", "growth_rate_constant", "--delay",
      "jacket_temperature_setpoint=3"], "--delay: ['jacket_temperature_setpoint'] are not measured tags"),
    (["--unit", "crystallizer", "--batch", "2026-12-01T08", "--estimate", "growth_rate_constant",
      "--variance-model", "temperature=relative"], "--variance-model: applies to --method ml only"),
    (["--unit", "feed_tank", "--batch", "2026", "--estimate", "growth_rate_constant"],
     "--unit feed_tank: the unit has no [units.feed_tank.control] table"),
])
def test_bad_input_is_one_line_exit_2_and_stores_nothing(recorded, capsys, args, expected):
    data, _ = recorded
    before = ParameterSetStore(data / "parameter_sets").ids()
    code = main(["fit", str(PILOT), *args, "--data-dir", str(data)])
    err = capsys.readouterr().err
    refusal = [line for line in err.splitlines() if not line.startswith("fit: ")]
    assert code == 2 and len(refusal) == 1 and expected in refusal[0], err
    assert ParameterSetStore(data / "parameter_sets").ids() == before


def test_no_history_is_refused(capsys, tmp_path):
    code = main(["fit", str(PILOT), "--unit", "crystallizer", "--from", "1d", "--estimate", "growth_rate_constant",
                 "--data-dir", str(tmp_path / "empty")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "no history at" in err[-1]


def test_params_refuses_a_tampered_set_and_an_unknown_id(recorded, capsys, tmp_path):
    from tests.process_models.test_parameter_sets import fitted

    store = ParameterSetStore(tmp_path / "parameter_sets")
    set_id = store.put(fitted())
    path = tmp_path / "parameter_sets" / f"{set_id}.json"
    raw = json.loads(path.read_text())
    raw["values"]["growth_rate_constant"] *= 2
    path.write_text(json.dumps(raw))
    assert main(["params", "show", str(PILOT), set_id, "--data-dir", str(tmp_path)]) == 1
    assert "was altered" in capsys.readouterr().err
    assert main(["params", "show", str(PILOT), "abcdef", "--data-dir", str(tmp_path)]) == 2
    assert "not in the store" in capsys.readouterr().err


def test_a_parent_for_another_declaration_or_unknown_is_refused(recorded, capsys, tmp_path):
    from tests.process_models.test_parameter_sets import fitted

    data, ids = recorded
    other = ParameterSetStore(data / "parameter_sets").put(fitted())         # another [model] table's set
    for parent, expected in ((other, "expected one of unit 'crystallizer' for its current declaration"),
                             ("0000ffff", "--parent: parameter set 0000ffff: not in the store")):
        before = ParameterSetStore(data / "parameter_sets").ids()
        code, _out, err = fit(capsys, "--batch", ids[0], "--estimate", "growth_rate_constant", "--no-profile",
                              "--parent", parent, "--data-dir", str(data), "--out", str(tmp_path / "r"))
        assert code == 2 and expected in err.strip().splitlines()[-1], err
        assert ParameterSetStore(data / "parameter_sets").ids() == before


def test_the_default_parent_is_the_deployed_set_when_it_fits_the_declaration(recorded, capsys, tmp_path):
    from twin_server.parameter_deployment import ParameterDeployment, deployment_file

    data, ids = recorded
    store = ParameterSetStore(tmp_path / "parameter_sets")
    common = ("--batch", ids[0], "--estimate", "growth_rate_constant", "--no-profile", "--no-input-noise",
              "--data-dir", str(tmp_path))
    (tmp_path / "history").symlink_to(data / "history")    # the recorded batches; sets and deployments go to tmp
    code, out, err = fit(capsys, *common, "--out", str(tmp_path / "r1"))
    assert code == 0, err
    first = store.get(out.strip().splitlines()[-1].removeprefix("parameter set "))
    nominal = store.get(first.parent)
    assert nominal.report["kind"] == "nominal"                  # no deployment yet: the nominal set
    deployment = ParameterDeployment("crystallizer", first.declaration_hash, nominal, store,
                                     deployment_file(store.directory, "crystallizer"))
    deployment.load()
    deployment.request_apply(first.id, "test", batch_running=False)    # as ApplyParameterSet with no batch running
    code, out, err = fit(capsys, *common, "--out", str(tmp_path / "r2"))
    assert code == 0, err
    second = store.get(out.strip().splitlines()[-1].removeprefix("parameter set "))
    assert second.parent == first.id
    report = json.loads((tmp_path / "r2" / "fit_report.json").read_text())
    assert report["estimates"]["growth_rate_constant"]["parent_value"] == first.values["growth_rate_constant"]
