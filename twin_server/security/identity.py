"""Logins: the asyncua user manager that turns an identity token into a :class:`TwinUser` with a :class:`Role`.

- anonymous → ``viewer`` (or refused when ``[security] anonymous = "off"``);
- user name + password → the user's role from the users file, if the scrypt hash matches and the user is enabled;
- X.509 user certificate → the user the certificate is mapped to in the users file.

Until a users file exists, every user-name and certificate login is refused: nothing beyond anonymous is
granted (this closes asyncua's default "admin with any password" login). After ``max_failed_logins`` failures
a known user is locked out for ``lockout_s`` seconds; a client address with repeated failures is throttled
(a growing delay), never locked (:mod:`.lockout`).
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua.crypto.permission_rules import User, UserRole

from twin_server.security.lockout import LoginLockout
from twin_server.security.roles import Role
from twin_server.security.users_file import UsersFile, UsersFileError

log = logging.getLogger("linetwin.security")


@dataclass
class TwinUser(User):
    """A logged-in client: asyncua's ``User`` plus the twin's role and where the client is."""

    twin_role: Role = Role.VIEWER
    client_uri: str = ""
    address: str = ""

    @property
    def label(self) -> str:
        return self.name or "anonymous"

    @property
    def client(self) -> str:
        return " ".join(x for x in (self.client_uri, self.address) if x)


@dataclass
class LoginAttempt:
    """What the session hook knows about the login being checked (set around ``activate_session``)."""

    token: str
    """anonymous | username | certificate"""
    address: str = ""
    client_uri: str = ""
    user_name: str = ""
    refusal: str = ""
    """Why the login was refused (for the audit trail; the client only sees BadUserAccessDenied)."""
    user: TwinUser | None = field(default=None)


CURRENT_LOGIN: contextvars.ContextVar[LoginAttempt | None] = contextvars.ContextVar("linetwin_login", default=None)


class TwinUserManager:
    """asyncua ``UserManager``: ``get_user`` returns a :class:`TwinUser` or None (→ BadUserAccessDenied)."""

    def __init__(self, users_path: Path, anonymous_allowed: bool, lockout: LoginLockout) -> None:
        self.users_path = users_path
        self.anonymous_allowed = anonymous_allowed
        self.lockout = lockout
        self._users = UsersFile(users_path)
        self._stamp: tuple[int, int] | None = None

    def users(self) -> UsersFile:
        """The users file, re-read when it changed on disk (``linetwin user add`` needs no restart)."""
        try:
            st = self.users_path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            self._users, self._stamp = UsersFile(self.users_path), None
            return self._users
        if stamp != self._stamp:
            try:
                self._users = UsersFile.load(self.users_path)
            except UsersFileError as exc:
                log.error("users file not usable, keeping the previous one: %s", exc)
            self._stamp = stamp
        return self._users

    def get_user(self, asyncua_server: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        attempt = CURRENT_LOGIN.get()
        if attempt is None:  # an activation not seen by the session hook: grant nothing
            return None
        user = self._check(attempt, username, password, certificate)
        attempt.user = user
        return user

    def _check(self, attempt: LoginAttempt, username: str | None, password: str | None,
               certificate: Any) -> TwinUser | None:
        if attempt.token == "anonymous":
            if not self.anonymous_allowed:
                attempt.refusal = "anonymous access is off ([security] anonymous = \"off\")"
                return None
            return TwinUser(role=UserRole.Anonymous, name=None, twin_role=Role.VIEWER, client_uri=attempt.client_uri,
                            address=attempt.address)
        address = attempt.address.rsplit(":", 1)[0] if attempt.address else ""
        users = self.users()
        if attempt.token == "certificate":
            record = users.find_by_certificate(certificate) if isinstance(certificate, bytes | bytearray) else None
            attempt.user_name = record.name if record else "(unmapped certificate)"
        else:
            attempt.user_name = (username or "")[:64]
            record = users.users.get(username or "")
        known = record.name if record is not None else None
        refused = self.lockout.refusal(known, address)
        if refused is not None:
            attempt.refusal = refused
            return None
        if not users.exists():
            reason = f"no users file yet ({self.users_path}): only anonymous access until `linetwin user add`"
        elif record is None:
            reason = "unknown user" if attempt.token == "username" else "certificate not mapped to a user"
        elif record.disabled:
            reason = "user disabled"
        elif attempt.token == "username" and not record.check_password(password or ""):
            reason = "wrong password"
        else:
            self.lockout.succeeded(known, address)
            return TwinUser(role=UserRole.User, name=record.name, twin_role=record.role,
                            client_uri=attempt.client_uri, address=attempt.address)
        caused = self.lockout.failed(known, address)
        attempt.refusal = f"{reason}; {caused}" if caused else reason
        return None
