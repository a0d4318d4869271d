"""`make test` set-up (issue 7): as a user who is not root and has no `mbpoll`, tools/test_setup.sh says what is
missing and why and lets the suite run; the mbpoll interop test is then skipped with its reason."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


def _bin_without_mbpoll(root: Path) -> Path:
    """A PATH folder with the commands the set-up script uses, and no mbpoll."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "dirname", "touch", "env", "apt-get", "npm", "node", "cat", "sh"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "python").symlink_to(sys.executable)
    return bin_dir


def _as_non_root(argv: list[str]) -> list[str]:
    if os.getuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot run the set-up as a non-root user")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


@pytest.fixture
def shared_tmp():
    """A temporary folder that a non-root user can read (pytest's tmp_path is private to the user)."""
    root = Path(tempfile.mkdtemp(prefix="linetwin-setup-"))
    root.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_setup_without_mbpoll_as_non_root_continues_and_says_why(shared_tmp):
    tools = shared_tmp / "tools"
    (tools / "node_interop" / "node_modules").mkdir(parents=True)
    shutil.copy(REPO / "tools" / "test_setup.sh", tools / "test_setup.sh")
    (tools / "node_interop" / "package.json").write_text("{}\n")
    (tools / "node_interop" / "node_modules" / ".linetwin-installed").write_text("")  # node-opcua: installed
    os.utime(tools / "node_interop" / "package.json", (1, 1))
    for p in (shared_tmp, tools, tools / "node_interop", tools / "node_interop" / "node_modules"):
        p.chmod(0o755)
    bin_dir = _bin_without_mbpoll(shared_tmp)
    proc = subprocess.run(
        _as_non_root([str(bin_dir / "bash"), str(tools / "test_setup.sh")]),
        env={"PATH": str(bin_dir), "HOME": str(shared_tmp)}, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mbpoll not found and not root" in proc.stderr
    assert "tests/hil/test_interop_mbpoll.py" in proc.stderr and "skipped" in proc.stderr
    assert "sudo apt-get install -y mbpoll" in proc.stderr


def test_mbpoll_interop_test_is_skipped_with_its_reason_when_mbpoll_is_missing(shared_tmp):
    bin_dir = _bin_without_mbpoll(shared_tmp)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/hil/test_interop_mbpoll.py"],
        cwd=REPO, env={**os.environ, "PATH": str(bin_dir)}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "skipped" in proc.stdout and "failed" not in proc.stdout
    assert "mbpoll not installed" in proc.stdout
