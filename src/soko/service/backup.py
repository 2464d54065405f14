"""An online, consistent backup of a store on SQLite and a blob folder, taken while it serves.

Order, and why the copy is consistent:

1. **The database**, through SQLite's online backup API: one snapshot, taken while other
   processes keep reading and writing (each step of the copy restarts when a writer
   changed a page it had copied). The copy is what the backup *is*: every version
   committed before this step is in it, and no version committed after it.
2. **The blobs the snapshot needs**: the manifest of every version committed in the copy and
   every blob those manifests name. Blobs are content-addressed and never modified, so a
   blob read now has the bytes it had when the snapshot was taken; each is verified
   against its digest on its way into the copy (a damaged blob is reported, not backed
   up). Blobs the snapshot does not need (uploads whose commit came after it, garbage)
   are left out, and the pack layout of the source does not matter: small blobs are
   read wherever they are packed and packed again in the copy.
3. **The store's id** (see :mod:`soko.storage.identity`), so the copied pair opens.

The one thing that can go missing between steps 1 and 2 is a blob that garbage collection
deleted meanwhile, because a user deleted its last version after the snapshot: the
backup then names the versions affected, and is to be taken again (or taken while no gc
runs).

The copy is laid out as a server's data folder (``soko.db`` and ``store/``), so a restore is
pointing a server at it, or moving it to ``$SOKO_DIR/server``.

This module must not import the client, SDK or server layers.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ManifestRef
from soko.core.records import COMMITTED
from soko.errors import SokoError, StoreError, ValidationError
from soko.metadata.engine import open_engine, sqlite_url
from soko.service.gc import live_versions
from soko.service.store import Store
from soko.storage import identity
from soko.storage.local import LocalBlobStore

DB_NAME = "soko.db"
STORE_NAME = "store"
_BATCH = 2000
_PAGES_PER_STEP = 1024
"""Pages copied per step of the SQLite backup; between steps writers go on."""

Progress = Callable[[int, int], None]
"""Called with (blobs copied, bytes copied) after each batch."""


@dataclass
class BackupReport:
    destination: str
    versions: int = 0
    """Committed versions in the snapshot."""
    blobs: int = 0
    bytes: int = 0
    missing: dict[str, list[str]] = field(default_factory=dict)
    """A blob the snapshot needs that the store no longer has (or holds damaged), with
    the versions that need it."""

    @property
    def ok(self) -> bool:
        return not self.missing


def backup(db_path: Path, blobs: LocalBlobStore, destination: Path, *,
           progress: Progress | None = None) -> BackupReport:  # fmt: skip
    """Copy the store of the SQLite database *db_path* and the folder *blobs* into
    *destination* (a new or empty folder), while other processes use it."""
    if not db_path.is_file():
        raise ValidationError(f"No database at {db_path}: give the server's --db.")
    if destination.exists() and any(destination.iterdir()):
        raise ValidationError(f"{destination} is not empty: back up into a new folder.")
    destination.mkdir(parents=True, exist_ok=True)
    copy_db = destination / DB_NAME
    _copy_database(db_path, copy_db)
    report = BackupReport(destination=os.fspath(destination))
    target = LocalBlobStore(destination / STORE_NAME)
    # The snapshot's versions, with the source's blobs: a Store opened without binding
    # its identity, which step 3 copies.
    engine = open_engine(sqlite_url(copy_db))
    try:
        snapshot = Store(engine, blobs)
        needed = _needed_blobs(snapshot, report)
        _copy_blobs(blobs, target, needed, report, progress)
    finally:
        engine.dispose()
    store_id = identity.read_id(blobs)
    if store_id is not None:
        identity.write_id(target, store_id)
    target.sync()
    return report


def _copy_database(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60.0)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=_PAGES_PER_STEP)
                # A single file: the copy needs no -wal beside it.
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"Cannot copy the database {source}: {exc}") from exc


def _needed_blobs(snapshot: Store, report: BackupReport) -> dict[Digest, list[str]]:
    """Every blob of a committed version of *snapshot*, with the versions naming it."""
    needed: dict[Digest, list[str]] = {}
    with snapshot.engine.connect() as conn:
        committed = [v for v in live_versions(conn) if v.state == COMMITTED]
    report.versions = len(committed)
    for version in committed:
        if version.manifest_blob is None:
            continue
        ref = ManifestRef.parse(version.manifest_blob)
        needed.setdefault(ref.digest, []).append(version.name)
        try:
            manifest = snapshot.load_manifest(
                ref, Algorithm.parse(version.algorithm), cached=False, name=version.name
            )
        except (SokoError, ValueError):
            continue  # its manifest is reported missing or damaged with the blobs
        for digest in manifest.blob_digests():
            needed.setdefault(digest, []).append(version.name)
    return needed


def _copy_blobs(
    source: LocalBlobStore,
    target: LocalBlobStore,
    needed: dict[Digest, list[str]],
    report: BackupReport,
    progress: Progress | None,
) -> None:
    digests = list(needed)
    for start in range(0, len(digests), _BATCH):
        batch = digests[start : start + _BATCH]
        copied, size = _copy_batch(source, target, batch, needed, report)
        report.blobs += copied
        report.bytes += size
        if progress:
            progress(copied, size)


def _copy_batch(
    source: LocalBlobStore,
    target: LocalBlobStore,
    batch: Iterable[Digest],
    needed: dict[Digest, list[str]],
    report: BackupReport,
) -> tuple[int, int]:
    copied = size = 0
    wanted = list(batch)
    packed = list(source.read_packed(wanted))
    if packed:
        try:
            target.put_blobs(packed)  # verified, packed again
            stored = packed
        except SokoError:
            stored = [(d, data) for d, data in packed if _put_one(target, d, data, needed, report)]
        copied += len(stored)
        size += sum(len(data) for _, data in stored)
    done = {digest for digest, _ in packed}
    for digest in wanted:
        if digest in done:
            continue
        path = source.local_path(digest)
        try:
            if path is None:
                raise FileNotFoundError(digest)
            size += target.put_file(digest, path)  # hashed as copied
            copied += 1
        except FileNotFoundError:
            report.missing[str(digest)] = needed[digest]
        except SokoError as exc:
            report.missing[f"{digest} ({exc})"] = needed[digest]
    return copied, size


def _put_one(
    target: LocalBlobStore,
    digest: Digest,
    data: bytes,
    needed: dict[Digest, list[str]],
    report: BackupReport,
) -> bool:
    try:
        target.put_bytes(digest, data)
    except SokoError as exc:
        report.missing[f"{digest} ({exc})"] = needed[digest]
        return False
    return True
