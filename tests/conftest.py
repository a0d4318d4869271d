"""Shared test helpers: condition waits with deadlines (never sleeps as synchronisation), free ports, and a real
Dask cluster on loopback (``dask_cluster``: campaigns, sweeps, surrogate training data)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.ports import free_tcp_port

__all__ = ["REPO_ROOT", "free_tcp_port", "wait_until"]

REPO_ROOT = Path(__file__).resolve().parent.parent



async def wait_until(condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 10.0,
                     poll_s: float = 0.02, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; fail the test with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(poll_s)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``serial`` (heavy, timing-sensitive) share one xdist group, so that under ``-n N --dist
    loadgroup`` (the Makefile's test target) they run one after another on one worker, never two at once."""
    for item in items:
        if item.get_closest_marker("serial") is not None:
            item.add_marker(pytest.mark.xdist_group("serial"))


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def peer_config_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``XDG_CONFIG_HOME`` of the independent peers the tests start (node-opcua keeps its client PKI in
    ``$XDG_CONFIG_HOME/node-opcua-default-nodejs``): one per session and worker, never the user's ``~/.config``."""
    return tmp_path_factory.mktemp("xdg_config")


@pytest.fixture(autouse=True)
def linetwin_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, peer_config_home: Path) -> Path:
    """Each test's twin keeps its whole line data dir (history, users, PKI, audit) in its own tmp dir, never in the
    repository or ~/.local/share: ``LINETWIN_DATA_DIR`` and ``XDG_DATA_HOME`` point into the test's tmp dir (and
    so for every subprocess the test starts); the peers it starts keep their configuration out of $HOME too."""
    data_dir = tmp_path / "linetwin_data"
    monkeypatch.setenv("LINETWIN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg_data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(peer_config_home))
    return data_dir


@pytest.fixture
def dask_cluster() -> Iterator[str]:
    """A ``dask scheduler`` and two single-threaded ``dask worker`` processes on 127.0.0.1 (free port), ready."""
    from distributed import Client

    port = free_tcp_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--host",
                 "127.0.0.1", "--dashboard-address", ":0", "--no-nanny"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)  # the condition: both workers registered
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a worker busy in a solve on a loaded machine
                proc.kill()
                proc.wait(timeout=30)
