"""docs/plant/modbus-device.md's tag map (a register map turned into tags: zero-based addresses, CDAB / DCBA
word and byte orders, scaling, a discrete input and a coil) passes ``linetwin check``, and its registers decode
as the page says."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from linetwin_cli.main import main as linetwin
from plc_adapters.tag_map import ByteOrder, DataType, RegisterTable, WordOrder
from twin_server.config import load_line_config


def test_the_modbus_walkthrough_tag_map_passes_check(repo_root: Path, tmp_path: Path):
    text = (repo_root / "docs" / "plant" / "modbus-device.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(# walkthrough: modbus-feed-tank\n.*?)```", text, re.S)
    assert len(blocks) == 1
    tomllib.loads(blocks[0])
    line = tmp_path / "my_line.toml"
    line.write_text('[line]\nname = "my_line"\n\n[server]\n\n' + blocks[0], encoding="utf-8")
    assert linetwin(["check", str(line)]) == 0
    tags = {t.name: t for t in load_line_config(line).unit("feed_tank").tags}
    assert (tags["level"].table, tags["level"].address, tags["level"].scale) == (RegisterTable.INPUT, 0, 0.001)
    assert (tags["temperature"].word_order, tags["temperature"].byte_order) == (WordOrder.LITTLE, ByteOrder.BIG)
    setpoint = tags["jacket_temperature_setpoint"]
    assert (setpoint.table, setpoint.address, setpoint.word_order, setpoint.byte_order) == (
        RegisterTable.HOLDING, 2, WordOrder.LITTLE, ByteOrder.LITTLE)
    assert (tags["agitator_enable"].table, tags["agitator_enable"].data_type) == (RegisterTable.COIL, DataType.BOOL)
    assert tags["feed_pump_running"].table is RegisterTable.DISCRETE
