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
from typing import Any

import pytest

from tests.ports import free_tcp_port

__all__ = ["REPO_ROOT", "free_tcp_port", "wait_until", "write_accepted"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_EXAMPLES = REPO_ROOT / "examples"
"""The shipped lines, scenarios and cases: tests read them and never write beside them (a twin's history or PKI
goes to its data dir, under the test's tmp dir)."""
_examples_before: set[Path] = set()

DASK_DIAGNOSTICS_OFF = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",          # a stack sample of every thread every 10 ms
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__GIL__ENABLED": "False",  # a GIL probe every 1 ms
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "2s",      # CPU/memory/disk figures (500 ms)
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",                 # the event-loop blocking probe (20 ms)
}
"""Dask's own diagnostics, which no test reads, off or slowed for every scheduler and worker the tests start (the
session cluster, and the clusters a ``linetwin`` command starts, which inherit the environment): an idle
scheduler with two workers took 5 % of a core with them (1.5 CPU s per 30 s), 1.4 % without; for the suite's
minutes that is ~12 CPU s of a 2-core machine. Nothing a test checks depends on them."""
os.environ.update(DASK_DIAGNOSTICS_OFF)


def pytest_sessionstart(session: pytest.Session) -> None:
    _examples_before.update(_files(SHIPPED_EXAMPLES))


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def _untracked(paths: list[Path]) -> list[Path]:
    """``paths`` less the files git tracks (a checkout updated while the suite ran)."""
    if not paths:
        return paths
    try:
        tracked = subprocess.run(["git", "ls-files", "--", *map(str, paths)], cwd=REPO_ROOT, capture_output=True,
                                 text=True, timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout: every new path counts
        return paths
    return [p for p in paths if str(p.relative_to(REPO_ROOT)) not in tracked]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test left a new file in ``examples/`` that git does not track (e.g.
    ``pilot_line.history/history.sqlite`` beside the config: the historian's default before the one data dir)."""
    new = _untracked(sorted(_files(SHIPPED_EXAMPLES) - _examples_before))
    if new:
        listed = ", ".join(str(p.relative_to(REPO_ROOT)) for p in new[:5])
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"tests wrote into the repository: {listed}{' ...' if len(new) > 5 else ''}"
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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


async def write_accepted(node: Any, value: float) -> bool:
    """Write ``value`` to an OPC UA ``node`` as a Double; True when accepted, False when the twin's write guard
    refuses it as out of range. The rate rule bounds a step by the time since the PLC took its value, so a write
    right after the first read-back may be refused a moment before it would not be: use it as a ``wait_until``
    condition."""
    from asyncua import ua

    try:
        await node.write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Double)))
    except ua.uaerrors.BadOutOfRange:
        return False
    return True


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns each item's xdist_group into its scope
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``serial`` (heavy, timing-sensitive) share one xdist group, so that under ``-n N --dist
    loadgroup`` (the Makefile's test target) they run one after another on one worker, never two at once. Tests
    marked ``dask`` (users of the session's ``dask_cluster``) share another, so one cluster serves them all; it
    can go to another worker than the serial group (together they were the suite's tail: ~400 s on one worker).
    In a module marked ``shares_module_fixture`` the tests that use a module-scoped fixture (and have no group of
    their own) share a group too, so that one worker builds the fixture once.

    On an xdist worker, the tests marked ``slow`` (the suite's long poles, tens of seconds each) come first in the
    collection: ``loadgroup`` hands out the xdist groups (largest first), then single tests in collection order, so
    a long test collected late would start when the other workers are nearly done and stretch the run by its whole
    length. The other tests follow with each package's modules spread evenly over the run (:func:`_spread_modules`).
    The order of a single-process run (``-n 0``) is left as collected."""
    for item in items:
        if item.get_closest_marker("serial") is not None:
            item.add_marker(pytest.mark.xdist_group("serial"))
        elif item.get_closest_marker("dask") is not None:
            item.add_marker(pytest.mark.xdist_group("dask"))
        elif item.get_closest_marker("shares_module_fixture") and item.get_closest_marker("xdist_group") is None \
                and _uses_module_fixture(item):
            # one worker builds the module's shared fixture (a live line, a trained surrogate) once, rather than
            # every worker that is handed one of its tests building its own
            item.add_marker(pytest.mark.xdist_group(f"module:{item.nodeid.split('::')[0]}"))
    if hasattr(config, "workerinput"):  # the same order on every worker: xdist checks that collections agree
        _spread_modules(items)
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: slow first, else as spread
        if getattr(config.option, "loadgroup", False):
            _name_the_groups(items)


def _spread_modules(items: list[pytest.Item]) -> None:
    """Order the modules so that each package's modules are spread evenly over the run (module i of a package of n
    at ``(i + 0.5) / n``), each module's tests kept together and in order (so a worker that gets several tests of a
    module in a row keeps its module-scoped fixtures). In collection order the last minute of a run was
    twin_server's tests alone, most of them waiting on sockets and timeouts with both cores half idle; spread, the
    CPU-bound model and controller tests share every part of the run with them."""
    modules: dict[str, list[str]] = {}
    for item in items:
        path = item.nodeid.split("::")[0]
        package = path.split("/")[1] if path.count("/") > 1 else ""
        if path not in modules.setdefault(package, []):
            modules[package].append(path)
    position = {path: ((i + 0.5) / len(paths), package)
                for package, paths in modules.items() for i, path in enumerate(paths)}
    items.sort(key=lambda item: position[item.nodeid.split("::")[0]])  # stable: a module's tests stay in order


def _name_the_groups(items: list[pytest.Item]) -> None:
    """Put each item's xdist group into its node id (``…::test@group``), which is how ``loadgroup`` learns the
    groups. pytest-xdist 3.8 does it by assigning ``item._nodeid``, which pytest 9.2's structured node ids ignore:
    every group was silently split over the workers (pytest-dev/pytest-xdist#1386, fix pending in #1388). This sets
    the structured id the same way; with a pytest whose items still have ``_nodeid``, xdist's own hook does it."""
    from _pytest.nodeid import NodeId

    for item in items:
        if hasattr(item, "_nodeid") or not hasattr(item, "_id") or "@" in item.nodeid.rsplit("]", 1)[-1]:
            continue
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        if groups:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")  # noqa: SLF001 - see the docstring


def _uses_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs and defs[-1].scope == "module" for defs in info.name2fixturedefs.values())


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


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[str]:
    """A ``dask scheduler`` and two single-threaded ``dask worker`` processes on 127.0.0.1 (free port), ready; one
    per session (and xdist worker: its users are all marked ``dask``, so one cluster serves them all). Its users
    only submit work to it through a client of their own and read the results back; none stops or configures it.
    Its processes keep the environment of the first test that asked for it (that test's ``LINETWIN_DATA_DIR``),
    which none of the tasks reads: campaign runs and training data go to the ``--out`` each test names.

    At the end the processes are killed, not terminated: the cluster is discarded, and a dask process's graceful
    exit on a loaded machine took 15–30 s of interpreter teardown after it had closed its comms (the suite's CI run
    showed 30 s and 60 s teardowns waiting on it), which proves nothing here."""
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
            proc.kill()
        for proc in procs:
            proc.wait(timeout=30)
