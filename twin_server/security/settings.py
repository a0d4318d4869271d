"""The ``[security]`` table of a line config.

.. code-block:: toml

    [security]
    allow_none = false           # serve a SecurityPolicy None endpoint too (default false; demo only)
    policies = ["Basic256Sha256_SignAndEncrypt", "Aes256Sha256RsaPss_SignAndEncrypt"]   # default: all four below
    anonymous = "viewer"         # "viewer" (browse/read/subscribe/HistoryRead) or "off"
    data_dir = "security"        # users.toml, pki/, audit.sqlite; relative = to the line's data dir (the default)
    max_failed_logins = 5        # then a known user is locked out …
    lockout_s = 300              # … for this many seconds
    audit_max_bytes = 268435456  # audit store budget on disk (all segments); the oldest segment goes beyond it
    audit_segments = 8           # segments the budget is split into (rotation when one is full)
    audit_value_chars = 256      # characters of a text value kept in the audit trail (longer: head + SHA-256)
    audit_refusals_per_minute = 20   # refusals per client recorded singly per minute; beyond, one summary entry
    audit_key_file = "/etc/linetwin/pilot_line.audit.key"  # chain key (default security/audit.key); relative: to config
    login_throttle_after = 3     # failed logins from one address before it must wait …
    login_throttle_s = 1.0       # … this long, doubling with each further failure …
    login_throttle_max_s = 60.0  # … up to this (an address is throttled, never locked)
    audit_events_role = "engineer"   # who sees login/audit events (event history, event subscriptions)

    [security.limits]            # every request bounded (twin_server/security/request_limits.py)
    max_nodes_per_read = 10000

The folder is ``DATA/security`` of the line's data directory (:mod:`twin_server.data_dir`:
``--data-dir``, else ``$LINETWIN_DATA_DIR``, else ``$XDG_DATA_HOME/linetwin/<line>``); ``data_dir`` moves it
(relative to ``DATA``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plc_adapters.config_issues import IssueCollector
from twin_server.security.request_limits import RequestLimits, parse_request_limits

if TYPE_CHECKING:
    from asyncua import ua

SECURE_POLICIES = ("Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt",
                   "Aes256Sha256RsaPss_Sign", "Aes256Sha256RsaPss_SignAndEncrypt")
ANONYMOUS_CHOICES = ("viewer", "off")
AUDIT_ROLE_CHOICES = ("viewer", "operator", "engineer", "admin")
"""The roles of :mod:`.roles`, lowest first (named here: loading a config imports no asyncua)."""
SECURITY_KEYS = {"allow_none", "policies", "anonymous", "data_dir", "max_failed_logins", "lockout_s",
                 "audit_max_bytes", "audit_segments", "audit_value_chars", "audit_refusals_per_minute",
                 "audit_key_file", "login_throttle_after", "login_throttle_s", "login_throttle_max_s",
                 "audit_events_role", "limits"}
AUDIT_INTS = {"audit_max_bytes": (1 << 20, 1 << 40), "audit_segments": (2, 1000), "audit_value_chars": (16, 65536),
              "audit_refusals_per_minute": (1, 100_000)}
"""Integer audit keys and their ranges (inclusive)."""


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    allow_none: bool = False
    policies: tuple[str, ...] = SECURE_POLICIES
    anonymous: str = "viewer"
    data_dir: Path | None = None
    max_failed_logins: int = 5
    lockout_s: float = 300.0
    audit_max_bytes: int = 256 * 1024 * 1024
    audit_segments: int = 8
    audit_value_chars: int = 256
    audit_refusals_per_minute: int = 20
    audit_key_file: Path | None = None
    """None: ``audit.key`` in the data dir."""
    login_throttle_after: int = 3
    login_throttle_s: float = 1.0
    login_throttle_max_s: float = 60.0
    audit_events_role: str = "engineer"
    limits: RequestLimits = RequestLimits()

    def resolved_audit_key_file(self, security_dir: Path) -> Path:
        """The audit chain's key file: ``audit_key_file`` (relative: to the config file, kept apart from the data),
        else ``audit.key`` in the line's security folder ``security_dir``."""
        return self.audit_key_file or security_dir / "audit.key"

    def policy_types(self) -> list[ua.SecurityPolicyType]:
        from asyncua import ua

        types = [ua.SecurityPolicyType[p] for p in self.policies]
        return ([ua.SecurityPolicyType.NoSecurity] if self.allow_none else []) + types




def parse_security(c: IssueCollector, raw: Mapping[str, Any] | None, config_dir: Path | None) -> SecuritySettings:
    """Validate the ``[security]`` table (``None``: defaults); ``config_dir``: the config file's folder (a relative
    ``audit_key_file`` is relative to it; ``data_dir`` is relative to the line's data dir). Problems go to ``c``;
    the result uses defaults for keys that were wrong."""
    if raw is None:
        return SecuritySettings()
    if not isinstance(raw, Mapping):
        c.add("security", raw, "a table [security]")
        return SecuritySettings()
    defaults = SecuritySettings()
    for key in raw:
        if key not in SECURITY_KEYS:
            c.add(f"security.{key}", "an unknown key", "one of " + ", ".join(sorted(SECURITY_KEYS)))
    allow_none = raw.get("allow_none", False)
    if not isinstance(allow_none, bool):
        c.add("security.allow_none", allow_none, "true or false")
        allow_none = False
    policies = raw.get("policies", list(SECURE_POLICIES))
    if (not isinstance(policies, list) or not all(isinstance(p, str) and p in SECURE_POLICIES for p in policies)
            or len(set(policies)) != len(policies)):
        c.add("security.policies", policies, "a list of distinct names from " + ", ".join(SECURE_POLICIES))
        policies = list(SECURE_POLICIES)
    if not policies and not allow_none:
        c.add("security.policies", policies, "at least one policy (or allow_none = true)")
    anonymous = raw.get("anonymous", "viewer")
    if anonymous not in ANONYMOUS_CHOICES:
        c.add("security.anonymous", anonymous, "one of " + ", ".join(ANONYMOUS_CHOICES))
        anonymous = "viewer"
    data_dir = None
    if "data_dir" in raw:
        value = raw["data_dir"]
        if not isinstance(value, str) or not value.strip() or len(value) > 4096 or "\x00" in value:
            c.add("security.data_dir", value, "a directory path")
        else:
            data_dir = Path(value).expanduser()  # relative: to the line's data dir (twin_server.data_dir)
    max_failed = raw.get("max_failed_logins", defaults.max_failed_logins)
    if isinstance(max_failed, bool) or not isinstance(max_failed, int) or not 1 <= max_failed <= 1000:
        c.add("security.max_failed_logins", max_failed, "an integer in [1, 1000]")
        max_failed = defaults.max_failed_logins
    lockout_s = raw.get("lockout_s", defaults.lockout_s)
    if isinstance(lockout_s, bool) or not isinstance(lockout_s, int | float) or not 0 < lockout_s <= 86400:
        c.add("security.lockout_s", lockout_s, "a number of seconds > 0 and <= 86400")
        lockout_s = defaults.lockout_s
    return SecuritySettings(allow_none=allow_none, policies=tuple(policies), anonymous=anonymous, data_dir=data_dir,
                            max_failed_logins=max_failed, lockout_s=float(lockout_s),
                            **parse_audit_keys(c, raw, config_dir), **parse_request_keys(raw, c.add))


def parse_request_keys(raw: Mapping[str, Any], add: Callable[[str, object, str], None]) -> dict[str, Any]:
    """The throttle, audit-role and request-limit keys of ``[security]`` (wrong ones reported to ``add`` and left
    at their defaults)."""
    defaults = SecuritySettings()
    out: dict[str, Any] = {"limits": parse_request_limits(raw.get("limits"), add)}
    after = raw.get("login_throttle_after", defaults.login_throttle_after)
    if isinstance(after, bool) or not isinstance(after, int) or not 1 <= after <= 1000:
        add("security.login_throttle_after", after, "an integer in [1, 1000]")
        after = defaults.login_throttle_after
    out["login_throttle_after"] = after
    for key in ("login_throttle_s", "login_throttle_max_s"):
        value = raw.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400:
            add(f"security.{key}", value, "a number of seconds > 0 and <= 86400")
            value = getattr(defaults, key)
        out[key] = float(value)
    role = raw.get("audit_events_role", defaults.audit_events_role)
    if role not in AUDIT_ROLE_CHOICES:
        add("security.audit_events_role", role, "one of " + ", ".join(AUDIT_ROLE_CHOICES))
        role = defaults.audit_events_role
    out["audit_events_role"] = role
    return out


def parse_audit_keys(c: IssueCollector, raw: Mapping[str, Any], config_dir: Path | None) -> dict[str, Any]:
    """The ``audit_*`` keys of ``[security]`` (wrong ones reported to ``c`` and left at their defaults)."""
    defaults = SecuritySettings()
    audit: dict[str, Any] = {}
    for key, (low, high) in AUDIT_INTS.items():
        value = raw.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            c.add(f"security.{key}", value, f"an integer in [{low}, {high}]")
            value = getattr(defaults, key)
        audit[key] = value
    if "audit_key_file" in raw:
        value = raw["audit_key_file"]
        if not isinstance(value, str) or not value.strip() or len(value) > 4096 or "\x00" in value:
            c.add("security.audit_key_file", value, "a file path")
        else:
            path = Path(value).expanduser()
            audit["audit_key_file"] = path if path.is_absolute() or config_dir is None else config_dir / path
    return audit
