"""``linetwin params apply | rollback`` against a live twin over OPC UA, with the user's own credentials."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from linetwin_cli.failures import CommandError, OneLineParser
from linetwin_cli.params_deploy import add_deploy_commands, run_deploy
from tests.security_helpers import Credentials, line_root
from tests.twin_server.line_fixture import PILOT
from tests.twin_server.test_parameter_deployment import ENGINEER, OPERATOR, UNIT, deploy_line


def parse(*argv: str) -> argparse.Namespace:
    parser = OneLineParser(prog="linetwin params")
    add_deploy_commands(parser.add_subparsers(dest="params_command", required=True))
    return parser.parse_args(list(argv))


async def deploy(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str,
                 who: Credentials, *argv: str) -> str:
    """Run the command as ``who`` (password from $LINETWIN_PASSWORD) in a thread, as a separate client would."""
    monkeypatch.setenv("LINETWIN_PASSWORD", who.password)
    command, *rest = argv
    args = parse(command, str(PILOT), *rest, "--unit", UNIT, "--endpoint", endpoint, "--user", who.user,
                 "--data-dir", str(line_root()))
    assert await asyncio.to_thread(run_deploy, args) == 0
    return capsys.readouterr().out


async def test_an_engineer_applies_a_set_by_its_prefix_and_rolls_back(capsys, monkeypatch):
    async with deploy_line() as line:
        fitted = line.fitted()
        out = await deploy(capsys, monkeypatch, line.twin.endpoint, ENGINEER, "apply", fitted[:6])
        assert f"parameter set {fitted} deployed" in out
        assert line.loop.core.parameter_set_id == fitted
        out = await deploy(capsys, monkeypatch, line.twin.endpoint, ENGINEER, "rollback")
        assert f"parameter set {line.nominal.id} deployed" in out
        assert line.loop.core.parameter_set_id == line.nominal.id


async def test_the_twin_refuses_an_operator_and_the_command_says_why(capsys, monkeypatch):
    async with deploy_line() as line:
        fitted = line.fitted()
        with pytest.raises(CommandError, match="BadUserAccessDenied: your role may not change parameter sets") as exc:
            await deploy(capsys, monkeypatch, line.twin.endpoint, OPERATOR, "apply", fitted)
        assert exc.value.exit_code == 1
        other = line.fitted(declaration_hash="f" * 64)
        with pytest.raises(CommandError, match="belongs to model declaration ffffffffffffffff") as exc:
            await deploy(capsys, monkeypatch, line.twin.endpoint, ENGINEER, "apply", other)
        assert exc.value.exit_code == 2
        assert line.loop.core.parameter_set_id == line.nominal.id
