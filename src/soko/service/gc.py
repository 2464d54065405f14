"""Garbage collection of a store: expire versions whose TTL passed, then delete the blobs that
no live version needs (DESIGN.md invariant 4: only garbage collection deletes blobs).

Order of a collection, and why each step is safe while other processes log and read:

1. **Expire.** Every COMMITTED version whose ``created_at + ttl_seconds`` has passed is
   marked DELETED with its aliases, exactly as a user's delete would.
2. **List** every blob with its last-write time. The listing comes *before* the mark: a blob
   written after it is not even a candidate.
3. **Mark** the live set: the manifest blob of every live version (COMMITTED or PENDING),
   every blob its manifest names, and every blob a pending distributed entry names. A live
   manifest that cannot be read stops the collection: what it references is unknown.
4. **Sweep** the candidates (listed, unmarked, older than the grace period) in batches, each
   inside one write transaction of the metadata database. A batch first marks the live
   versions committed since step 3, then re-stats each candidate and deletes it only if it
   is still unreferenced and still older than the grace period. A commit checks its blobs
   inside its own write transaction (:func:`soko.service.commit.commit_version`), so it
   either committed before the batch, and its blobs are marked, or it sees a removed blob
   missing and fails cleanly: no committed version ever names a deleted blob.
5. **Temp files** of the store's ``tmp/`` older than the grace period are what killed writers
   left behind; they are removed.
6. **Quarantine** (local store): a damaged blob set aside there (see
   :mod:`soko.storage.quarantine`) is removed once the store holds its blob again or no
   live version needs it, if it was set aside before the grace period (a blob being
   checked again passes through the quarantine); one a live version still lacks is kept,
   for inspection.
7. **Packs** (local store): a pack whose blobs were all deleted is removed, one mostly dead
   is rewritten with its live blobs, and a pack no index row names that is older than the
   grace period (a writer killed between writing it and indexing it) is removed
   (:meth:`soko.storage.packs.Packs.compact`).

The grace period protects uploads in flight: a writer stores its blobs (fresh modification
time) before it commits, and storing a blob that exists refreshes its modification time.

This module must not import the client, SDK or server layers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, ManifestRef
from soko.core.records import COMMITTED, PENDING, as_utc
from soko.errors import NotFoundError, SokoError, StoreError, ValidationError
from soko.metadata.schema import (
    collections,
    entities,
    manifest_indexes,
    pending_entries,
    projects,
    versions,
)
from soko.service.store import Store
from soko.service.versions import delete_version
from soko.storage.base import BlobInfo
from soko.storage.capabilities import BatchDeletes, Compacts

DEFAULT_GRACE_SECONDS = 3600.0
LIVE_STATES = (COMMITTED, PENDING)
_SWEEP_BATCH = 500

Progress = Callable[[int, int], None]
"""Called with (items done in this step, bytes done in this step)."""


@dataclass(frozen=True, slots=True)
class LiveVersion:
    """A live version row, as much of it as marking and checking need."""

    id: str
    name: str
    """``entity/project/collection:vN`` (``:PENDING`` for a pending version)."""
    state: str
    manifest_blob: str | None
    algorithm: str


@dataclass
class GcReport:
    """What a collection did (or, with ``dry_run``, would do)."""

    dry_run: bool
    grace_seconds: float
    expired: list[str] = field(default_factory=list)
    blobs_listed: int = 0
    live_blobs: int = 0
    deleted: list[BlobInfo] = field(default_factory=list)
    kept_young: int = 0
    """Unreferenced blobs spared because they are younger than the grace period."""
    temp_files_removed: int = 0
    packs_deleted: int = 0
    packs_rewritten: int = 0
    pack_bytes_reclaimed: int = 0
    """Disk space the pack steps gave back (deleting a packed blob only forgets it)."""
    quarantine_removed: int = 0
    """Damaged blobs removed from the quarantine: stored again, or no longer needed."""

    @property
    def freed_bytes(self) -> int:
        return sum(info.size for info in self.deleted)


def collect_garbage(
    store: Store,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> GcReport:
    """Expire versions past their TTL and delete unreferenced blobs older than the grace.

    With *dry_run* nothing is changed; the report says what would be expired and deleted.
    *now* replaces the clock for TTL expiry (tests). *progress* is called once per live
    manifest read while marking.
    """
    if grace_seconds < 0:
        raise ValidationError("The grace period of garbage collection cannot be negative.")
    report = GcReport(dry_run=dry_run, grace_seconds=grace_seconds)
    moment = now or datetime.now(UTC)
    expiring = expired_versions(store, now=moment)
    report.expired = [version.name for version in expiring]
    if not dry_run:
        for version in expiring:
            try:
                delete_version(store, version.id, delete_aliases=True)
            except NotFoundError:
                continue  # deleted by someone else meanwhile
    listed = list(store.blobs.list())
    report.blobs_listed = len(listed)
    skip = {version.id for version in expiring} if dry_run else set()
    marker = _Marker(store, progress=progress)
    with store.engine.connect() as conn:
        marker.mark(conn, skip=skip)
    cutoff = time.time() - grace_seconds
    candidates: list[BlobInfo] = []
    for info in listed:
        if info.digest in marker.live:
            continue
        if info.modified >= cutoff:
            report.kept_young += 1
        else:
            candidates.append(info)
    if dry_run:
        report.deleted = candidates
    else:
        report.deleted, rewritten = _sweep(store, marker, candidates, grace_seconds=grace_seconds)
        report.kept_young += rewritten
        _drop_indexes(store, report.deleted)
    report.live_blobs = len(marker.live)
    report.quarantine_removed = _clear_quarantine(
        store, marker.live, grace_seconds=grace_seconds, dry_run=dry_run
    )
    blobs = store.blobs
    if isinstance(blobs, Compacts):
        if dry_run:
            report.temp_files_removed = len(blobs.temp_files_older_than(grace_seconds))
        else:
            report.temp_files_removed = blobs.remove_stale_temp(grace_seconds)
        compacted = blobs.compact(grace_seconds, dry_run=dry_run)
        report.packs_deleted = compacted.packs_deleted
        report.packs_rewritten = compacted.packs_rewritten
        report.pack_bytes_reclaimed = compacted.bytes_reclaimed
    return report


def _drop_indexes(store: Store, deleted: list[BlobInfo]) -> None:
    """Remove the indexes of manifest blobs just deleted (derived data: a manifest stored
    again gets its index again)."""
    keys = [str(info.digest) for info in deleted if info.digest.algorithm is Algorithm.XXH128]
    with store.engine.begin() as conn:
        for start in range(0, len(keys), 500):
            conn.execute(
                manifest_indexes.delete().where(
                    manifest_indexes.c.manifest_blob.in_(keys[start : start + 500])
                )
            )


def _clear_quarantine(
    store: Store, live: set[Digest], *, grace_seconds: float, dry_run: bool
) -> int:
    """Remove the quarantined copies of blobs stored again or needed by no live version
    that were set aside before the grace period; returns how many (would) go.

    A young copy is kept: setting a blob aside moves it here *before* checking it again,
    and an intact one goes back, so a copy here may be a stored blob on its way back.
    """
    quarantine = store.quarantine
    if quarantine is None:
        return 0
    held = list(quarantine.digests(set_aside_before=time.time() - grace_seconds))
    if not held:
        return 0
    lacking = store.blobs.missing(held)
    idle = [d for d in held if d not in live or d not in lacking]
    return len(idle) if dry_run else quarantine.discard(idle)


def expired_versions(store: Store, *, now: datetime) -> list[LiveVersion]:
    """COMMITTED versions whose ``created_at + ttl_seconds`` is before *now*."""
    expired = []
    with store.engine.connect() as conn:
        rows = conn.execute(
            _named_versions().where(
                versions.c.state == COMMITTED, versions.c.ttl_seconds.is_not(None)
            )
        ).all()
        for row in rows:
            if as_utc(row.created_at) + timedelta(seconds=row.ttl_seconds) < now:
                expired.append(_live_version(row))
    return expired


def _named_versions() -> Any:
    return (
        select(
            versions.c.id,
            versions.c.state,
            versions.c.version_index,
            versions.c.manifest_blob,
            versions.c.algorithm,
            versions.c.created_at,
            versions.c.ttl_seconds,
            collections.c.name.label("collection"),
            projects.c.name.label("project"),
            entities.c.name.label("entity"),
        )
        .select_from(versions)
        .join(collections, collections.c.id == versions.c.collection_id)
        .join(projects, projects.c.id == collections.c.project_id)
        .join(entities, entities.c.id == projects.c.entity_id)
    )


def _live_version(row: Any) -> LiveVersion:
    index = "PENDING" if row.version_index is None else f"v{row.version_index}"
    return LiveVersion(
        id=row.id,
        name=f"{row.entity}/{row.project}/{row.collection}:{index}",
        state=row.state,
        manifest_blob=row.manifest_blob,
        algorithm=row.algorithm,
    )


def live_versions(conn: Connection) -> list[LiveVersion]:
    """Every COMMITTED or PENDING version, with its qualified name."""
    rows = conn.execute(
        _named_versions()
        .where(versions.c.state.in_(LIVE_STATES))
        .order_by(entities.c.name, projects.c.name, collections.c.name, versions.c.version_index)
    ).all()
    return [_live_version(row) for row in rows]


def pending_blob_digests(conn: Connection) -> Iterator[tuple[str, str, Digest]]:
    """(version id, path, blob digest) of every stored entry of a pending distributed
    version; entries that cannot be parsed are skipped (verify reports them)."""
    rows = conn.execute(
        select(pending_entries.c.version_id, pending_entries.c.path, pending_entries.c.entry)
    )
    for row in rows:
        try:
            entry = Entry.from_json(row.path, row.entry)
            if entry.ref is None:
                yield row.version_id, row.path, entry.blob_digest()
        except SokoError:
            continue


class _Marker:
    """The live set, grown as live versions are found; remembers which it has seen."""

    def __init__(self, store: Store, *, progress: Progress | None) -> None:
        self.store = store
        self.live: set[Digest] = set()
        self.seen_versions: set[str] = set()
        self.seen_manifests: set[str] = set()
        self.progress = progress

    def mark(self, conn: Connection, *, skip: Iterable[str] = ()) -> None:
        """Add what every live version not seen yet references (and pending entries)."""
        skipped = set(skip)
        for version in live_versions(conn):
            if version.id in self.seen_versions or version.id in skipped:
                continue
            key = version.manifest_blob
            if key is None:
                # A pending version has no manifest yet; look again at the next mark, since
                # a finish may give it one between this mark and the sweep.
                continue
            self.seen_versions.add(version.id)
            if key in self.seen_manifests:
                continue
            try:
                manifest = self.store.load_manifest(
                    key, Algorithm.parse(version.algorithm), cached=False, name=version.name
                )
            except (SokoError, ValueError) as exc:
                raise StoreError(
                    f"Garbage collection stopped: cannot read the manifest of {version.name} "
                    f"({exc}); nothing was deleted from then on. Run `soko verify`."
                ) from exc
            self.seen_manifests.add(key)
            self.live.add(ManifestRef.parse(key).digest)
            self.live.update(manifest.blob_digests())
            if self.progress:
                self.progress(1, 0)
        for version_id, _path, digest in pending_blob_digests(conn):
            if version_id not in skipped:
                self.live.add(digest)


def _lock_for_sweep(conn: Connection) -> None:
    """Make the caller's transaction exclude commits until it ends.

    SQLite: soko's write transactions begin IMMEDIATE, so this transaction already holds
    the database's write lock. PostgreSQL: a commit locks its collection row (``FOR
    UPDATE``) before it checks its blobs; EXCLUSIVE mode on ``collections`` waits for the
    commits holding such a lock and holds new ones back until this transaction ends.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE collections IN EXCLUSIVE MODE"))


def _sweep(
    store: Store, marker: _Marker, candidates: list[BlobInfo], *, grace_seconds: float
) -> tuple[list[BlobInfo], int]:
    """Delete the candidates still unreferenced and old; returns them, and how many were
    spared because they were written again since the listing."""
    deleted: list[BlobInfo] = []
    rewritten = 0
    for start in range(0, len(candidates), _SWEEP_BATCH):
        batch = candidates[start : start + _SWEEP_BATCH]
        with store.engine.begin() as conn:
            _lock_for_sweep(conn)
            marker.mark(conn)
            cutoff = time.time() - grace_seconds
            doomed: list[BlobInfo] = []
            for info in batch:
                if info.digest in marker.live:
                    continue
                try:
                    current = store.blobs.stat(info.digest)
                except NotFoundError:
                    continue  # deleted by a concurrent collection
                if current.modified >= cutoff:
                    rewritten += 1  # written again since the listing: a writer may need it
                    continue
                doomed.append(current)
            _delete(store, [info.digest for info in doomed], cutoff)
            deleted.extend(doomed)
    return deleted, rewritten


def _delete(store: Store, digests: list[Digest], cutoff: float) -> None:
    if isinstance(store.blobs, BatchDeletes):
        # One index transaction for the batch's packed blobs, not one fsync per blob; a
        # packed copy refreshed since the stat above is kept.
        store.blobs.delete_many(digests, written_before=cutoff)
        return
    for digest in digests:
        store.blobs.delete(digest)
