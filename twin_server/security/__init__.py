"""Security of the twin: users and roles, per-node permissions, PKI and encrypted endpoints, the audit store.

Modules (one job each):

- :mod:`.roles` — the four roles (viewer < operator < engineer < admin) and their OPC UA well-known role ids;
- :mod:`.passwords` — scrypt password hashes;
- :mod:`.users_file` — the users file (TOML): users, roles, password hashes, X.509 user certificates;
- :mod:`.lockout` — failed-login lock-out per known user name, throttle (growing delay) per client address;
- :mod:`.request_limits` — ``[security.limits]``: every request bounded, answered with the Part 4 code;
- :mod:`.identity` — the asyncua user manager that turns a login into a :class:`~.identity.TwinUser`;
- :mod:`.node_access` — which role may write / call / read history of which node; RolePermissions attributes;
- :mod:`.sessions` — the session hooks (Call, HistoryRead, node management, login/logout audit), installed through
  the asyncua seam (:mod:`plc_adapters.asyncua_seam`, the only module that touches asyncua's internals);
- :mod:`.settings` — the ``[security]`` table of the line config;
- :mod:`.pki` — the PKI folder (own / trusted / rejected) and the client-certificate validator;
- :mod:`.audit_values` — values as the audit trail keeps them (bounded: size and SHA-256 of large ones);
- :mod:`.audit_refusals` — refusals from one client beyond a rate aggregated into one summary entry;
- :mod:`.audit_key` — the HMAC-SHA256 key of the audit chain (key file, 0600);
- :mod:`.audit_chain` — the stored form of an entry, its keyed hash, the store's segment files;
- :mod:`.audit_store` — the append-only SQLite audit store: keyed hash chain, size budget, segments, rotation;
- :mod:`.audit_verify` — ``audit verify`` (one snapshot per segment, across segments) and ``audit export``;
- :mod:`.audit_admin` — the audit store as the admin commands use it;
- :mod:`.audit_events` — OPC UA AuditEvents for event subscribers of the Server object;
- :mod:`.setup` — wires all of it into an asyncua server (called by :mod:`twin_server.server`).

The ``linetwin user | pki | audit`` commands are :mod:`linetwin_cli.user`, :mod:`linetwin_cli.pki` and
:mod:`linetwin_cli.audit`.
"""
