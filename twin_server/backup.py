"""Backup and restore of a line's data directory (docs/backup.md).

A backup is one ``.tar.gz`` with a ``manifest.json`` and the data directory's files under ``data/`` (plus
``history/`` or ``security/`` when ``[historian] data_dir`` / ``[security] data_dir`` lie outside it):

* **consistent while the twin runs**: every SQLite database (history, audit trail, forward buffer, …; recognised by
  its header, not its name) is copied with SQLite's online backup API (``sqlite3.Connection.backup``), which gives
  a snapshot of one committed state even while the twin writes; ``-wal`` / ``-shm`` / ``-journal`` side files and
  ``twin.pid`` are not copied (the snapshot holds their committed content);
* **verified**: the audit chain is verified *in the copy* before the archive is written (a broken chain is no
  backup); the manifest lists every file with its SHA-256 and size;
* **restore** (:func:`restore_backup`) refuses while a twin serves the directory (``twin.pid``), refuses an archive
  whose files, hashes or audit chain do not verify, or that belongs to another line — and changes nothing then.
  Otherwise the current directory is kept beside it as ``<dir>.replaced-<UTC time>`` and the backup takes its place.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from twin_server.data_dir import PID_FILE, LineDataDir
from twin_server.pid_file import running_pid
from twin_server.security.audit_key import AuditKeyError
from twin_server.security.audit_store import verify_chain

MANIFEST = "manifest.json"
FORMAT = "linetwin-backup/1"
SQLITE_MAGIC = b"SQLite format 3\x00"
SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal")


class BackupError(Exception):
    """A backup cannot be taken or restored (the message names the file and what was expected)."""


@dataclass(frozen=True, slots=True)
class BackupManifest:
    """What a backup holds: line, time, files (archive path -> SHA-256, size) and the audit chain's length."""

    line: str
    created: str
    files: dict[str, dict[str, object]]
    audit_entries: int | None

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "line": self.line, "created": self.created, "files": self.files,
                           "audit_entries": self.audit_entries}, indent=2, sort_keys=True)


def _sections(data: LineDataDir) -> list[tuple[str, Path]]:
    """Archive prefix -> folder: ``data/`` = the root, plus history/security when configured outside it."""
    sections = [("data", data.root)]
    for name, folder in (("history", data.history), ("security", data.security)):
        if not folder.is_relative_to(data.root):
            sections.append((name, folder))
    return sections


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _files(folder: Path, top: bool) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.name.endswith(SKIPPED_SUFFIXES):
            continue
        if top and path.relative_to(folder) == Path(PID_FILE):
            continue
        yield path


def _copy_sqlite(src: Path, dst: Path) -> None:
    """One committed state of ``src`` (SQLite online backup; safe while another process writes)."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30.0)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _audit_db_in(stage: Path, data: LineDataDir) -> Path:
    for prefix, folder in _sections(data):
        if data.audit_db.is_relative_to(folder):
            return stage / prefix / data.audit_db.relative_to(folder)
    raise AssertionError("the audit store lies in no section")  # pragma: no cover - sections cover the security dir


def _verify_audit(path: Path, where: str) -> int | None:
    """Entries of the audit chain at ``path`` (``None``: no audit store); :class:`BackupError` if it is broken."""
    if not path.is_file():
        return None
    try:
        result = verify_chain(path)
    except (AuditKeyError, FileNotFoundError, sqlite3.DatabaseError) as exc:
        raise BackupError(f"{where}: the audit chain cannot be verified ({exc})") from exc
    if not result.ok:
        problems = "; ".join(str(p) for p in result.problems[:5])
        raise BackupError(f"{where}: the audit chain does not verify ({problems})")
    return result.entries


def create_backup(data: LineDataDir, line: str, dest: Path) -> BackupManifest:
    """Snapshot ``data`` into the archive ``dest`` (written whole, then renamed into place)."""
    if not data.root.is_dir():
        raise BackupError(f"--data-dir: {data.root} is not a directory; expected the line's data directory")
    if any(dest.resolve().is_relative_to(folder.resolve()) for _, folder in _sections(data)):
        raise BackupError(f"--to: got {dest}, inside the data directory; expected a file outside {data.root}")
    try:
        return _create(data, line, dest)
    except OSError as exc:  # e.g. a file removed while it was being copied
        raise BackupError(f"backup of {data.root}: {exc}; nothing written to {dest} (run it again)") from exc


def _create(data: LineDataDir, line: str, dest: Path) -> BackupManifest:
    files: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="linetwin-backup-") as tmp:
        stage = Path(tmp)
        for prefix, folder in _sections(data):
            if not folder.is_dir():
                continue
            for src in _files(folder, top=prefix == "data"):
                arcname = PurePosixPath(prefix, *src.relative_to(folder).parts)
                dst = stage / Path(*arcname.parts)
                dst.parent.mkdir(parents=True, exist_ok=True)
                if _is_sqlite(src):
                    _copy_sqlite(src, dst)
                else:
                    shutil.copyfile(src, dst)
                    shutil.copymode(src, dst)
                files[str(arcname)] = {"sha256": _sha256(dst), "bytes": dst.stat().st_size}
        entries = _verify_audit(_audit_db_in(stage, data), f"backup of {data.root}")
        manifest = BackupManifest(line=line, created=datetime.now(UTC).isoformat(timespec="seconds"),
                                  files=files, audit_entries=entries)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            text = manifest.to_json().encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(text)
            info.mtime = int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(text))
            for arcname in sorted(files):
                tar.add(stage / arcname, arcname=arcname, recursive=False)
        os.replace(partial, dest)
    return manifest


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> BackupManifest:
    try:
        member = tar.extractfile(MANIFEST)
        raw = json.loads(member.read().decode("utf-8")) if member is not None else None
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{archive}: no readable {MANIFEST}; expected a linetwin backup") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("files"), dict):
        raise BackupError(f"{archive}: {MANIFEST} is not a {FORMAT} manifest")
    return BackupManifest(line=str(raw.get("line")), created=str(raw.get("created")), files=raw["files"],
                          audit_entries=raw.get("audit_entries"))


def verify_backup(archive: Path, into: Path, data: LineDataDir) -> BackupManifest:
    """Unpack ``archive`` into the empty folder ``into`` and check it: exactly the manifest's files with their
    hashes, no path outside the archive's sections, and the audit chain; :class:`BackupError` otherwise."""
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{archive}: not readable as a linetwin backup (.tar.gz): {exc}") from exc
    with tar:
        manifest = _read_manifest(tar, archive)
        prefixes = {prefix for prefix, _ in _sections(data)}
        names = {m.name for m in tar.getmembers() if m.name != MANIFEST}
        for member in tar.getmembers():
            if member.name == MANIFEST:
                continue
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or not parts or parts[0] not in prefixes or ".." in parts:
                raise BackupError(f"{archive}: unexpected entry {member.name!r}; expected files under "
                                  f"{sorted(prefixes)}/")
        if names != set(manifest.files):
            extra, missing = sorted(names - set(manifest.files)), sorted(set(manifest.files) - names)
            raise BackupError(f"{archive}: files differ from the manifest (not listed: {extra}, missing: {missing})")
        tar.extractall(into, filter="data")
    for name, meta in manifest.files.items():
        digest = _sha256(into / name)
        if digest != meta.get("sha256"):
            raise BackupError(f"{archive}: {name} does not match its manifest hash (got {digest[:16]}…, expected "
                              f"{str(meta.get('sha256'))[:16]}…)")
    _verify_audit(_audit_db_in(into, data), f"{archive}")
    return manifest


def restore_backup(archive: Path, data: LineDataDir, line: str) -> tuple[BackupManifest, Path | None]:
    """Put the backup ``archive`` in place of ``data``; returns the manifest and where the replaced directory was
    kept (``None``: there was none). Refuses (changing nothing) while a twin runs on ``data`` or when the archive
    does not verify or is another line's."""
    pid = running_pid(data.pid_file)
    if pid is not None:
        raise BackupError(f"{data.root} is in use by a running twin (pid {pid}, {data.pid_file}); stop the twin "
                          "before restoring")
    data.root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".linetwin-restore-", dir=data.root.parent) as tmp:
        unpacked = Path(tmp) / "unpacked"
        unpacked.mkdir()
        manifest = verify_backup(archive, unpacked, data)
        if manifest.line != line:
            raise BackupError(f"{archive}: a backup of line {manifest.line!r}; expected line {line!r}")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept: Path | None = None
        for prefix, folder in _sections(data):
            source = unpacked / prefix
            if folder.exists():
                aside = folder.with_name(f"{folder.name}.replaced-{stamp}")
                folder.rename(aside)
                kept = kept or aside
            if source.is_dir():
                shutil.move(str(source), str(folder))
            else:
                folder.mkdir(parents=True)
    return manifest, kept
