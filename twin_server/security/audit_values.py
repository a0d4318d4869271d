"""Values as the audit trail records them: bounded, so no client can fill the disk through a refused write.

A number, a boolean, ``None`` and a short text are kept as they are. A long text keeps its first ``text_chars``
characters with its length and a SHA-256 digest of the whole (UTF-8); a ByteString keeps its size and digest
(and its hex when at most :data:`SMALL_BYTES` bytes); an array or structure whose JSON text is longer than
``text_chars`` keeps its item count, the start of its JSON and a digest. The digest lets an auditor confirm a
value someone presents later (``sha256sum``) without the trail holding it.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

DEFAULT_TEXT_CHARS = 256
"""Characters of a text value the audit trail keeps (``[security] audit_value_chars``)."""
SMALL_BYTES = 32
"""A ByteString up to this many bytes is kept as hex besides its digest."""


def _unwrap(value: object) -> object:
    """The plain value inside asyncua wrappers (DataValue → Variant → Value), without importing asyncua."""
    for _ in range(3):
        if type(value).__name__ == "DataValue" and hasattr(value, "Value"):
            value = value.Value
        elif type(value).__name__ == "Variant" and hasattr(value, "Value") and hasattr(value, "VariantType"):
            value = value.Value
        else:
            break
    return value


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bounded_value(value: object, text_chars: int = DEFAULT_TEXT_CHARS) -> object:
    """``value`` in a form of at most about ``text_chars`` + 200 characters of JSON (see the module doc)."""
    value = _unwrap(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else _text(str(value), "Integer", text_chars)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= text_chars else _text(value, "String", text_chars)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        kept: dict[str, Any] = {"type": "ByteString", "bytes": len(data), "sha256": _digest(data)}
        if len(data) <= SMALL_BYTES:
            kept["hex"] = data.hex()
        return kept
    if isinstance(value, list | tuple | dict):
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (TypeError, ValueError, RecursionError):
            text = repr(value)[: 4 * text_chars]
        if len(text) <= text_chars:
            return json.loads(text)
        return {"type": "Structure" if isinstance(value, dict) else "Array", "items": len(value),
                "json_chars": len(text), "sha256": _digest(text.encode("utf-8")), "head": text[:text_chars]}
    return bounded_value(repr(value), text_chars)


def _text(text: str, kind: str, text_chars: int) -> dict[str, Any]:
    return {"type": kind, "chars": len(text), "sha256": _digest(text.encode("utf-8", "surrogatepass")),
            "head": text[:text_chars]}
