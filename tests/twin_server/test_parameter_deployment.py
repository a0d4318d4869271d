"""ApplyParameterSet / RollbackParameterSet on a live twin (issue 17 item 3): the crystallizer of the pilot line
behind its virtual PLC (physics plant), the twin on a stepped plant clock (a batch only moves when the test
advances it, so "a batch is running" is a state the test holds), OPC UA clients of each role over loopback.

The control plan (its NMPC takes seconds to build) is built once per process and handed to each twin
(:mod:`tests.twin_server.shared_plans`), as ``serve`` hands its plans to :class:`~twin_server.server.TwinServer`;
StartBatch resets what a batch changes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import Client, ua

from process_models.parameter_sets import ParameterSet, ParameterSetStore, utc_timestamp
from process_models.plant_clock import SteppedClock
from tests.conftest import wait_until
from tests.security_helpers import Credentials, add_user, client_as, line_root
from tests.twin_server.line_fixture import NAMESPACE, PILOT, live_line
from twin_server.audit import AuditEntry
from twin_server.config import load_line_config
from twin_server.security.roles import Role
from twin_server.server import TwinServer

SPEED = 20.0
"""Bench speed: the twin's batch clock is stepped by the tests; the plant only has to keep its tags Good."""
UNIT = "crystallizer"
PREFIX = f"pilot_line.{UNIT}"
ENGINEER = Credentials("engineer", "engineer-test-password")
OPERATOR = Credentials("operator", "operator-test-password")


@dataclasses.dataclass
class Line:
    twin: TwinServer
    clock: SteppedClock
    audit: list[AuditEntry]

    @property
    def loop(self):  # the unit's control loop
        return self.twin.control_loops[UNIT]

    @property
    def nominal(self) -> ParameterSet:
        assert self.loop.parameter_sets is not None
        return self.loop.parameter_sets.deployment.nominal

    @property
    def store(self) -> ParameterSetStore:
        return ParameterSetStore(self.twin.data.parameter_sets)

    def fitted(self, growth_factor: float = 1.3, declaration_hash: str | None = None) -> str:
        """A stored set as a fit would leave it: nominal values with the growth constant and the solubility
        polynomial's constant term changed."""
        n = self.nominal
        values = {**n.values, "growth_rate_constant": n.values["growth_rate_constant"] * growth_factor,
                  "solubility_coefficient_0": n.values["solubility_coefficient_0"] + 0.001}
        ps = ParameterSet(unit=UNIT, model=n.model, declaration_hash=declaration_hash or n.declaration_hash,
                          values=values, covariance=((1e-20,),), names=("growth_rate_constant",), parent=n.id,
                          batch_ids=("batch-1",), data_window=None, report={"kind": "test"},
                          created=utc_timestamp())
        return self.store.put(ps)


@asynccontextmanager
async def deploy_line(data_dir: Path | None = None) -> AsyncIterator[Line]:
    add_user(ENGINEER.user, Role.ENGINEER, ENGINEER.password, data_dir)
    add_user(OPERATOR.user, Role.OPERATOR, OPERATOR.password, data_dir)
    base = load_line_config(PILOT)
    options = {"time_scale": SPEED, "batch_duration_s": 1800.0, "target_d43_um": 300.0}
    units = tuple(dataclasses.replace(u, plant={"plant_model": "physics", "initial_temperature_c": 40.0},
                                      control=options)
                  for u in base.units if u.name == UNIT)
    config = dataclasses.replace(base, units=units, scan_period_s=0.05)
    if data_dir is not None:
        config = dataclasses.replace(config, security=dataclasses.replace(config.security, data_dir=data_dir))
    clock = SteppedClock()
    async with live_line(config, SPEED, data_dir=data_dir, plant_clock=clock) as line:
        audit: list[AuditEntry] = []
        line.twin.audit.sinks.append(audit.append)
        yield Line(line.twin, clock, audit)


async def namespace(client: Client) -> int:
    return await client.get_namespace_index(NAMESPACE)


async def call(client: Client, method: str, *args: ua.Variant) -> None:
    idx = await namespace(client)
    model = client.get_node(ua.NodeId(f"{PREFIX}.model", idx))
    await model.call_method(ua.NodeId(f"{PREFIX}.model.{method}", idx), *args)


async def apply(client: Client, set_id: str) -> None:
    await call(client, "ApplyParameterSet", ua.Variant(set_id, ua.VariantType.String))


async def model_value(client: Client, name: str) -> object:
    return await client.get_node(ua.NodeId(f"{PREFIX}.model.{name}", await namespace(client))).read_value()


async def control_call(client: Client, method: str) -> None:
    idx = await namespace(client)
    control = client.get_node(ua.NodeId(f"{PREFIX}.control", idx))
    await control.call_method(ua.NodeId(f"{PREFIX}.control.{method}", idx))


async def start_batch(line: Line, client: Client) -> None:
    adapter = line.twin.runtime.adapters[UNIT]
    await wait_until(lambda: len(adapter.last_samples) > 0
                     and all(s.quality.is_good for s in adapter.last_samples.values()), what="Good crystallizer tags")
    await control_call(client, "StartBatch")


def calls_of(line: Line, method: str) -> list[AuditEntry]:
    return [e for e in line.audit if e.action == "call" and e.node == f"{PREFIX}.model.{method}"]


async def test_the_unit_starts_on_its_nominal_set_and_an_engineer_applies_and_rolls_back_at_once():
    started = datetime.now(UTC)
    async with deploy_line() as line, client_as(line.twin.endpoint, ENGINEER) as client:
        nominal = line.nominal
        assert await model_value(client, "parameter_set") == nominal.id
        assert await model_value(client, "declaration_hash") == nominal.declaration_hash
        assert nominal.id in line.store  # the nominal set is a stored set like any other
        fitted = line.fitted()

        await apply(client, fitted)  # no batch runs: at once

        assert await model_value(client, "parameter_set") == fitted
        assert await model_value(client, "pending_parameter_set") == ""
        assert line.loop.core.parameter_set_id == fitted
        solubility = line.store.get(fitted).values["solubility_coefficient_0"]
        assert line.loop.core.model_parameters()["solubility_coefficient_0"] == pytest.approx(solubility)
        entry = calls_of(line, "ApplyParameterSet")[-1]
        assert (entry.user, entry.outcome.value, entry.old_value, entry.new_value) == \
            ("engineer", "accepted", nominal.id, fitted)

        await call(client, "RollbackParameterSet")

        assert await model_value(client, "parameter_set") == nominal.id
        assert line.loop.core.model_parameters()["solubility_coefficient_0"] == \
            pytest.approx(nominal.values["solubility_coefficient_0"])
        entry = calls_of(line, "RollbackParameterSet")[-1]
        assert (entry.old_value, entry.new_value) == (fitted, nominal.id)
        with pytest.raises(ua.uaerrors.BadInvalidState):
            await call(client, "RollbackParameterSet")  # nothing before the nominal set
        assert any(f"{nominal.id} -> {fitted}" in e for e in line.loop.events)

        unit = client.get_node(ua.NodeId(PREFIX, await namespace(client)))
        switches: list[str] = []

        async def switches_in_history() -> bool:  # the parameter_set node's history: the unit's switch events
            events = await unit.read_event_history(started - timedelta(seconds=60),
                                                   datetime.now(UTC) + timedelta(seconds=5))
            fields = [e.get_event_props_as_fields_dict() for e in events]
            switches[:] = [f["Message"].Value.Text for f in fields
                           if f["SourceName"].Value == f"{UNIT} parameter_set"]
            return len(switches) >= 3

        await wait_until(switches_in_history, timeout_s=30, poll_s=0.5, what="the switches in the event history")
        assert f"twin start: parameter set {nominal.id}" in switches[0]
        assert f"{nominal.id} -> {fitted}" in switches[1] and f"{fitted} -> {nominal.id}" in switches[2]

        # the parameter_set node is historized: its raw history is the set deployed, switch by switch
        node = client.get_node(ua.NodeId(f"{PREFIX}.model.parameter_set", await namespace(client)))
        assert await node.read_attribute(ua.AttributeIds.Historizing) is not None
        assert (await node.read_attribute(ua.AttributeIds.Historizing)).Value.Value is True
        values: list[ua.DataValue] = []

        async def node_history() -> bool:
            values[:] = await node.read_raw_history(started - timedelta(seconds=60),
                                                    datetime.now(UTC) + timedelta(seconds=5))
            return len(values) >= 3

        await wait_until(node_history, timeout_s=30, poll_s=0.5, what="the parameter_set node's raw history")
        assert [v.Value.Value for v in values] == [nominal.id, fitted, nominal.id]
        assert [v.SourceTimestamp for v in values] == sorted(v.SourceTimestamp for v in values)
        newest = await node.read_raw_history(None, datetime.now(UTC) + timedelta(seconds=5), numvalues=1)
        assert [v.Value.Value for v in newest] == [nominal.id]  # backwards from the end: the newest first


async def test_operator_and_viewer_may_not_apply_or_roll_back():
    async with deploy_line() as line:
        fitted = line.fitted()
        for who in (OPERATOR, None):  # None: anonymous, a viewer
            async with client_as(line.twin.endpoint, who) as client:
                with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                    await apply(client, fitted)
                with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                    await call(client, "RollbackParameterSet")
                assert await model_value(client, "parameter_set") == line.nominal.id
        refused = [e for e in line.audit if e.action == "call" and e.outcome.value == "refused"]
        assert {e.user for e in refused} >= {"operator", "anonymous"}
        assert line.loop.core.parameter_set_id == line.nominal.id


async def test_a_set_of_another_declaration_an_unknown_and_a_tampered_set_are_refused():
    async with deploy_line() as line, client_as(line.twin.endpoint, ENGINEER) as client:
        other = line.fitted(declaration_hash="0" * 64)
        with pytest.raises(ua.uaerrors.BadInvalidArgument):
            await apply(client, other)
        assert "belongs to model declaration" in calls_of(line, "ApplyParameterSet")[-1].reason
        last_event = await client.get_node(ua.NodeId(f"{PREFIX}.control.last_event", await namespace(client))) \
            .read_value()  # what a client without the audit role can read of the reason
        assert "ApplyParameterSet refused (BadInvalidArgument) for engineer" in last_event
        assert f"unit {UNIT} runs declaration {line.nominal.declaration_hash}" in last_event
        with pytest.raises(ua.uaerrors.BadNotFound):
            await apply(client, "0123456789abcdef")
        with pytest.raises(ua.uaerrors.BadInvalidArgument):
            await apply(client, "../../etc/passwd")
        tampered = line.fitted(growth_factor=1.1)
        path = line.store.directory / f"{tampered}.json"
        content = json.loads(path.read_text())
        content["values"]["growth_rate_constant"] *= 2.0
        path.write_text(json.dumps(content))
        with pytest.raises(ua.uaerrors.BadDataUnavailable):
            await apply(client, tampered)
        n = line.nominal  # sets the estimator could not start from: beyond a declared bound, an online bound
        beyond = line.store.put(dataclasses.replace(n, values={**n.values, "growth_rate_constant": 5.0},
                                                    parent=n.id, created=utc_timestamp()))
        with pytest.raises(ua.uaerrors.BadOutOfRange):
            await apply(client, beyond)
        assert "'growth_rate_constant' = 5.0 m/s outside [0.0, 1.0]" in calls_of(line, "ApplyParameterSet")[-1].reason
        assert await model_value(client, "parameter_set") == line.nominal.id
        assert line.loop.core.parameter_set_id == line.nominal.id
        assert [e.status for e in calls_of(line, "ApplyParameterSet")] == \
            ["BadInvalidArgument", "BadNotFound", "BadInvalidArgument", "BadDataUnavailable", "BadOutOfRange"]


async def test_a_switch_asked_for_during_a_batch_waits_for_the_next_batch_start():
    async with deploy_line() as line, client_as(line.twin.endpoint, ENGINEER) as client:
        nominal, fitted = line.nominal, line.fitted(growth_factor=1.5)
        await start_batch(line, client)
        line.clock.advance(60.0)  # one estimator step of the running batch
        await wait_until(lambda: line.loop.core.estimate is not None and line.loop.core.estimate.time_s >= 60.0,
                         what="the first estimator step")

        await apply(client, fitted)

        assert await model_value(client, "pending_parameter_set") == fitted
        assert await model_value(client, "parameter_set") == nominal.id
        assert line.loop.core.parameter_set_id == nominal.id  # estimator and NMPC keep the batch's set
        assert calls_of(line, "ApplyParameterSet")[-1].new_value == fitted

        await control_call(client, "StopBatch")
        await start_batch(line, client)

        assert await model_value(client, "parameter_set") == fitted
        assert await model_value(client, "pending_parameter_set") == ""
        growth = line.store.get(fitted).values["growth_rate_constant"]
        est = line.loop.core.estimate
        assert est is not None and est.parameters["growth_rate_constant"] == pytest.approx(growth)  # the new EKF
        assert any(f"batch start: parameter set {nominal.id} -> {fitted}" in e for e in line.loop.events)


async def test_rollback_during_a_batch_cancels_a_pending_switch():
    async with deploy_line() as line, client_as(line.twin.endpoint, ENGINEER) as client:
        fitted = line.fitted()
        await start_batch(line, client)
        await apply(client, fitted)
        assert await model_value(client, "pending_parameter_set") == fitted
        await call(client, "RollbackParameterSet")
        assert await model_value(client, "pending_parameter_set") == ""
        await control_call(client, "StopBatch")
        await start_batch(line, client)
        assert await model_value(client, "parameter_set") == line.nominal.id


async def test_a_restarted_twin_runs_the_set_it_ran_before(tmp_path: Path):
    data = line_root()
    async with deploy_line(data) as line, client_as(line.twin.endpoint, ENGINEER) as client:
        fitted = line.fitted()
        await apply(client, fitted)
        history = json.loads((data / "parameter_sets" / "deployments" / f"{UNIT}.json").read_text())
        assert [d["set_id"] for d in history["history"]] == [line.nominal.id, fitted]
    async with deploy_line(data) as line, client_as(line.twin.endpoint, ENGINEER) as client:
        assert await model_value(client, "parameter_set") == fitted
        assert line.loop.core.parameter_set_id == fitted
        await call(client, "RollbackParameterSet")  # the history survived the restart too
        assert await model_value(client, "parameter_set") == line.nominal.id
