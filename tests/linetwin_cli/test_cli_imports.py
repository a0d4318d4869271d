"""What a light command imports: `linetwin --version` and `linetwin check` import neither torch nor the NMPC,
`linetwin --version` (building the command line) and the audit and user commands not asyncua either, and loading a
line config imports neither hil, torch, casadi nor asyncua (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "controllers.nmpc", "hil", "casadi", "asyncua")

PROBE = """
import json, sys
args = json.loads(sys.argv[1])
code = None
if args[0] == "load":
    from twin_server.config import load_line_config
    load_line_config(args[1])
else:
    from linetwin_cli.main import main
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules if m.split(".")[0] in
                  ("torch", "hil", "casadi", "asyncua") or m == "controllers.nmpc")}))
"""


def _imported(args: list[str]) -> tuple[object, set[str]]:
    # production_line.toml's InfluxDB token comes from the environment; loading checks it is set
    env = {**os.environ, "PYTHONPATH": str(REPO), "LINETWIN_INFLUX_TOKEN": "test-token"}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["code"], {m.split(".")[0] if m != "controllers.nmpc" else m for m in result["modules"]}


@pytest.mark.parametrize("args", [["--version"], ["check", "examples/pilot_line.toml"],
                                  ["check", "examples/production_line.toml"]])
def test_version_and_check_import_neither_torch_nor_the_nmpc(args):
    code, modules = _imported(args)
    assert code == 0
    assert "torch" not in modules and "controllers.nmpc" not in modules, modules
    if args == ["--version"]:
        assert "asyncua" not in modules, modules


@pytest.mark.parametrize(("args", "expected"), [(["audit", "verify", "--data-dir", "{tmp}"], 2),
                                              (["user", "list", "--data-dir", "{tmp}"], 0)])
def test_a_command_that_needs_no_opc_ua_starts_without_asyncua(args, expected, tmp_path):
    """A command on the security files imports no asyncua (an empty data dir: no audit store, refused in one line;
    no users, an empty list); nor does building the command line, which every command does."""
    code, modules = _imported([a.format(tmp=tmp_path) for a in args])
    assert code == expected
    assert "asyncua" not in modules and "torch" not in modules, modules


@pytest.mark.parametrize("config", ["examples/pilot_line.toml", "examples/production_line.toml"])
def test_loading_a_config_imports_no_hil_torch_casadi_or_asyncua(config):
    _, modules = _imported(["load", config])
    assert not modules & set(HEAVY), modules
