"""``linetwin backup`` / ``restore``: a consistent snapshot of a running twin's data directory (history and audit
churning), the restore round trip, and refusals that change nothing (twin running, tampered archive, other line)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from linetwin_cli.main import main
from linetwin_cli.security import audit_admin
from tests.conftest import free_tcp_port, wait_until
from twin_server.security.audit_store import export_entries, verify_chain

REPO = Path(__file__).resolve().parents[2]
PILOT = REPO / "examples" / "pilot_line.toml"


def _samples(db: Path) -> int:
    if not db.is_file():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(con.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root`` (what 'nothing changed' compares)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


async def test_backup_of_a_running_twin_restores_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = tmp_path / "line"
    twin = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linetwin_cli", "demo", "--port", str(free_tcp_port()), "--speed", "10",
        "--duration", "120", "--data-dir", str(data), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=tmp_path)
    archive = tmp_path / "backups" / "line.tar.gz"
    try:
        history = data / "history" / "history.sqlite"
        await wait_until(lambda: _samples(history) > 20, timeout_s=120, what="the running twin recording history")
        assert (data / "twin.pid").is_file()
        stop_churn = threading.Event()

        def churn() -> None:  # audit entries appended while the snapshot is taken
            while not stop_churn.is_set():
                audit_admin(data / "security", "test_churn", "churn")

        churner = threading.Thread(target=churn)
        churner.start()
        try:
            rc = await asyncio.to_thread(main, ["backup", str(PILOT), "--to", str(archive), "--data-dir", str(data)])
        finally:
            stop_churn.set()
            churner.join()
        out = capsys.readouterr().out
        assert rc == 0, out
        assert "verified" in out
        before_refusal = _tree(data / "security")
        rc = await asyncio.to_thread(main, ["restore", str(archive), str(PILOT), "--data-dir", str(data)])
        assert rc == 2
        assert "in use by a running twin" in capsys.readouterr().err
        assert _tree(data / "security").keys() == before_refusal.keys()  # nothing restored over a live twin
    finally:
        if twin.returncode is None:
            twin.terminate()
        await asyncio.wait_for(twin.wait(), timeout=60)

    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "data/history/history.sqlite" in names
    assert "data/security/audit.sqlite" in names and "data/twin.pid" not in names
    assert not any(n.endswith(("-wal", "-shm")) for n in names)

    target = tmp_path / "restored"
    (target / "security").mkdir(parents=True)
    (target / "security" / "stale.txt").write_text("replaced by the restore")
    assert main(["restore", str(archive), str(PILOT), "--data-dir", str(target)]) == 0
    assert "kept at" in capsys.readouterr().out
    assert not (target / "security" / "stale.txt").exists()
    assert list(tmp_path.glob("restored.replaced-*/security/stale.txt"))  # the replaced dir is kept, not lost
    assert _samples(target / "history" / "history.sqlite") > 20
    result = verify_chain(target / "security" / "audit.sqlite")
    assert result.ok, result.problems
    actions = [e["action"] for e in export_entries(target / "security" / "audit.sqlite", None, None)]
    assert "test_churn" in actions and actions[-1] == "restore"  # the restore itself is audited
    assert main(["history", "export", str(PILOT), "--node", "feed_tank.level", "--from=-1h", "--to", "now",
                 "--data-dir", str(target)]) == 0
    assert "backup" in [e["action"] for e in export_entries(data / "security" / "audit.sqlite", None, None)]


def _rewrite(archive: Path, out: Path, name: str, content: bytes) -> None:
    """``archive`` with member ``name`` replaced by ``content`` (manifest untouched)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name == name:
                data = content
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))


def test_tampered_or_foreign_backup_is_refused_and_changes_nothing(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]):
    data = tmp_path / "line"
    security = data / "security"
    for i in range(3):
        audit_admin(security, "test_entry", f"node{i}")
    (security / "users.toml").write_text("[users]\n")
    archive = tmp_path / "good.tar.gz"
    assert main(["backup", str(PILOT), "--to", str(archive), "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert main(["backup", str(PILOT), "--to", str(data / "inside.tar.gz"), "--data-dir", str(data)]) == 2
    assert "inside the data directory" in capsys.readouterr().err and not (data / "inside.tar.gz").exists()
    target = tmp_path / "target"
    for i in range(2):
        audit_admin(target / "security", "existing", f"node{i}")
    before = _tree(target)

    edited = tmp_path / "edited.tar.gz"
    _rewrite(archive, edited, "data/security/users.toml", b"[users.mallory]\nrole = \"admin\"\n")
    assert main(["restore", str(edited), str(PILOT), "--data-dir", str(target)]) == 2
    assert "users.toml does not match its manifest hash" in capsys.readouterr().err

    # a consistent-looking archive whose audit chain was edited (manifest rehashed): the chain check refuses it
    with tarfile.open(archive) as tar:
        audit_bytes = tar.extractfile("data/security/audit.sqlite").read()  # type: ignore[union-attr]
    audit_copy = tmp_path / "audit.sqlite"
    audit_copy.write_bytes(audit_bytes)
    con = sqlite3.connect(audit_copy)
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("UPDATE audit SET node = 'rewritten' WHERE seq = 2")
    con.commit()
    con.close()
    import json

    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    manifest["files"]["data/security/audit.sqlite"] = {
        "sha256": hashlib.sha256(audit_copy.read_bytes()).hexdigest(), "bytes": audit_copy.stat().st_size}
    step = tmp_path / "step.tar.gz"
    _rewrite(archive, step, "data/security/audit.sqlite", audit_copy.read_bytes())
    chain_edited = tmp_path / "chain_edited.tar.gz"
    _rewrite(step, chain_edited, "manifest.json", json.dumps(manifest).encode())
    assert main(["restore", str(chain_edited), str(PILOT), "--data-dir", str(target)]) == 2
    assert "audit chain does not verify" in capsys.readouterr().err

    other = tmp_path / "other_line.toml"
    other.write_text(PILOT.read_text().replace('name = "pilot_line"', 'name = "other_line"', 1))
    assert main(["restore", str(archive), str(other), "--data-dir", str(target)]) == 2
    assert "expected line 'other_line'" in capsys.readouterr().err

    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    assert main(["restore", str(tmp_path / "junk.tar.gz"), str(PILOT), "--data-dir", str(target)]) == 2
    assert "not readable as a linetwin backup" in capsys.readouterr().err
    assert _tree(target) == before
    assert not list(tmp_path.glob("target.replaced-*"))
