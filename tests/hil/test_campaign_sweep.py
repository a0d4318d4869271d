"""Parameter sweeps of a simulation case on Dask (issue 18 item 7): a campaign file whose base is a case of
``linetwin simulate`` runs each sampled point once, on a real ``dask scheduler`` + two ``dask worker`` processes
on loopback (tests/conftest.py's ``dask_cluster``) and on the embedded LocalCluster through the CLI, with the
campaign core's keys, resume and failure isolation; bad sweep files fail in one line naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.campaign.runner import run_campaign
from hil.campaign.spec import load_campaign
from linetwin_cli.main import main
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.dask, pytest.mark.timeout(240)]

CASE = REPO_ROOT / "examples" / "cases" / "mixing_tank.toml"


def _sweep_file(tmp_path: Path, body: str, name: str = "feed") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[campaign]\nname = "{name}"\ncase = "{CASE}"\n' + body)
    return path


FEED = """plants = 4
sampling = "lhs"
seed = 2

[fixed]
"case.until_s" = 600

[dimensions.feed]
target = "inputs.inlet_flow"
distribution = "uniform"
low = 0.0005
high = 0.0012
"""


def test_a_case_sweep_runs_each_point_once_on_a_dask_scheduler(tmp_path: Path, dask_cluster: str) -> None:
    campaign = load_campaign(_sweep_file(tmp_path, FEED))
    assert campaign.strategies == ("simulate",) and campaign.scenario is None
    out = tmp_path / "out"
    first = run_campaign(campaign, out, scheduler=dask_cluster, progress=None)
    assert (first.total, first.submitted, first.failed) == (4, 4, 0)
    rows = sorted(first.rows, key=lambda r: r["inputs.inlet_flow"])
    assert len({r["inputs.inlet_flow"] for r in rows}) == 4
    volumes = [r["final.liquid_volume"] for r in rows]
    assert volumes == sorted(volumes) and volumes[0] < volumes[-1], "more feed, more liquid after 10 min"
    assert all(r["min.outlet_flow"] <= r["final.outlet_flow"] <= r["max.outlet_flow"] for r in rows)
    again = run_campaign(campaign, out, scheduler=dask_cluster, progress=None)
    assert (again.skipped, again.submitted) == (4, 0), "keyed by content: nothing recomputed"


def test_case_sweep_cli_on_a_local_cluster_isolates_a_refused_point(tmp_path: Path, capsys) -> None:
    # a negative initial level is outside the state's bounds: that point's run fails naming the key, the others run
    body = FEED.replace("plants = 4", "plants = 2") + """
[dimensions.level]
target = "initial_state.level"
distribution = "choice"
values = [1.0, -1.0]
"""
    out = tmp_path / "out"
    assert main(["campaign", str(_sweep_file(tmp_path, body)), "--workers", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "[2/2]" in captured.err and "1 failed" in captured.out
    import pandas as pd

    table = pd.read_parquet(out / "campaign.parquet")
    failed = table[table["status"] == "failed"]
    assert list(failed["initial_state.level"]) == [-1.0] and "'level'" in failed["error"].iloc[0]
    assert table[table["status"] == "ok"]["final.liquid_volume"].notna().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 2 and summary["failed"] == 1 and "final.outlet_flow" in summary["outputs"]
    assert (out / "summary.png").stat().st_size > 1000


@pytest.mark.parametrize(("body", "key"), [
    ('strategies = ["mpc"]\n' + FEED, "campaign.strategies"),
    (FEED.replace('"inputs.inlet_flow"', '"plant.growth_rate_factor"'), "dimensions.feed.target"),
    (FEED.replace('"inputs.inlet_flow"', '"inputs.no_such_input"'), "dimensions"),
    (FEED.replace('"case.until_s" = 600', '"case.until_s" = -5'), "dimensions"),
])
def test_a_bad_sweep_file_fails_in_one_line_naming_file_and_key(tmp_path: Path, capsys, body: str,
                                                                key: str) -> None:
    path = _sweep_file(tmp_path, body)
    assert main(["campaign", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"{path}: {key}") and "expected" in err, err
    assert not (tmp_path / "out").exists()
