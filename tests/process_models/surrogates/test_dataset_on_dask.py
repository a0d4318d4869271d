"""Surrogate training data on Dask (issue 18 item 7): the dataset simulated on a real ``dask scheduler`` + two
``dask worker`` processes on loopback (tests/conftest.py's ``dask_cluster``) and on an embedded LocalCluster, through
the Dask client campaigns use, equals the one simulated in this process; ``linetwin surrogate train --scheduler``
writes an artifact whose data came from that cluster, with its progress bar; a scheduler that does not answer is one
error line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.campaign.cluster import dask_client
from linetwin_cli.main import main
from process_models.surrogates.dataset import generate_dataset
from tests.ports import free_tcp_port

pytestmark = [pytest.mark.dask, pytest.mark.timeout(300)]

CASE = Path(__file__).resolve().parents[3] / "examples" / "cases" / "crystallizer_kdp_moments.toml"


def test_training_data_on_a_dask_scheduler_equals_the_local_data(moments_source, moments_design, moments_dataset,
                                                                  dask_cluster, capsys):
    with dask_client(dask_cluster) as client:
        on_dask = generate_dataset(moments_source, moments_design, 10, progress=True,
                                   executor=client.get_executor(pure=False))
        models_built = client.run(_models_built_here)  # per worker: did it simulate?
    assert on_dask.hash == moments_dataset.hash, "same design, same runs, wherever they ran"
    assert len(models_built) == 2 and sum(models_built.values()) >= 1, "the cluster's workers simulated the runs"
    assert "10/10 runs" in capsys.readouterr().err, "progress shown as the chunks come back"


def test_training_data_on_a_local_cluster_equals_the_local_data(moments_source, moments_design, moments_dataset):
    with dask_client(None, workers=2) as client:
        on_dask = generate_dataset(moments_source, moments_design, 10, progress=False,
                                   executor=client.get_executor(pure=False))
    assert on_dask.hash == moments_dataset.hash


def test_surrogate_train_cli_simulates_on_the_scheduler(tmp_path, dask_cluster, capsys):
    out = tmp_path / "sur"
    assert main(["surrogate", "train", str(CASE), "--samples", "6", "--epochs", "2", "--hidden", "8",
                 "--scheduler", dask_cluster, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "6/6 runs" in captured.err
    dataset = json.loads((out / "dataset" / "dataset.json").read_text())
    assert dataset["sample_count"] == 6 and (out / "report.png").is_file()


def test_surrogate_train_cli_refuses_a_bad_or_silent_scheduler(tmp_path, capsys):
    assert main(["surrogate", "train", str(CASE), "--samples", "6", "--scheduler", "127.0.0.1:8786",
                 "--out", str(tmp_path / "a")]) == 2
    assert "--scheduler: got '127.0.0.1:8786'; expected" in capsys.readouterr().err
    assert main(["surrogate", "train", str(CASE), "--samples", "6", "--workers", "2", "--scheduler",
                 "tcp://127.0.0.1:1", "--out", str(tmp_path / "b")]) == 2
    assert "--workers" in capsys.readouterr().err
    silent = f"tcp://127.0.0.1:{free_tcp_port()}"
    import dask.config

    with dask.config.set({"distributed.comm.timeouts.connect": "3s"}):  # dask's default 30 s proves nothing more
        assert main(["surrogate", "train", str(CASE), "--samples", "6", "--scheduler", silent,
                     "--out", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --scheduler {silent}: cannot reach the scheduler") and len(err.splitlines()) == 1
    assert not (tmp_path / "c").exists()


def _models_built_here() -> int:
    from process_models.surrogates.dataset import _model_for_key

    return _model_for_key.cache_info().currsize
