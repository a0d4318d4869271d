"""Lock-out after repeated failed logins (IEC 62443-4-2 CR 1.11): after ``max_failures`` failures within
``window_s`` seconds, the user name and the client address are each locked for ``lockout_s`` seconds; a success
clears the user's count. While locked, even the right password is refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoginLockout:
    max_failures: int = 5
    lockout_s: float = 300.0
    window_s: float = 600.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def locked(self, *keys: str) -> str | None:
        """The first of ``keys`` (``user:NAME``, ``addr:IP``) that is locked now, or None."""
        now = self.clock()
        for key in keys:
            until = self._locked_until.get(key)
            if until is not None and now < until:
                return key
            if until is not None:
                del self._locked_until[key]
        return None

    def failed(self, *keys: str) -> list[str]:
        """Count one failure for each key; returns the keys that became locked now."""
        now = self.clock()
        newly = []
        for key in keys:
            recent = [t for t in self._failures.get(key, []) if now - t < self.window_s] + [now]
            self._failures[key] = recent
            if len(recent) >= self.max_failures:
                self._locked_until[key] = now + self.lockout_s
                self._failures[key] = []
                newly.append(key)
        return newly

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
