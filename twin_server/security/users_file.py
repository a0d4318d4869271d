"""The users file (TOML): one ``[users.NAME]`` table per user.

.. code-block:: toml

    [users.alice]
    role = "operator"                 # viewer | operator | engineer | admin
    password = "scrypt$16384$8$1$…"   # written by `linetwin user add`, never plain text
    disabled = false
    certificate_sha256 = ["ab12…"]    # optional: X.509 user certificates (SHA-256 of the DER) mapped to this user

The file is rewritten atomically (temporary file + rename) with mode 0600; bad content is reported as
``FILE: KEY: got …; expected …`` and nothing is changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from twin_server.security.passwords import PasswordHash, hash_password, verify_password
from twin_server.security.roles import ROLE_NAMES, Role

USERS_FILE = "users.toml"
"""The users file's name in a line data dir's ``security/`` folder."""
USER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class UsersFileError(Exception):
    """The users file or a request to change it is not valid; the message names file, key and expectation."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    role: Role
    password: PasswordHash | None = None
    disabled: bool = False
    certificate_sha256: tuple[str, ...] = field(default_factory=tuple)

    def check_password(self, password: str) -> bool:
        return self.password is not None and verify_password(password, self.password)


def certificate_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, lower-case hex (what ``certificate_sha256`` holds)."""
    return hashlib.sha256(der).hexdigest()


class UsersFile:
    """The users of one twin, read from and written to ``path``."""

    def __init__(self, path: Path, users: dict[str, UserRecord] | None = None) -> None:
        self.path = path
        self.users: dict[str, UserRecord] = dict(users or {})

    @classmethod
    def load(cls, path: Path) -> UsersFile:
        """Read ``path``; a missing file is an empty user list (see :meth:`exists`)."""
        if not path.is_file():
            return cls(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsersFileError(f"{path}: <file>: got {exc}; expected a readable TOML users file") from exc
        users: dict[str, UserRecord] = {}
        raw_users = data.get("users", {})
        if not isinstance(raw_users, dict):
            raise UsersFileError(f"{path}: users: got {type(raw_users).__name__}; expected a table [users.NAME]")
        for name, raw in raw_users.items():
            users[name] = _parse_user(path, name, raw)
        return cls(path, users)

    def exists(self) -> bool:
        return self.path.is_file()

    def find_by_certificate(self, der: bytes) -> UserRecord | None:
        thumb = certificate_fingerprint(der)
        return next((u for u in self.users.values() if thumb in u.certificate_sha256), None)

    def add(self, name: str, role: Role, password: str | None, replace_existing: bool = False) -> UserRecord:
        if not USER_NAME_RE.match(name):
            raise UsersFileError(f"{self.path}: users.{name}: got {name!r}; expected a user name of letters, "
                                 "digits, _ . - starting with a letter (at most 64)")
        if name in self.users and not replace_existing:
            raise UsersFileError(f"{self.path}: users.{name}: got an existing user; expected a new name "
                                 "(use --replace to change it)")
        if password is not None and len(password) < 8:
            raise UsersFileError(f"{self.path}: users.{name}.password: got {len(password)} characters; "
                                 "expected at least 8")
        old = self.users.get(name)
        record = UserRecord(name=name, role=role, password=hash_password(password) if password is not None else None,
                            certificate_sha256=old.certificate_sha256 if old else ())
        self.users[name] = record
        return record

    def set_disabled(self, name: str, disabled: bool = True) -> UserRecord:
        record = self._get(name)
        self.users[name] = replace(record, disabled=disabled)
        return self.users[name]

    def map_certificate(self, name: str, der: bytes) -> UserRecord:
        record = self._get(name)
        thumb = certificate_fingerprint(der)
        if thumb not in record.certificate_sha256:
            record = replace(record, certificate_sha256=(*record.certificate_sha256, thumb))
        self.users[name] = record
        return record

    def _get(self, name: str) -> UserRecord:
        if name not in self.users:
            raise UsersFileError(f"{self.path}: users.{name}: got no such user; expected one of "
                                 f"{', '.join(sorted(self.users)) or '(none)'}")
        return self.users[name]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# linetwin users (edit with `linetwin user add|list|disable`). Passwords are scrypt hashes.", ""]
        for u in sorted(self.users.values(), key=lambda u: u.name):
            lines.append(f"[users.{_toml_key(u.name)}]")
            lines.append(f'role = "{u.role.label}"')
            if u.password is not None:
                lines.append(f'password = "{u.password.encode()}"')
            lines.append(f"disabled = {'true' if u.disabled else 'false'}")
            if u.certificate_sha256:
                lines.append("certificate_sha256 = [" + ", ".join(f'"{c}"' for c in u.certificate_sha256) + "]")
            lines.append("")
        fd, tmp = tempfile.mkstemp(prefix=".users-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _toml_key(name: str) -> str:
    return name if re.match(r"^[A-Za-z0-9_-]+$", name) else f'"{name}"'


def _parse_user(path: Path, name: str, raw: object) -> UserRecord:
    key = f"users.{name}"
    if not isinstance(raw, dict):
        raise UsersFileError(f"{path}: {key}: got {type(raw).__name__}; expected a table")
    if not USER_NAME_RE.match(name):
        raise UsersFileError(f"{path}: {key}: got {name[:70]!r}; expected a user name of letters, digits, _ . -")
    unknown = set(raw) - {"role", "password", "disabled", "certificate_sha256"}
    if unknown:
        raise UsersFileError(f"{path}: {key}.{sorted(unknown)[0]}: got an unknown key; expected one of "
                             "certificate_sha256, disabled, password, role")
    try:
        role = Role.parse(str(raw.get("role", "")))
    except ValueError:
        raise UsersFileError(f"{path}: {key}.role: got {raw.get('role')!r}; expected one of "
                             f"{', '.join(ROLE_NAMES)}") from None
    password = None
    if "password" in raw:
        try:
            password = PasswordHash.decode(str(raw["password"]))
        except ValueError:
            raise UsersFileError(f"{path}: {key}.password: got a value that is not a scrypt hash; expected "
                                 "scrypt$N$r$p$salt$hash (set it with `linetwin user add`)") from None
    disabled = raw.get("disabled", False)
    if not isinstance(disabled, bool):
        raise UsersFileError(f"{path}: {key}.disabled: got {disabled!r}; expected true or false")
    certs = raw.get("certificate_sha256", [])
    if not isinstance(certs, list) or not all(isinstance(c, str) and re.fullmatch(r"[0-9a-f]{64}", c) for c in certs):
        raise UsersFileError(f"{path}: {key}.certificate_sha256: got {certs!r:.80}; expected a list of SHA-256 "
                             "hex fingerprints")
    return UserRecord(name=name, role=role, password=password, disabled=disabled, certificate_sha256=tuple(certs))
