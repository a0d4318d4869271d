"""The HIL bench's reader of a line unit (hil.line_unit) reads tag tables with the twin's own parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.line_unit import read_line_unit
from plc_adapters.config_issues import ConfigError
from plc_adapters.opcua_spec import OpcUaTagSpec
from plc_adapters.tag_map import DataType, RegisterTable, TagSpec
from twin_server.config import load_line_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("line", ["pilot_line.toml", "mixed_line.toml"])
def test_the_bench_reads_each_tag_as_the_twin_does(line: str) -> None:
    """Modbus units: the very tags the twin's loader builds; OPC UA units: register-image tags with the twin's
    neutral fields and data types, laid out one after the other per table."""
    config = load_line_config(EXAMPLES / line)
    for unit in config.units:
        read = read_line_unit(EXAMPLES / line, unit.name)
        assert (read.kind, read.protocol) == (unit.kind, unit.connection.protocol)
        if all(isinstance(t, TagSpec) for t in unit.tags):
            assert read.tags == unit.tags
            continue
        twin_tags: list[OpcUaTagSpec] = list(unit.tags)  # type: ignore[arg-type]
        assert [(t.name, t.direction, t.unit_code, t.unit_symbol, t.eu_range, t.write_limits, t.max_rate)
                for t in read.tags] == [(t.name, t.direction, t.unit_code, t.unit_symbol, t.eu_range, t.write_limits,
                                         t.max_rate) for t in twin_tags]
        assert [t.data_type for t in read.tags] == [DataType(t.data_type) for t in twin_tags]
        for table in (RegisterTable.INPUT, RegisterTable.HOLDING):
            laid = [t for t in read.tags if t.table is table]
            assert [t.address for t in laid] == [sum(u.register_count for u in laid[:i]) for i in range(len(laid))]


def test_a_bad_tag_table_is_a_config_error_naming_the_file_and_the_key(tmp_path: Path) -> None:
    line = tmp_path / "line.toml"
    line.write_text('[units.tank]\nkind = "mixing_tank"\n[units.tank.plc]\nprotocol = "opcua"\n'
                    '[units.tank.tags.level]\ndirection = "measured"\nunit = "XYZ"\nnode_id = "s=L"\n'
                    'namespace_uri = "urn:x"\n')
    with pytest.raises(ConfigError) as caught:
        read_line_unit(line, "tank")
    lines = [str(i) for i in caught.value.issues]
    assert f"{line}: units.tank.tags.level.unit: got 'XYZ'; expected a UNECE Rec. 20 common code known to" \
        in lines[0]
    assert lines[1] == f"{line}: units.tank.tags.level.eu_range: got nothing; expected [low, high] (required)"
    with pytest.raises(KeyError, match="no unit 'pump'"):
        read_line_unit(line, "pump")
