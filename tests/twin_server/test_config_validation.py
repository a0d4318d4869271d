"""Config validation (issue 7): inputs that crashed `linetwin check`, or passed it and then crashed `serve`/`hil serve`,
are each one clear `FILE: KEY: got …; expected …` line, shortened, exit 2."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from linetwin_cli.main import main
from twin_server.config import ConfigError, load_line_config, parse_line_config

PILOT = Path(__file__).resolve().parents[2] / "examples" / "pilot_line.toml"
LINE_RE = re.compile(r"^  - (?P<file>[^:]+): (?P<key>\S+): got .+; expected .+$")


def pilot_text() -> str:
    return PILOT.read_text()


def pilot_data() -> dict:
    return tomllib.loads(pilot_text())


def config_issue_lines(err: str) -> list[str]:
    """The issue lines `linetwin check` printed, each as ``  - FILE: KEY: got …; expected …``: several issues come
    under a header one per line, a single issue as one line of its own (returned in the same form)."""
    lines = err.splitlines()
    listed = [ln for ln in lines if ln.startswith("  - ")]
    return listed or ["  - " + ln for ln in lines if ": got " in ln and "; expected " in ln]


def check_file(tmp_path: Path, text: str | bytes, capsys) -> tuple[int, list[str]]:
    """Run `linetwin check` on a file; return (exit code, error lines)."""
    path = tmp_path / "line.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    rc = main(["check", str(path)])
    captured = capsys.readouterr()
    lines = config_issue_lines(captured.err)
    for ln in lines:
        assert LINE_RE.match(ln), ln
        assert ln.split(": ", 1)[0].endswith(str(path)), ln
    return rc, lines


def issues_of(data: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse_line_config(data, source="line.toml")
    return {i.key: str(i) for i in err.value.issues}


def build_issues_of(data: dict) -> dict[str, str]:
    """What `check` reports after parsing: building the models, HIL plants and control plans."""
    from hil.plant import make_plant
    from twin_server.line_build import build_line

    issues = build_line(parse_line_config(data, source="line.toml"), make_plant).issues
    assert issues
    return {i.key: str(i) for i in issues}


def test_integer_too_large_for_a_float_is_an_error_not_a_traceback(tmp_path, capsys):
    huge = "9" * 400
    text = pilot_text().replace("scale = 0.001\n", f"scale = {huge}\n", 1)
    text = text.replace("jacket_area_m2 = 4.0", f"jacket_area_m2 = {huge}")
    text = text.replace("eu_range = [0.0, 120.0]", f"eu_range = [0.0, {huge}]", 1)
    text = text.replace("scan_period_s = 0.5", f"scan_period_s = {huge}")
    rc, lines = check_file(tmp_path, text, capsys)
    assert rc == 2
    joined = "\n".join(lines)
    for key in ("units.feed_tank.tags.level.scale", "units.feed_tank.model.jacket_area_m2",
                "units.feed_tank.tags.temperature.eu_range", "line.scan_period_s"):
        assert f": {key}: got " in joined, (key, joined)
    assert "an integer of 400 digits" in joined
    assert all(len(ln) < 400 for ln in lines)


def test_integer_too_long_for_python_and_deep_nesting_are_syntax_errors(tmp_path, capsys):
    rc, lines = check_file(tmp_path, pilot_text().replace("scale = 0.001", "scale = " + "9" * 5000, 1), capsys)
    assert rc == 2 and len(lines) == 1 and ": <syntax>: got " in lines[0] and len(lines[0]) < 600
    rc, lines = check_file(tmp_path, "x = " + "[" * 100_000 + "]" * 100_000 + "\n", capsys)
    assert rc == 2 and len(lines) == 1 and ": <syntax>: got " in lines[0]


def test_file_that_is_not_utf8_is_an_error(tmp_path, capsys):
    text = pilot_text().replace("Pilot crystallization", "Pilot cristallisation \xe0 froid").encode("latin-1")
    rc, lines = check_file(tmp_path, text, capsys)
    assert rc == 2
    assert len(lines) == 1 and ": <file>: got a byte 0xe0 at offset" in lines[0]
    assert "expected a UTF-8 encoded TOML file" in lines[0]


def test_utf8_with_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + pilot_text().encode())
    assert load_line_config(path).name == "pilot_line"


@pytest.mark.parametrize(
    ("section", "unit", "key", "value", "expected"),
    [
        ("model", "feed_tank", "jacket_area_m2", -4.0, "parameters the mixing_tank model accepts"),
        ("model", "crystallizer", "volume_m3", "big", "parameters the crystallizer model accepts"),
        ("model", "capture_column", "column_volume_ml", 0, "parameters the chromatography_column model accepts"),
        ("plant", "feed_tank", "initial_level_m", -1.0, "parameters the HIL plant of a mixing_tank accepts"),
        ("plant", "crystallizer", "plant_model", "quantum", "parameters the HIL plant of a crystallizer accepts"),
    ],
)
def test_model_and_plant_parameters_that_crash_serve_or_hil_serve_are_config_errors(section, unit, key, value,
                                                                                      expected):
    data = pilot_data()
    data["units"][unit].setdefault(section, {})[key] = value
    parse_line_config(data, source="line.toml")  # loading parses only: the model is built by check / serve
    found = build_issues_of(data)
    full = f"units.{unit}.{section}.{key}"
    assert full in found, found
    assert expected in found[full]


def test_model_option_unknown_to_the_kind_is_named():
    data = pilot_data()
    data["units"]["crystallizer"]["model"]["volume_litres"] = 20
    found = build_issues_of(data)
    assert any(k.startswith("units.crystallizer.model") for k in found), found
    assert "volume_litres" in next(v for k, v in found.items() if k.startswith("units.crystallizer.model"))


def test_two_units_on_one_plc_with_overlapping_registers_are_refused():
    data = pilot_data()
    data["units"]["crystallizer"]["plc"]["port"] = data["units"]["feed_tank"]["plc"]["port"]
    found = issues_of(data)
    assert list(found) == ["units.crystallizer.plc"]
    assert "got 127.0.0.1:15020 unit_id 1, tag 'temperature' at input 0..1" in found["units.crystallizer.plc"]
    assert "unit 'feed_tank'" in found["units.crystallizer.plc"]


def test_two_units_on_one_plc_without_overlap_are_fine_for_the_twin_but_not_for_hil_serve(tmp_path, capsys):
    data = pilot_data()
    data["units"]["crystallizer"]["plc"]["port"] = data["units"]["feed_tank"]["plc"]["port"]
    data["units"]["crystallizer"]["plc"]["unit_id"] = 2  # a gateway: another device id behind the same port
    config = parse_line_config(data, source="line.toml")
    assert config.unit("crystallizer").connection.unit_id == 2
    from linetwin_cli.bench_launcher import bench_issues

    issues = bench_issues(config)
    assert [i.key for i in issues] == ["units.crystallizer.plc.port"]
    assert "a port of its own for each unit's virtual PLC" in str(issues[0])
    assert bench_issues(config, free_ports=True) == []  # `demo` re-assigns ports


def test_endpoint_port_zero_and_bad_endpoints_are_refused():
    for endpoint in ("opc.tcp://127.0.0.1:0/linetwin/", "opc.tcp://127.0.0.1/linetwin/",
                     "opc.tcp://127.0.0.1:4840/line twin/", "opc.tcp://" + "h" * 300 + ":4840/",
                     "opc.tcp://127.0.0.1:4840/linetwin/\n", ""):
        data = pilot_data()
        data["server"]["endpoint"] = endpoint
        assert list(issues_of(data)) == ["server.endpoint"], endpoint


def test_empty_or_spaced_namespace_is_refused():
    for namespace in ("", "urn:linetwin: pilot", "urn:" + "n" * 2000):
        data = pilot_data()
        data["server"]["namespace"] = namespace
        assert list(issues_of(data)) == ["server.namespace"], namespace


def test_a_model_value_of_the_wrong_type_is_reported_once():
    data = pilot_data()
    data["units"]["crystallizer"]["model"]["volume_m3"] = {"litres": 20}
    assert list(issues_of(data)) == ["units.crystallizer.model.volume_m3"]


@pytest.mark.parametrize("where", ["line", "unit", "tag"])
def test_names_with_a_trailing_newline_are_refused(where):
    data = pilot_data()
    if where == "line":
        data["line"]["name"] = "pilot_line\n"
        key = "line.name"
    elif where == "unit":
        data["units"]["feed_tank\n"] = data["units"].pop("feed_tank")
        key = "units.feed_tank\n"
    else:
        tags = data["units"]["feed_tank"]["tags"]
        tags["level\n"] = tags.pop("level")
        key = "units.feed_tank.tags.level\n"
    assert key in issues_of(data)


def test_host_names_are_checked_and_a_100k_host_is_shortened_in_the_error():
    for host in ("a" * 100_000, "plc 1", "plc1.\n", "-plc", "", "a" * 64 + ".example.com"):
        data = pilot_data()
        data["units"]["feed_tank"]["plc"]["host"] = host
        found = issues_of(data)
        assert "units.feed_tank.plc.host" in found, host
        assert len(found["units.feed_tank.plc.host"]) < 400
    for host in ("localhost", "plc-1.line2.example.com", "10.0.0.7", "::1", "0.0.0.0"):
        data = pilot_data()
        data["units"]["feed_tank"]["plc"]["host"] = host
        assert parse_line_config(data).unit("feed_tank").connection.host == host


def test_a_50kb_value_is_shortened_in_every_error_line(tmp_path, capsys):
    big = "x" * 50_000
    text = pilot_text().replace('kind = "mixing_tank"', f'kind = "{big}"')
    text = text.replace('description = "Liquid level (radar)"', f'description = "Liquid level"\nbogus = "{big}"')
    text = text.replace("volume_m3 = 0.02", f'volume_m3 = "{big}"')
    text = text.replace('namespace = "urn:linetwin:pilot_line"', f'namespace = "urn:{big} x"')
    rc, lines = check_file(tmp_path, text, capsys)
    assert rc == 2 and len(lines) >= 4
    assert all(len(ln) < 600 for ln in lines), max(len(ln) for ln in lines)
    assert any("(50000 chars)" in ln for ln in lines)


def test_shipped_examples_still_load():
    config = load_line_config(PILOT)
    assert [u.name for u in config.units] == ["feed_tank", "crystallizer", "capture_column"]
