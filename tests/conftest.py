"""Shared test helpers: condition waits with deadlines (never sleeps as synchronisation) and free ports."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(autouse=True)
def linetwin_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's twin keeps its whole line data dir (history, users, PKI, audit) in its own tmp dir, never in the
    repository or ~/.local/share: ``LINETWIN_DATA_DIR`` and ``XDG_DATA_HOME`` point into the test's tmp dir (and
    so for every subprocess the test starts)."""
    data_dir = tmp_path / "linetwin_data"
    monkeypatch.setenv("LINETWIN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg_data"))
    return data_dir
