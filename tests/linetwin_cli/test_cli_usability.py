"""CLI usability (issue 7): `--version`, help text on every option, and a port already in use reported as one clear
line (which port, what to do), for the OPC UA endpoint and for virtual PLC ports, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tomllib
from pathlib import Path

import pytest

from linetwin_cli.main import build_parser, main
from tests.conftest import free_tcp_port

REPO = Path(__file__).resolve().parents[2]
PILOT = REPO / "examples" / "pilot_line.toml"


async def run_cli(*args: str, timeout_s: float = 120.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linetwin_cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


def listening_socket(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:port (the "other process" holding the port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


def line_with_ports(tmp_path: Path, endpoint_port: int, plc_ports: list[int]) -> Path:
    text = PILOT.read_text().replace("127.0.0.1:4840", f"127.0.0.1:{endpoint_port}")
    for old, new in zip((15020, 15021, 15022), plc_ports, strict=True):
        text = text.replace(f"port = {old}\n", f"port = {new}\n")
    path = tmp_path / "line.toml"
    path.write_text(text)
    return path


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("linetwin ") and len(out.split()) >= 2, out


def _actions(parser: argparse.ArgumentParser, path: str = "linetwin") -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                found.append((f"{path} {choice.dest}", choice))
            for name, sub in action.choices.items():
                found += _actions(sub, f"{path} {name}")
        else:
            found.append((path, action))
    return found


def test_every_option_and_subcommand_has_help_text():
    missing = [f"{where}: {'/'.join(a.option_strings) or a.dest}" for where, a in _actions(build_parser())
               if not (a.help and a.help.strip())]
    assert missing == []
    help_text = build_parser()._subparsers._group_actions[0].choices["demo"].format_help()
    assert "--duration S" in help_text and "wall-clock seconds" in help_text
    assert "--speed N" in help_text and "plant seconds per wall-clock second" in help_text


def test_bad_option_values_are_refused_by_the_parser(capsys):
    for argv in (["demo", "--port", "0"], ["demo", "--port", "70000"], ["demo", "--speed", "-2"],
                 ["demo", "--duration", "nan"], ["hil", "serve", "x.toml", "--speed", "0"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2, argv
        assert "expected" in capsys.readouterr().err, argv


async def test_serve_with_the_endpoint_port_in_use_says_so_in_one_line(tmp_path):
    port = free_tcp_port()
    config = line_with_ports(tmp_path, port, [free_tcp_port() for _ in range(3)])
    with listening_socket(port):
        rc, _, err = await run_cli("serve", str(config), "--duration", "30")
    assert rc == 1, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert f"127.0.0.1:{port}" in lines[0] and "OPC UA endpoint" in lines[0]
    assert "already in use" in lines[0] and "--port" in lines[0]


async def test_demo_with_the_port_in_use_says_so_in_one_line():
    port = free_tcp_port()
    with listening_socket(port):
        rc, _, err = await run_cli("demo", "--port", str(port), "--duration", "30")
    assert rc == 1, err
    assert "Traceback" not in err, err
    assert [ln for ln in err.splitlines() if ln.strip()] == [ln for ln in err.splitlines() if "linetwin:" in ln]
    assert f"127.0.0.1:{port}" in err and "--port" in err


async def test_hil_serve_with_a_plc_port_in_use_says_so_in_one_line(tmp_path):
    plc_ports = [free_tcp_port() for _ in range(3)]
    config = line_with_ports(tmp_path, free_tcp_port(), plc_ports)
    with listening_socket(plc_ports[1]):
        rc, _, err = await run_cli("hil", "serve", str(config), "--duration", "30")
    assert rc == 1, err
    assert "Traceback" not in err, err
    problems = [ln for ln in err.splitlines() if ln.startswith("linetwin:")]
    assert len(problems) == 1, err
    assert f"127.0.0.1:{plc_ports[1]}" in problems[0] and "'crystallizer'" in problems[0]
    assert "[plc] port" in problems[0]


async def test_hil_serve_refuses_what_its_bench_cannot_run_and_check_notes_it(tmp_path, capsys):
    data = tomllib.loads(PILOT.read_text())
    text = PILOT.read_text().replace("port = 15021\n", "port = 15020\nunit_id = 2\n", 1)
    text = text.replace("unit_id = 1\n\n[units.crystallizer.tags", "\n[units.crystallizer.tags", 1)
    assert data["units"]["crystallizer"]["plc"]["port"] == 15021
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note (hil serve only" in out and "units.crystallizer.plc.port" in out
    rc, _, err = await run_cli("hil", "serve", str(path), "--duration", "30")
    assert rc == 2 and "Traceback" not in err, err
    assert "units.crystallizer.plc.port: got 127.0.0.1:15020, as unit 'feed_tank'" in err
