"""The audit chain's key: HMAC-SHA256 (RFC 2104, FIPS 198-1) over each entry, so a trail re-chained without the key
(edit an entry, recompute every later hash, update the head) fails ``linetwin audit verify``.

The key is 32 random bytes kept as 64 hex characters in a file of mode 0600 (default ``audit.key`` in the line's
data dir; ``[security] audit_key_file`` puts it elsewhere, e.g. where the twin's account can read it but whoever
may edit the store cannot). The store keeps only the key's id (an HMAC of a fixed text), never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = "audit.key"
KEY_BYTES = 32


class AuditKeyError(ValueError):
    """A key file that is missing, malformed or not the key the store was written with."""


def key_id(key: bytes) -> str:
    """A public id of the key (first 16 hex of HMAC-SHA256(key, "linetwin audit key id"))."""
    return hmac.new(key, b"linetwin audit key id", hashlib.sha256).hexdigest()[:16]


def entry_mac(key: bytes, prev_hash: str, canonical: str) -> str:
    """HMAC-SHA256 of an entry: the previous entry's hash followed by the entry's canonical JSON (hex)."""
    return hmac.new(key, (prev_hash + canonical).encode("utf-8"), hashlib.sha256).hexdigest()


def load_key(path: Path) -> bytes:
    """The key in ``path``; :class:`AuditKeyError` naming the file and what was expected otherwise."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise AuditKeyError(f"{path}: audit key file not found; expected the key the audit writer uses "
                            f"(default {KEY_FILE} in the line's data dir, or [security] audit_key_file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(f"{path}: audit key file unreadable ({exc}); expected {2 * KEY_BYTES} hex "
                            "characters") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise AuditKeyError(f"{path}: got {len(text)} characters that are not a key; expected {2 * KEY_BYTES} hex "
                            "characters (an audit key file written by linetwin)")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, created (32 random bytes, mode 0600, directory 0700) if the file does not exist."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_key(path)  # another process created it a moment ago
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
    os.chmod(path, 0o600)
    return load_key(path)

