"""One data directory per line: where a twin keeps everything it writes (docs/data-directory.md).

.. code-block:: text

    DATA/                      --data-dir, else $LINETWIN_DATA_DIR, else $XDG_DATA_HOME/linetwin/<line>
                               (~/.local/share/linetwin/<line>)
      history/                 the historian ([historian] data_dir, relative to DATA): history.sqlite or the
                               InfluxDB forward buffer
      security/                [security] data_dir, relative to DATA
        users.toml             users, roles, password hashes, certificate mappings
        pki/                   own certificate and key, trusted/ and rejected/ client certificates
        audit.sqlite           the hash-chained audit trail
      parameter_sets/          versioned model parameter sets
        deployments/<unit>.json  the unit's deployed set: history and pending switch (parameter_deployment.py)
      surrogates/              trained surrogate artefacts
      reports/                 HIL and fit reports
      twin.pid                 present while a twin serves this directory (restore refuses then)

Every command (``demo``, ``serve``, ``hil run``, ``history``, ``user``, ``pki``, ``audit``, ``backup``,
``restore``) takes the same ``--data-dir`` meaning the folder ``DATA``; ``backup`` copies it as a whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin_server.config import LineConfig

ENV_DATA_DIR = "LINETWIN_DATA_DIR"
HISTORY_DIR = "history"
SECURITY_DIR = "security"
PARAMETER_SETS_DIR = "parameter_sets"
SURROGATES_DIR = "surrogates"
REPORTS_DIR = "reports"
PID_FILE = "twin.pid"


def default_data_root(line_name: str) -> Path:
    """``$LINETWIN_DATA_DIR`` if set, else ``$XDG_DATA_HOME/linetwin/<line>`` (``~/.local/share/linetwin/<line>``)."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "linetwin" / line_name


def _under(root: Path, configured: str | Path | None, default: str) -> Path:
    if configured is None or str(configured) == "":
        return root / default
    p = Path(configured).expanduser()
    return p if p.is_absolute() else root / p


@dataclass(frozen=True, slots=True)
class LineDataDir:
    """The folders of one line's data directory (nothing is created here; each owner creates its folder)."""

    root: Path
    history: Path
    security: Path

    @property
    def users_file(self) -> Path:
        return self.security / "users.toml"

    @property
    def pki(self) -> Path:
        return self.security / "pki"

    @property
    def audit_db(self) -> Path:
        from twin_server.security.audit_store import AUDIT_DB

        return self.security / AUDIT_DB

    @property
    def parameter_sets(self) -> Path:
        return self.root / PARAMETER_SETS_DIR

    @property
    def surrogates(self) -> Path:
        return self.root / SURROGATES_DIR

    @property
    def reports(self) -> Path:
        return self.root / REPORTS_DIR

    @property
    def pid_file(self) -> Path:
        return self.root / PID_FILE


def layout(root: Path, history: str | Path | None = None, security: str | Path | None = None) -> LineDataDir:
    """The layout under ``root``; ``history`` / ``security``: the configured folders (relative = to ``root``)."""
    root = Path(root).expanduser()
    return LineDataDir(root=root, history=_under(root, history, HISTORY_DIR),
                       security=_under(root, security, SECURITY_DIR))


def line_data_dir(config: LineConfig | None, data_dir: str | Path | None = None,
                  line_name: str | None = None) -> LineDataDir:
    """The data directory of a line: ``data_dir`` (``--data-dir``), else :func:`default_data_root`; its history and
    security folders from ``[historian] data_dir`` / ``[security] data_dir`` (relative to the root)."""
    name = config.name if config is not None else (line_name or "line")
    root = Path(data_dir).expanduser() if data_dir else default_data_root(name)
    if config is None:
        return layout(root)
    return layout(root, config.historian.data_dir, config.security.data_dir)
