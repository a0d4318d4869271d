"""The twin's roles, ordered: each role may do everything the one before it may.

- ``viewer``: browse, read, subscribe, HistoryRead;
- ``operator``: + write commanded tags, control mode and targets, StartBatch / StopBatch, acknowledge alarms;
- ``engineer``: + model parameters, limits, surrogate management (where exposed);
- ``admin``: + users and PKI.

Each role maps to the OPC UA well-known role (OPC 10000-3 §4.9.2 / 10000-5 Annex F) a client sees in the
``RolePermissions`` attribute: Observer, Operator, Engineer, SecurityAdmin (their node ids:
:data:`twin_server.security.node_access.WELL_KNOWN_ROLE_IDS`; this module imports no asyncua, so that the user
and audit commands start without it).
"""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ENGINEER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """``"operator"`` → :attr:`OPERATOR`; ValueError naming the choices otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}; expected one of {', '.join(ROLE_NAMES)}") from None


ROLE_NAMES = tuple(r.label for r in Role)
