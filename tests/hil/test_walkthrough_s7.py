"""docs/plant/opcua-plc.md's S7-1500 tag map, served by the bench's virtual OPC UA PLC (data blocks with string node
ids in the vendor namespace): the twin mirrors every tag Good and a setpoint write reaches the PLC. The virtual PLC
serves SecurityPolicy None only, so the walkthrough's security keys are replaced by None here."""

from __future__ import annotations

import re
import tomllib

from asyncua import ua

from tests.conftest import wait_until
from tests.security_helpers import OPERATOR, add_operator, client_as
from tests.twin_server.line_fixture import live_line
from twin_server.config import parse_line_config

SECURITY_KEYS = ("certificate", "private_key", "server_certificate", "user", "password_env")


def walkthrough_block(repo_root) -> dict:
    text = (repo_root / "docs" / "plant" / "opcua-plc.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(# walkthrough: s7-crystallizer\n.*?)```", text, re.S)
    assert len(blocks) == 1, "the walkthrough's tag map block is marked '# walkthrough: s7-crystallizer'"
    return tomllib.loads(blocks[0])


async def test_the_s7_walkthrough_tag_map_runs_against_the_virtual_opcua_plc(repo_root):
    raw = walkthrough_block(repo_root)
    plc = raw["units"]["crystallizer"]["plc"]
    assert plc["namespace_uri"] == "http://www.siemens.com/simatic-s7-opcua"
    assert (plc["security_policy"], plc["security_mode"]) == ("Basic256Sha256", "SignAndEncrypt")
    for key in SECURITY_KEYS:
        plc.pop(key)
    plc.update(endpoint="opc.tcp://127.0.0.1:4840/", security_policy="None", security_mode="None")
    config = parse_line_config({"line": {"name": "s7_line", "scan_period_s": 0.2}, "server": {},
                                "security": {"allow_none": True}, **raw}, source=str(repo_root / "s7_line.toml"))
    add_operator()
    async with live_line(config, 20.0) as line:
        twin, bench = line.twin, line.bench
        async with client_as(twin.endpoint, OPERATOR, timeout=30) as client:
            ns = await client.get_namespace_index("urn:linetwin:s7_line")
            tags = list(raw["units"]["crystallizer"]["tags"])

            async def all_good() -> bool:
                for tag in tags:
                    dv = await client.get_node(ua.NodeId(f"s7_line.crystallizer.{tag}", ns)).read_data_value(
                        raise_on_bad_status=False)
                    if not dv.StatusCode.is_good():
                        return False
                return True

            await wait_until(all_good, 30, what=f"every walkthrough tag Good: {tags}")
            assert twin.runtime is not None and not twin.runtime.adapters["crystallizer"].eu_mismatches
            virtual = bench.plc("crystallizer")
            target = round(virtual.read_tag("agitator_speed_setpoint")) + 10.0
            setpoint = client.get_node(ua.NodeId("s7_line.crystallizer.agitator_speed_setpoint", ns))
            await setpoint.write_value(ua.DataValue(ua.Variant(target, ua.VariantType.Double)))
            await wait_until(lambda: virtual.read_tag("agitator_speed_setpoint") == target, 10,
                             what="the setpoint at the virtual S7's DB_Crystallizer.AgitatorSpeedSetpoint")
