"""Campaigns on Dask (hil/campaign/, linetwin campaign): a tiny campaign on a real ``dask scheduler`` and two
``dask worker`` processes on loopback (the ``dask_cluster`` fixture of tests/conftest.py), resumed after an
interruption; the same on the embedded LocalCluster through the CLI, with a failing run isolated; campaign-file
errors in one line; sampling and content keys.

Batches are 10 minutes of plant time (a few NMPC solves) so the module stays near a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.campaign.points import sample_points
from hil.campaign.runner import campaign_tasks, run_campaign
from hil.campaign.spec import CampaignError, load_campaign
from linetwin_cli.main import main
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.dask, pytest.mark.timeout(240)]

SCENARIO = REPO_ROOT / "examples" / "scenarios" / "nominal_mpc.toml"


def _campaign_file(tmp_path: Path, body: str, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[campaign]\nname = "{name}"\nscenario = "{SCENARIO}"\n' + body)
    return path


TINY = """plants = 2
sampling = "sobol"
seed = 3
strategies = ["linear_cooling", "mpc"]

[fixed]
"scenario.batch_duration_s" = 600
"scenario.target_d43_um" = 165

[dimensions.growth]
target = "plant.growth_rate_factor"
distribution = "uniform"
low = 0.8
high = 1.2
"""


class _Interrupt(Exception):
    pass


def test_campaign_on_a_dask_scheduler_resumes_after_an_interruption(tmp_path: Path, dask_cluster: str) -> None:
    campaign = load_campaign(_campaign_file(tmp_path, TINY))
    out = tmp_path / "out"

    def interrupt(_row: dict) -> None:
        raise _Interrupt

    with pytest.raises(_Interrupt):
        run_campaign(campaign, out, scheduler=dask_cluster, progress=None, on_row=interrupt)
    stored = list((out / "runs").glob("*.json"))
    assert len(stored) == 1, "the interrupted campaign keeps the run it finished"

    second = run_campaign(campaign, out, scheduler=dask_cluster, progress=None)
    assert (second.total, second.skipped, second.submitted, second.failed) == (4, 1, 3, 0)
    by = {(r["plant"], r["strategy"]): r for r in second.rows}
    assert set(by) == {(0, "linear_cooling"), (0, "mpc"), (1, "linear_cooling"), (1, "mpc")}
    for plant in (0, 1):
        mpc, recipe = by[(plant, "mpc")], by[(plant, "linear_cooling")]
        assert mpc["solves"] > 0 and recipe["solves"] == 0
        assert abs(mpc["d43_error_percent"]) < abs(recipe["d43_error_percent"])
    assert by[(0, "mpc")]["plant.growth_rate_factor"] != by[(1, "mpc")]["plant.growth_rate_factor"]

    third = run_campaign(campaign, out, scheduler=dask_cluster, progress=None)
    assert (third.skipped, third.submitted) == (4, 0), "a re-run recomputes nothing"
    assert third.rows == second.rows


def test_campaign_cli_on_a_local_cluster_isolates_a_failing_run(tmp_path: Path, capsys) -> None:
    # seed_std_size_um = 60 breaks the plant's rule mean >= 3 std (150 um): that plant's runs fail, the others run
    body = TINY.replace("""[dimensions.growth]
target = "plant.growth_rate_factor"
distribution = "uniform"
low = 0.8
high = 1.2
""", """[dimensions.seed_spread]
target = "plant.seed_std_size_um"
distribution = "choice"
values = [15, 60]
""")
    path = _campaign_file(tmp_path, body)
    out = tmp_path / "out"
    assert main(["campaign", str(path), "--workers", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "[4/4]" in captured.err and "2 failed" in captured.out
    import pandas as pd

    table = pd.read_parquet(out / "campaign.parquet")
    assert len(table) == 4
    failed = table[table["status"] == "failed"]
    assert set(failed["plant.seed_std_size_um"]) == {60}
    assert all("seed_std_size_um" in e for e in failed["error"])
    ok = table[table["status"] == "ok"]
    assert set(ok["strategy"]) == {"linear_cooling", "mpc"} and ok["final_d43_um"].notna().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 2 and summary["strategies"]["mpc"]["failed"] == 1
    assert "mpc - linear_cooling" in summary["differences"]
    assert (out / "summary.png").stat().st_size > 1000


@pytest.mark.parametrize(("body", "key"), [
    ("plants = 0\nstrategies = [\"mpc\"]\n", "campaign.plants"),
    ("plants = 2\nstrategies = [\"pid\"]\n", "campaign.strategies"),
    ("plants = 2\nstrategies = [\"mpc\"]\n[dimensions.g]\ntarget = \"plant.growth_rate_factor\"\n"
     "distribution = \"uniform\"\nlow = 2\nhigh = 1\n", "dimensions.g.high"),
    ("plants = 2\nstrategies = [\"mpc\"]\n[dimensions.g]\ntarget = \"scenario.speed\"\n"
     "distribution = \"normal\"\nmean = 1\nstd = 1\n", "dimensions.g.target"),
    ("plants = 2\nstrategies = [\"mpc\"]\n[dimensions.g]\ntarget = \"plant.no_such_parameter\"\n"
     "distribution = \"choice\"\nvalues = [1]\n", "dimensions"),
])
def test_a_bad_campaign_file_fails_in_one_line_naming_file_and_key(tmp_path: Path, capsys, body: str,
                                                                    key: str) -> None:
    path = _campaign_file(tmp_path, body)
    assert main(["campaign", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"{path}: {key}") and "expected" in err
    assert not (tmp_path / "out").exists()


def test_sampled_points_follow_their_distributions_and_keys_follow_content(tmp_path: Path) -> None:
    path = _campaign_file(tmp_path, """plants = 64
sampling = "lhs"
seed = 5
strategies = ["linear_cooling", "mpc"]
[dimensions.g]
target = ["plant.growth_rate_factor", "plant.nucleation_rate_factor"]
distribution = "uniform"
low = 0.7
high = 1.4
[dimensions.t]
target = "scenario.target_d43_um"
distribution = "lognormal"
median = 400
sigma = 0.05
[dimensions.s]
target = "scenario.seed"
distribution = "choice"
values = [1, 2]
""")
    campaign = load_campaign(path)
    points = sample_points(campaign)
    assert points == sample_points(campaign), "deterministic for the campaign's seed"
    growth = sorted(p["plant.growth_rate_factor"] for p in points)
    assert all(p["plant.growth_rate_factor"] == p["plant.nucleation_rate_factor"] for p in points)
    # Latin hypercube: exactly one point in each of the 64 equal strata of [0.7, 1.4]
    assert [int((g - 0.7) / 0.7 * 64) for g in growth] == list(range(64))
    assert 380 < sorted(p["scenario.target_d43_um"] for p in points)[32] < 420
    assert {p["scenario.seed"] for p in points} == {1, 2}
    keys = [t.key for t in campaign_tasks(campaign)]
    assert len(set(keys)) == 128, "every (point, strategy) has its own key"
    assert keys == [t.key for t in campaign_tasks(load_campaign(path))], "same content, same keys"
    with pytest.raises(CampaignError):
        load_campaign(tmp_path / "missing.toml")
