"""``linetwin forecast``: what if a batch recorded by a live twin (real historian, SQLite) had run another profile —
the table and the JSON with a 95 % band, and bad input (unknown batch, bad profile, a unit without control) in one
line with exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from asyncua import ua

from linetwin_cli.main import main
from tests.conftest import wait_until
from tests.security_helpers import line_root
from tests.twin_server.line_fixture import PILOT
from tests.twin_server.test_control_loop import controlled_line, start_batch, wait_for_good_measurements

CONTROL = "pilot_line.crystallizer.control"


async def _record_a_batch() -> None:
    async with controlled_line(initial_mode="auto") as (twin, _bench, client, idx):  # the recipe cools: growth seen
        await wait_for_good_measurements(twin)
        await start_batch(client, idx)
        active = client.get_node(ua.NodeId(f"{CONTROL}.batch_active", idx))

        async def batch_over() -> bool:
            return await active.read_value() is False

        await wait_until(batch_over, timeout_s=90, what="the 30-minute batch's end (4.5 s at 400x)")


async def test_what_if_a_recorded_batch_had_run_another_profile(tmp_path, capsys):
    await _record_a_batch()
    data = str(line_root())
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps({"time_s": [0, 3600], "jacket_temperature_setpoint": [40.0, 15.0]}))
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps({"time_s": [0, 7200], "jacket_temperature_setpoint": [40.0, 30.0]}))
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    results = {}
    for profile in (fast, slow):
        out = tmp_path / f"{profile.stem}.out.json"
        assert main(["forecast", str(PILOT), "--unit", "crystallizer", "--batch", today, "--profile", str(profile),
                     "--data-dir", data, "--json", str(out)]) == 0
        table = capsys.readouterr().out
        assert "what-if forecast of batch " + today in table and "d43" in table and "yield" in table
        results[profile.stem] = json.loads(out.read_text())
    for result in results.values():
        assert result["batch"].startswith(today) and result["source"] == "profile"
        assert result["time_s"][-1] == 7200.0
        d43 = result["quantities"]["d43"]
        assert d43["low"][-1] < d43["mean"][-1] < d43["high"][-1]
        assert 273.15 + 35 < result["initial_measurements_si"]["temperature"] < 273.15 + 45
        growth = result["online_parameters"]["growth_rate_constant"]
        assert growth["source"] == "batch_end_estimate"  # learned over the recorded batch, not the 30 % prior
        assert 0 < growth["std"] < 0.15 * 12.21e-6  # 30 minutes of data narrowed the 30 % prior
    # cooling further crystallizes more: the what-if answers differ the way the physics says
    assert results["fast"]["quantities"]["yield"]["mean"][-1] > results["slow"]["quantities"]["yield"]["mean"][-1]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"time_s": [0], "jacket_temperature_setpoint": [90.0]}))
    cases = {
        ("--batch", "1999-01-01"): "--batch 1999-01-01: no recorded batch with that id; batches: ",
        ("--profile", str(bad)): "jacket_temperature_setpoint: got [90.0]; expected values in [15, 40]",
        ("--unit", "feed_tank"): "--unit: got 'feed_tank'; expected a unit with a [control] table: crystallizer",
    }
    for (option, value), message in cases.items():
        argv = {"--unit": "crystallizer", "--batch": today, "--profile": str(fast)} | {option: value}
        args = ["forecast", str(PILOT), "--data-dir", data, *[x for kv in argv.items() for x in kv]]
        assert main(args) == 2, option
        err = capsys.readouterr().err
        assert message in err, err
        assert "Traceback" not in err


def test_check_names_a_bad_online_parameter_table(tmp_path, capsys):
    text = PILOT.read_text()
    bad = text.replace("[units.crystallizer.control]\n", "[units.crystallizer.control]\n"
                       "online_parameters = { solubility_coefficient_0 = { lower = 0.21, upper = 0.20 }, "
                       "no_such_constant = { lower = 0, upper = 1 } }\n", 1)
    assert bad != text
    path = tmp_path / "line.toml"
    path.write_text(bad)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: units.crystallizer.control.online_parameters.solubility_coefficient_0.upper: got 0.2; " \
           "expected a bound above lower = 0.21" in err, err
    path.write_text(text.replace("[units.crystallizer.control]\n", "[units.crystallizer.control]\n"
                                 "online_parameters = { no_such_constant = { lower = 0, upper = 1 } }\n", 1))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "units.crystallizer.control.online_parameters.no_such_constant: got 'an unknown parameter'; expected a " \
           "parameter of the model" in err, err
    assert "Traceback" not in err
