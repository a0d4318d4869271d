"""`serve` builds what the config names once: the control plan (NMPC) one time, before anything listens, and a
plan that cannot be built is a config error (exit 2), as `check` reports it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from linetwin_cli.main import main
from tests.conftest import free_tcp_port

REPO = Path(__file__).resolve().parents[2]


def _pilot(tmp_path: Path, port: int, replace: tuple[str, str] | None = None) -> Path:
    text = (REPO / "examples" / "pilot_line.toml").read_text()
    text = text.replace("opc.tcp://127.0.0.1:4840/linetwin/", f"opc.tcp://127.0.0.1:{port}/linetwin/")
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    path = tmp_path / "line.toml"
    path.write_text(text)
    return path


@pytest.fixture
def plan_builds(monkeypatch) -> list[str]:
    """Every build of a crystallizer control plan (the NMPC), by key prefix."""
    from controllers.crystallization import control_plan

    calls: list[str] = []
    real = control_plan.build_crystallizer_plan

    def counting(model_options, raw_control, prefix, tags):
        calls.append(prefix)
        return real(model_options, raw_control, prefix, tags)

    monkeypatch.setattr(control_plan, "build_crystallizer_plan", counting)
    return calls


def test_serve_builds_the_control_plan_once(tmp_path, plan_builds, capsys):
    port = free_tcp_port()
    config = _pilot(tmp_path, port)
    assert main(["serve", str(config), "--duration", "0.5", "--data-dir", str(tmp_path / "history")]) == 0
    assert f"served at opc.tcp://127.0.0.1:{port}/linetwin/" in capsys.readouterr().out
    assert plan_builds == ["units.crystallizer.control"]


def test_check_builds_no_control_plan_but_checks_it(tmp_path, plan_builds, capsys):
    config = _pilot(tmp_path, free_tcp_port())
    assert main(["check", str(config)]) == 0
    assert plan_builds == []
    bad = _pilot(tmp_path, free_tcp_port(), ("[units.crystallizer.control]",
                                            '[units.crystallizer.control]\nestimate_parameters = ["no_such_rate"]'))
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: units.crystallizer.control: got " in err, err
    assert "expected options the crystallizer control plan can be built from with this [model] " \
           "(units.crystallizer.control.estimate_parameters: got ['no_such_rate']; expected parameters of the model" \
           in err, err


def test_serve_refuses_a_plan_that_cannot_be_built_before_listening(tmp_path, capsys):
    port = free_tcp_port()
    bad = _pilot(tmp_path, port, ("[units.crystallizer.control]",
                                  '[units.crystallizer.control]\nestimate_parameters = ["no_such_rate"]'))
    with pytest.raises(SystemExit) as exit_:  # as a config that does not parse: exit 2
        main(["serve", str(bad), "--duration", "0.5", "--data-dir", str(tmp_path / "history")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [ln for ln in err.splitlines() if "units.crystallizer.control: got" in ln], err
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "nothing may listen on the endpoint"
