"""A unit's deployment history in the data dir, without a server: what a restarted twin runs, and what it refuses
to run (a set that no longer verifies, a set of another declaration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asyncua import ua

from process_models.parameter_sets import ParameterSet, ParameterSetStore, nominal_parameter_set, utc_timestamp
from twin_server.method_calls import MethodRefused
from twin_server.parameter_deployment import ParameterDeployment, deployed_set_id, deployment_file

DECLARATION = {"kind": "crystallizer", "model": {"resolution": "moments"}}
VALUES = {"growth_rate_constant": 1.0e-7, "solubility_coefficient_0": 0.1}


def deployment(directory: Path) -> ParameterDeployment:
    nominal = nominal_parameter_set("cr", "crystallizer", DECLARATION, VALUES)
    d = ParameterDeployment("cr", nominal.declaration_hash, nominal, ParameterSetStore(directory),
                            deployment_file(directory, "cr"))
    d.load()
    return d


def fitted(d: ParameterDeployment, growth: float, declaration_hash: str | None = None) -> str:
    ps = ParameterSet(unit="cr", model="crystallizer", declaration_hash=declaration_hash or d.declaration_hash,
                      values={**VALUES, "growth_rate_constant": growth}, covariance=None, names=(),
                      parent=d.nominal.id, batch_ids=("b1",), data_window=None, report={}, created=utc_timestamp())
    return d.store.put(ps)


def test_a_reloaded_deployment_runs_the_last_set_and_carries_out_a_pending_switch(tmp_path: Path):
    d = deployment(tmp_path)
    a, b = fitted(d, 1.1e-7), fitted(d, 1.2e-7)
    assert d.request_apply(a, "alice", batch_running=False).deferred is False
    assert d.request_apply(b, "alice", batch_running=True).deferred is True
    assert (d.deployed.id, d.pending_id) == (a, b)
    assert deployed_set_id(tmp_path, "cr") == a
    assert oct(deployment_file(tmp_path, "cr").stat().st_mode & 0o777) == "0o600"

    again = deployment(tmp_path)  # a restart: no batch runs, the pending switch happens now

    assert again.deployed.id == b and again.pending_id == ""
    assert [h.set_id for h in again.history] == [d.nominal.id, a, b]
    assert [h.by for h in again.history[1:]] == ["alice", "alice"]
    assert again.request_rollback("bob", batch_running=False).new_id == a
    assert deployment(tmp_path).deployed.id == a


def test_a_set_that_no_longer_verifies_is_dropped_from_the_history_and_said_so(tmp_path: Path):
    d = deployment(tmp_path)
    a = fitted(d, 1.1e-7)
    d.request_apply(a, "alice", batch_running=False)
    path = tmp_path / f"{a}.json"
    content = json.loads(path.read_text())
    content["values"]["growth_rate_constant"] = 9.9e-7
    path.write_text(json.dumps(content))

    again = deployment(tmp_path)

    assert again.deployed.id == d.nominal.id
    assert any(a in note and "fails its check" in note for note in again.notes)


def test_refusals_change_nothing(tmp_path: Path):
    d = deployment(tmp_path)
    other = fitted(d, 1.1e-7, declaration_hash="e" * 64)
    for set_id, code in ((other, ua.StatusCodes.BadInvalidArgument), ("abcdefabcdefabcd", ua.StatusCodes.BadNotFound),
                         ("nope", ua.StatusCodes.BadInvalidArgument)):
        with pytest.raises(MethodRefused) as exc:
            d.request_apply(set_id, "alice", batch_running=False)
        assert exc.value.code == code
    with pytest.raises(MethodRefused) as exc:
        d.request_rollback("alice", batch_running=False)
    assert exc.value.code == ua.StatusCodes.BadInvalidState
    assert [h.set_id for h in deployment(tmp_path).history] == [d.nominal.id]
    assert not deployment_file(tmp_path, "cr").exists()  # nothing deployed, nothing written
