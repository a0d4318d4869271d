"""The crystallizer's control object on the live demo line: what its values say before there is anything to say
(BadWaitingForInitialData, never a placeholder 0), their engineering units and ranges, and StartBatch / StopBatch
called the wrong way (wrong object, arguments) refused with the Call service's codes and audited.

One live line serves the module (each test leaves it as it found it: no batch, mode manual); the test of the values
before any batch comes first (``slow``: first on its worker, and first in the file)."""

from __future__ import annotations

import logging

import pytest
import pytest_asyncio
from asyncua import Client, ua

from tests.conftest import wait_until
from tests.security_helpers import OPERATOR, client_as
from tests.twin_server.line_fixture import NAMESPACE, live_pilot_line
from twin_server.audit import AuditEntry, AuditOutcome

CONTROL = "pilot_line.crystallizer.control"
JACKET_LIMITS_C = (15.0, 40.0)  # examples/pilot_line.toml [units.crystallizer.control] jacket_limits_c
WAITING = ua.StatusCodes.BadWaitingForInitialData

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.shares_module_fixture]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_line(tmp_path_factory):
    async with live_pilot_line(scan_period_s=0.1, speed=20.0,
                               data_dir=tmp_path_factory.mktemp("linetwin_data")) as line:
        yield line


@pytest.fixture
def audited(shared_line):
    """The shared line's audit entries from this test on (its sink is removed after the test)."""
    entries: list[AuditEntry] = []
    shared_line.twin.audit.sinks.append(entries.append)
    yield entries
    shared_line.twin.audit.sinks.remove(entries.append)


def _node(client: Client, idx: int, name: str):
    return client.get_node(ua.NodeId(f"{CONTROL}.{name}", idx))


async def _property(node, name: str):
    refs = await node.get_children(refs=ua.ObjectIds.HasProperty)
    for child in refs:
        if (await child.read_browse_name()).Name == name:
            return await child.read_value()
    return None


async def _good_crystallizer(line) -> None:
    adapter = line.twin.runtime.adapters["crystallizer"]
    await wait_until(lambda: len(adapter.last_samples) > 0 and all(s.quality.is_good for s in
                                                                   adapter.last_samples.values()),
                     timeout_s=30, what="Good crystallizer tags")


@pytest.mark.slow
async def test_control_values_wait_for_an_estimate_and_carry_engineering_units(shared_line):
    line = shared_line
    async with client_as(line.url, OPERATOR) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        control = client.get_node(ua.NodeId(CONTROL, idx))
        variables = {(await v.read_browse_name()).Name: v
                     for v in await control.get_children(refs=ua.ObjectIds.HasComponent,
                                                         nodeclassmask=ua.NodeClass.Variable)}
        # Before any batch: no estimate, no prediction, no solve: waiting, value null (not Good 0.0).
        waiting = [n for n in variables if n.startswith(("estimated_", "predicted_"))] + ["solve_time_ms"]
        assert "estimated_d43" in waiting and "predicted_jacket_temperature" in waiting
        for name in waiting:
            dv = await variables[name].read_data_value(raise_on_bad_status=False)
            assert dv.StatusCode.value == WAITING, f"{name}: {dv.StatusCode.name} {dv.Value}"
            assert dv.Value is None or dv.Value.Value is None, name

        # Every number under control has a unit (counters are counts); ranges where they mean something.
        for name, node in variables.items():
            data_type = await node.read_data_type()
            if data_type != ua.NodeId(ua.ObjectIds.Double):
                continue
            eu = await _property(node, "EngineeringUnits")
            assert isinstance(eu, ua.EUInformation), f"{name} has no EngineeringUnits"
        units = {n: (await _property(variables[n], "EngineeringUnits")).DisplayName.Text
                 for n in ("estimated_d43", "estimated_d43_std", "solve_time_ms", "solve_times_ms",
                           "predicted_time_s", "predicted_d43", "predicted_jacket_temperature", "batch_time_s")}
        assert units == {"estimated_d43": "µm", "estimated_d43_std": "µm", "solve_time_ms": "ms",
                         "solve_times_ms": "ms", "predicted_time_s": "s", "predicted_d43": "µm",
                         "predicted_jacket_temperature": "°C", "batch_time_s": "s"}
        jacket_range = await _property(variables["predicted_jacket_temperature"], "EURange")
        assert (jacket_range.Low, jacket_range.High) == JACKET_LIMITS_C
        d43_range = await _property(variables["estimated_d43"], "EURange")
        assert (d43_range.Low, d43_range.High) == (0.0, 3000.0)
        assert await _property(variables["estimated_supersaturation"], "EURange") is None  # no honest range
        assert await variables["estimated_supersaturation"].read_type_definition() == \
            ua.NodeId(ua.ObjectIds.BaseAnalogType)
        assert await variables["estimated_d43"].read_type_definition() == ua.NodeId(ua.ObjectIds.AnalogItemType)

        # With a batch there is an estimate (Good); predictions wait for an NMPC solve (manual mode: none).
        await _good_crystallizer(line)
        await control.call_method(ua.NodeId(f"{CONTROL}.StartBatch", idx))
        d43 = await variables["estimated_d43"].read_data_value()
        assert d43.StatusCode.is_good() and 50.0 < d43.Value.Value < 1000.0
        assert (await variables["estimated_d43_std"].read_data_value()).StatusCode.is_good()
        predicted = await variables["predicted_d43"].read_data_value(raise_on_bad_status=False)
        assert predicted.StatusCode.value == WAITING
        await control.call_method(ua.NodeId(f"{CONTROL}.StopBatch", idx))


async def test_batch_methods_check_object_and_arguments_and_are_audited(shared_line, audited, caplog):
    line = shared_line
    async with client_as(line.url, OPERATOR) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        control = client.get_node(ua.NodeId(CONTROL, idx))
        start = ua.NodeId(f"{CONTROL}.StartBatch", idx)
        stop = ua.NodeId(f"{CONTROL}.StopBatch", idx)
        batch_active = _node(client, idx, "batch_active")
        for method in (start, stop):
            assert (await client.get_node(method).read_browse_name()) == \
                ua.QualifiedName(method.Identifier.rsplit(".", 1)[1], idx)
        await _good_crystallizer(line)

        feed_tank = client.get_node(ua.NodeId("pilot_line.feed_tank", idx))
        crystallizer = client.get_node(ua.NodeId("pilot_line.crystallizer", idx))
        with caplog.at_level(logging.INFO):
            for wrong_object in (feed_tank, crystallizer):
                with pytest.raises(ua.uaerrors.BadMethodInvalid):
                    await wrong_object.call_method(start)
            assert await batch_active.read_value() is False, "a refused call must change nothing"
            with pytest.raises(ua.uaerrors.BadTooManyArguments):
                await control.call_method(start, ua.Variant(1.0, ua.VariantType.Double))
            with pytest.raises(ua.uaerrors.BadTooManyArguments):
                await control.call_method(stop, ua.Variant("now", ua.VariantType.String))
            assert await batch_active.read_value() is False

            await control.call_method(start)
            assert await batch_active.read_value() is True
            with pytest.raises(ua.uaerrors.BadInvalidState):
                await control.call_method(start)
            await control.call_method(stop)
            assert await batch_active.read_value() is False
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no traceback for a client's mistake"

    calls = [e for e in audited if e.action == "call"]
    assert [(e.node.rsplit(".", 1)[1], e.outcome, e.status) for e in calls] == [
        ("StartBatch", AuditOutcome.REFUSED, "BadMethodInvalid"),
        ("StartBatch", AuditOutcome.REFUSED, "BadMethodInvalid"),
        ("StartBatch", AuditOutcome.REFUSED, "BadTooManyArguments"),
        ("StopBatch", AuditOutcome.REFUSED, "BadTooManyArguments"),
        ("StartBatch", AuditOutcome.ACCEPTED, "Good"),
        ("StartBatch", AuditOutcome.REFUSED, "BadInvalidState"),
        ("StopBatch", AuditOutcome.ACCEPTED, "Good"),
    ]
    assert all(e.user == "operator" and e.role == "operator" for e in calls)
    assert "pilot_line.feed_tank" in calls[0].reason
    assert "batch is running" in calls[5].reason
    assert calls[2].new_value == [1.0]


async def test_strategy_follows_the_mode_and_refusals_name_units_by_symbol(shared_line, audited):
    """Issue 15, finding 10: ``strategy`` says who decides the setpoints now (manual, the recipe in auto, mpc), and a
    refused setpoint names its unit as the alarms do (``95 °C``), not by its UNECE code (``95 CEL``)."""
    line = shared_line
    async with client_as(line.url, OPERATOR) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        mode, strategy = _node(client, idx, "mode"), _node(client, idx, "strategy")
        assert (await mode.read_value(), await strategy.read_value()) == ("manual", "manual")
        for new_mode, expected in (("mpc", "mpc"), ("auto", "linear_cooling"), ("mpc", "mpc"), ("manual", "manual")):
            await mode.write_value(ua.Variant(new_mode, ua.VariantType.String))
            assert await strategy.read_value() == expected, new_mode

        await _good_crystallizer(line)
        setpoint = client.get_node(ua.NodeId("pilot_line.feed_tank.jacket_temperature_setpoint", idx))
        with pytest.raises(ua.uaerrors.BadOutOfRange):
            await setpoint.write_value(ua.Variant(95.0, ua.VariantType.Double))
    refusal = next(e for e in audited if e.node.endswith("jacket_temperature_setpoint"))
    assert refusal.outcome is AuditOutcome.REFUSED
    assert "95 °C is outside the write limits [5, 90] °C" in refusal.reason, refusal.reason
    assert "CEL" not in refusal.reason
