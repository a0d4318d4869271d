"""A real InfluxDB 1.x server (Debian's ``influxd``) on free 127.0.0.1 ports with its data in a temp dir."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import free_tcp_port

INFLUXD = shutil.which("influxd")
SKIP_REASON = ("influxd not found: install InfluxDB 1.x (Debian: apt-get install -y influxdb; "
               "`make test` does it as root via tools/test_setup.sh)")

CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
  logging-enabled = false
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  max-row-limit = 0
[logging]
  level = "warn"
  suppress-logo = true
"""


class Influxd:
    """Start, stop and restart one influxd (same ports and data across restarts)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_tcp_port()
        self.rpc_port = free_tcp_port()
        self.config = root / "influxdb.conf"
        self.config.write_text(CONFIG.format(root=root, port=self.port, rpc_port=self.rpc_port))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "influxd.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        assert INFLUXD is not None
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([INFLUXD, "-config", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1.0) as resp:
                    if resp.status == 204:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"influxd did not answer /ping within {timeout_s} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
