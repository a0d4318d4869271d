"""Password hashes: scrypt (RFC 7914) via :func:`hashlib.scrypt`, a random 16-byte salt per user.

Cost parameters follow the OWASP password storage cheat sheet's scrypt minimum (N=2^17, r=8, p=1 needs 128 MiB;
we use N=2^14, r=8, p=1 = 16 MiB, the cost Python's docs and RFC 7914 §2 use for interactive logins) and are stored
with the hash, so they can be raised later without invalidating existing users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """``scrypt$N$r$p$salt_b64$hash_b64`` in the users file."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    def encode(self) -> str:
        b64 = base64.b64encode
        return f"scrypt${self.n}${self.r}${self.p}${b64(self.salt).decode()}${b64(self.digest).decode()}"

    @classmethod
    def decode(cls, text: str) -> PasswordHash:
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("expected scrypt$N$r$p$salt$hash")
        n, r, p = (int(x) for x in parts[1:4])
        return cls(n, r, p, base64.b64decode(parts[4]), base64.b64decode(parts[5]))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024,
                          dklen=KEY_BYTES)


def hash_password(password: str, n: int = SCRYPT_N) -> PasswordHash:
    """A new salt and the scrypt digest of ``password`` at cost ``n`` (a power of 2; default :data:`SCRYPT_N`), the
    cost stored with it."""
    salt = secrets.token_bytes(16)
    return PasswordHash(n, SCRYPT_R, SCRYPT_P, salt, _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P))


def verify_password(password: str, stored: PasswordHash) -> bool:
    """Constant-time comparison of the scrypt digest of ``password`` with ``stored``."""
    candidate = _scrypt(password, stored.salt, stored.n, stored.r, stored.p)
    return hmac.compare_digest(candidate, stored.digest)


def generate_password(n_bytes: int = 12) -> str:
    """A random URL-safe password (``n_bytes`` of entropy, 16 characters for the default 12)."""
    return secrets.token_urlsafe(n_bytes)
