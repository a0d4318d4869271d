"""A non-editable ``pip install .`` runs the shipped lines and commands from any directory.

The test copies the project's sources to a temporary folder, builds a fresh venv there whose only extra path is
the shared venv's site-packages (the dependencies; no ``.pth`` of it runs, so no editable linetwin leaks in),
installs linetwin into it with ``pip install --no-deps --no-build-isolation`` (non-editable: the wheel's copies),
and runs ``init``, ``check``, ``demo`` (virtual PLCs and twin over sockets), ``simulate`` and ``hil run`` (a
shipped scenario on the stepped clock) from yet another temporary folder with no ``PYTHONPATH``. Nothing is
written into the repository or the user's home (``XDG_DATA_HOME`` is the test's).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, free_tcp_port

SOURCES = ("pyproject.toml", "README.md", "examples", "linetwin_examples", "twin_server", "process_models",
           "controllers", "plc_adapters", "hil", "linetwin_cli", "linetwin_lazy")


def _shared_site_packages() -> str:
    return next(p for p in site.getsitepackages() if p.endswith("site-packages"))


def _installed_venv(tmp: Path) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.history"))
        else:
            shutil.copy2(path, src / name)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "linetwin_shared_deps.pth").write_text(_shared_site_packages() + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-cache-dir", str(src)], check=True, timeout=300, cwd=tmp, env=_env(tmp))
    shutil.rmtree(src)  # the installed package must not need its sources
    return venv


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LINETWIN_DATA_DIR")}
    env["XDG_DATA_HOME"] = str(tmp / "xdg")
    return env


def _linetwin(venv: Path, cwd: Path, *args: str, timeout: float = 180, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "linetwin"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_installed_package_runs_shipped_lines_from_any_directory(tmp_path: Path):
    venv = _installed_venv(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _env(tmp_path)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import linetwin_examples, twin_server; "
                            "print(linetwin_examples.examples_dir()); print(twin_server.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True, env=env, check=True).stdout.split()
    shipped = Path(where[0])
    assert shipped.is_relative_to(venv) and Path(where[1]).is_relative_to(venv)  # the installed copies

    run = _linetwin(venv, elsewhere, "check", str(shipped / "pilot_line.toml"), env=env)
    assert run.returncode == 0, run.stderr
    copied = elsewhere / "mixed_line.toml"  # a copied shipped line (its column names a shipped case) checks too
    shutil.copy(shipped / "mixed_line.toml", copied)
    run = _linetwin(venv, elsewhere, "check", str(copied), env=env)
    assert run.returncode == 0, run.stderr

    (tmp_path / "pw").write_text("first-admin-password\n")
    run = _linetwin(venv, elsewhere, "init", "new_plant", "--password-file", str(tmp_path / "pw"), env=env)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "xdg" / "linetwin" / "new_plant" / "security" / "users.toml").is_file()
    run = _linetwin(venv, elsewhere, "check", "new_plant/new_plant.toml", env=env)
    assert run.returncode == 0, run.stderr

    data = tmp_path / "demo_data"
    run = _linetwin(venv, elsewhere, "demo", "--port", str(free_tcp_port()), "--duration", "3", "--speed", "10",
                    "--data-dir", str(data), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "linetwin demo: stopped" in run.stdout and (data / "history" / "history.sqlite").is_file()

    run = _linetwin(venv, elsewhere, "simulate", str(shipped / "cases" / "mixing_tank.toml"), "--until", "60",
                    "--out", "mixing.csv", "--quiet", env=env)
    assert run.returncode == 0, run.stderr
    assert (elsewhere / "mixing.csv").stat().st_size > 0

    # on the stepped clock: the demo above already served the installed virtual PLCs and twin over sockets
    run = _linetwin(venv, elsewhere, "hil", "run", str(shipped / "scenarios" / "nominal_natural_cooling.toml"),
                    "--stepped", "--report", "reports/natural.json", timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (elsewhere / "reports" / "natural.json").is_file()
    assert not list(shipped.rglob("*.history")) and not (shipped / "reports").exists()
