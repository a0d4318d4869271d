"""``linetwin params apply | rollback`` against a live twin over OPC UA, with the user's own credentials: the
command as the ``linetwin`` entry point runs it (its parser, its one-line failures and exit codes), in a thread
beside the twin's event loop as a separate client would."""

from __future__ import annotations

import asyncio

import pytest

from linetwin_cli.main import main
from tests.security_helpers import Credentials, line_root
from tests.twin_server.line_fixture import PILOT
from tests.twin_server.test_parameter_deployment import ENGINEER, OPERATOR, UNIT, deploy_line


async def deploy(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str,
                 who: Credentials, *argv: str, exit_code: int = 0) -> str:
    """``linetwin params ARGV`` as ``who`` (password from $LINETWIN_PASSWORD); its stdout (stderr if it fails)."""
    monkeypatch.setenv("LINETWIN_PASSWORD", who.password)
    command, *rest = argv
    code = await asyncio.to_thread(main, ["params", command, str(PILOT), *rest, "--unit", UNIT, "--endpoint",
                                          endpoint, "--user", who.user, "--data-dir", str(line_root())])
    out, err = capsys.readouterr()
    assert code == exit_code, (out, err)
    return out if code == 0 else err


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
        err = await deploy(capsys, monkeypatch, line.twin.endpoint, OPERATOR, "apply", fitted, exit_code=1)
        assert "BadUserAccessDenied: your role may not change parameter sets" in err and "Traceback" not in err
        other = line.fitted(declaration_hash="f" * 64)
        err = await deploy(capsys, monkeypatch, line.twin.endpoint, ENGINEER, "apply", other, exit_code=2)
        assert "belongs to model declaration ffffffffffffffff" in err and len(err.strip().splitlines()) == 1
        assert line.loop.core.parameter_set_id == line.nominal.id


async def test_a_prefix_must_resolve_here_and_a_full_id_the_twin_lacks_is_refused_by_the_twin(capsys, monkeypatch):
    async with deploy_line() as line:
        line.fitted()
        err = await deploy(capsys, monkeypatch, line.twin.endpoint, ENGINEER, "apply", "abcd", exit_code=2)
        assert "not in the store" in err
        err = await deploy(capsys, monkeypatch, line.twin.endpoint, ENGINEER, "apply", "abcdef0123456789",
                           exit_code=1)
        assert "BadNotFound" in err
