"""``DATA/twin.pid``: says that a twin is serving a line's data directory (so ``linetwin restore`` refuses, and a
second twin on the same directory is refused before it opens the audit store or the history)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class DataDirInUse(RuntimeError):
    """Another live process serves this data directory (names the pid file and the process id)."""


def running_pid(path: Path) -> int | None:
    """The process id in ``path`` if that process is alive, else ``None`` (no file, garbage, or a stale pid)."""
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        return pid
    return pid


class TwinPidFile:
    """The pid file of a running twin: written at start, removed at a clean stop (a stale one is taken over)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def acquire(cls, path: Path) -> TwinPidFile:
        """Write this process's id to ``path``; :class:`DataDirInUse` if another live process holds it."""
        pid = running_pid(path)
        if pid is not None and pid != os.getpid():
            raise DataDirInUse(f"data dir {path.parent} is in use by a running twin (pid {pid}, {path}); stop it or "
                               "choose another --data-dir")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n", encoding="ascii")
        return cls(path)

    def release(self) -> None:
        """Remove the file if it is still this process's."""
        if running_pid(self.path) == os.getpid():
            with contextlib.suppress(OSError):
                self.path.unlink()
