"""Failed logins (IEC 62443-4-2 CR 1.11): lock-out that stops guessing, not operators.

Two mechanisms, so that a script behind the plant's NAT or gateway cannot lock every operator out:

- **per known user name**: after ``max_failures`` failed logins of one user of the users file within
  ``window_s`` seconds, that user is locked for ``lockout_s`` seconds, from every address (even the right
  password is refused while locked). A success clears the user's count. User names that are not in the users
  file are never locked (nothing to protect, and locking them would tell a guesser which names exist).
- **per client address**: every failed login from an address (unknown name, wrong password, disabled user …)
  counts; from the ``throttle_after``-th failure within ``window_s`` on, the address must wait
  ``throttle_s × 2^(failures − throttle_after)`` seconds (at most ``throttle_max_s``) before its next attempt
  is even checked. Attempts during the wait are refused without being checked and without counting, so a real
  user's correct password from that address gets in once the delay has passed.

Both are in memory (a restart clears them). Every refusal names the mechanism in the audit trail
(``locked out … (user:NAME)``, ``throttled … (addr:IP)``); the client only ever sees BadUserAccessDenied.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_TRACKED = 100_000
"""User names / addresses whose failures are remembered (beyond: stale ones, then the oldest, are forgotten)."""


@dataclass
class LoginLockout:
    max_failures: int = 5
    lockout_s: float = 300.0
    window_s: float = 600.0
    throttle_after: int = 3
    throttle_s: float = 1.0
    throttle_max_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _user_failures: dict[str, list[float]] = field(default_factory=dict)
    _user_locked_until: dict[str, float] = field(default_factory=dict)
    _addr_failures: dict[str, list[float]] = field(default_factory=dict)
    _addr_not_before: dict[str, float] = field(default_factory=dict)

    def refusal(self, user: str | None, address: str | None) -> str | None:
        """Why a login of the known ``user`` (None: a name not in the users file) from ``address`` is refused
        before its credentials are checked, or None."""
        now = self.clock()
        if user is not None:
            until = self._user_locked_until.get(user)
            if until is not None and now < until:
                return f"locked out after repeated failed logins (user:{user})"
            if until is not None:
                del self._user_locked_until[user]
        if address:
            not_before = self._addr_not_before.get(address)
            if not_before is not None and now < not_before:
                return f"throttled after repeated failed logins, retry in {not_before - now:.1f} s (addr:{address})"
        return None

    def failed(self, user: str | None, address: str | None) -> str:
        """Count one failure of the known ``user`` (None: unknown name) from ``address``; returns what it caused
        (``""``, or e.g. ``now locked out for 300 s (user:alice)``)."""
        now = self.clock()
        caused = []
        if user is not None:
            recent = self._recent(self._user_failures, user, now)
            if len(recent) >= self.max_failures:
                self._user_locked_until[user] = now + self.lockout_s
                self._user_failures[user] = []
                caused.append(f"now locked out for {self.lockout_s:g} s (user:{user})")
        if address:
            recent = self._recent(self._addr_failures, address, now)
            if len(recent) >= self.throttle_after:
                delay = min(self.throttle_s * 2.0 ** (len(recent) - self.throttle_after), self.throttle_max_s)
                self._addr_not_before[address] = now + delay
                caused.append(f"address throttled for {delay:g} s (addr:{address})")
        return "; ".join(caused)

    def succeeded(self, user: str | None, address: str | None) -> None:
        """A correct login: the user's failures are cleared (the address keeps its count until the window ends)."""
        if user is not None:
            self._user_failures.pop(user, None)

    def _recent(self, table: dict[str, list[float]], key: str, now: float) -> list[float]:
        recent = [t for t in table.get(key, []) if now - t < self.window_s] + [now]
        table[key] = recent
        if len(table) > MAX_TRACKED:  # bound memory against a flood of names / addresses: forget the stale
            for stale in [k for k, times in table.items() if now - times[-1] >= self.window_s]:
                del table[stale]
            while len(table) > MAX_TRACKED:
                del table[next(iter(table))]  # oldest inserted first
        return recent
