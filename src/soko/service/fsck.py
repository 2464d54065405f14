"""Checking a whole store (``soko verify``): every blob re-hashed, every live version's
manifest read and every blob it names looked up, every alias and link row checked.

Each problem names what is wrong (the blob's key, the version's qualified name, the entry's
path), so that a user can act on it. Files left in the store's ``tmp/`` by a killed writer
are reported as notes, not problems: they are never blobs, and ``soko gc`` removes them.

The database is read first and the blobs listed afterwards: a version committed meanwhile
has stored its blobs before it committed, so a live version never appears to lack a blob
because of the order of the checks. A blob reported missing is looked up once more (and its
version's state re-read) before it is reported, so a concurrent delete and garbage
collection cannot raise a false alarm.

This module must not import the client, SDK or server layers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, func, select, text

from soko.core.digests import Digest
from soko.core.manifest import Manifest
from soko.core.records import COMMITTED, DELETED
from soko.errors import NotFoundError, SokoError, StoreError
from soko.metadata.schema import aliases, collections, links, versions
from soko.service.gc import (
    LIVE_STATES,
    LiveVersion,
    live_versions,
    pending_blob_digests,
    read_manifest,
)
from soko.service.store import Store, parse_blob_ref
from soko.storage.base import BlobInfo
from soko.storage.local import LocalBlobStore

_CHUNK = 4 * 1024 * 1024
_HASH_THREADS = min(4, os.cpu_count() or 1)


class CheckProgress(Protocol):
    """Told the amount of work once, then each step done (files, bytes)."""

    def start(self, items: int, nbytes: int | None) -> None: ...
    def __call__(self, items: int, nbytes: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the store.

    ``kind`` is one of: ``corrupt_blob``, ``missing_blob``, ``missing_manifest``,
    ``bad_manifest``, ``version_mismatch``, ``bad_version``, ``dangling_alias``,
    ``dangling_link``, ``database``.
    """

    kind: str
    subject: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class FsckReport:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blobs_checked: int = 0
    bytes_checked: int = 0
    versions_checked: int = 0
    unreferenced_blobs: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_store(store: Store, *, progress: CheckProgress | None = None) -> FsckReport:
    """Check everything the store holds; returns every problem found (raises nothing for
    what is wrong with the store itself)."""
    report = FsckReport()
    with store.engine.connect() as conn:
        report.problems.extend(_check_database(conn))
        live = live_versions(conn)
        report.versions_checked = len(live)
        report.problems.extend(_check_rows(conn, {v.id: v.name for v in live}))
        pending = list(pending_blob_digests(conn))
        rows = {
            r.id: r
            for r in conn.execute(
                select(versions.c.id, versions.c.digest, versions.c.size, versions.c.file_count)
            )
        }
    listed = {info.digest: info for info in store.blobs.list()}
    needed: dict[Digest, list[tuple[LiveVersion, str]]] = {}
    for version in live:
        report.problems.extend(_check_version(store, version, rows.get(version.id), listed, needed))
    names = {v.id: v for v in live}
    for version_id, path, digest in pending:
        owner = names.get(version_id)
        if owner is not None:
            needed.setdefault(digest, []).append((owner, path))
    report.problems.extend(_missing_blobs(store, needed, listed))
    manifests = {v.manifest_blob for v in live}
    report.unreferenced_blobs = sum(
        1 for d in listed if d not in needed and str(d) not in manifests
    )
    corrupt, checked_bytes = _rehash_all(store, list(listed.values()), progress)
    report.problems.extend(corrupt)
    report.blobs_checked = len(listed)
    report.bytes_checked = checked_bytes
    report.notes.extend(_temp_notes(store))
    return report


# ----- the database -------------------------------------------------------------------


def _check_database(conn: Connection) -> list[Problem]:
    if conn.dialect.name != "sqlite":
        return []
    rows = [r[0] for r in conn.execute(text("PRAGMA quick_check")).all()]
    if rows == ["ok"]:
        return []
    return [
        Problem("database", "soko.db", f"database: SQLite reports damage: {'; '.join(rows[:5])}")
    ]


def _check_rows(conn: Connection, live_named: dict[str, str]) -> Iterator[Problem]:
    """Version, alias and link rows that contradict the invariants."""
    for row in conn.execute(
        select(versions.c.id, versions.c.version_index, versions.c.manifest_blob).where(
            versions.c.state == COMMITTED
        )
    ):
        name = live_named.get(row.id, row.id)
        if row.version_index is None:
            yield Problem("bad_version", name, f"version {name}: COMMITTED without an index")
        if row.manifest_blob is None:
            yield Problem("bad_version", name, f"version {name}: COMMITTED without a manifest")
    for row in conn.execute(
        select(versions.c.state).where(versions.c.state.not_in([*LIVE_STATES, DELETED]))
    ):
        yield Problem("bad_version", row.state, f"version row in unknown state {row.state!r}")
    counters = conn.execute(
        select(
            collections.c.name,
            collections.c.next_index,
            func.max(versions.c.version_index).label("highest"),
        )
        .join(versions, versions.c.collection_id == collections.c.id)
        .group_by(collections.c.id, collections.c.name, collections.c.next_index)
    ).all()
    for row in counters:
        if row.highest is not None and row.next_index <= row.highest:
            yield Problem(
                "bad_version",
                row.name,
                f"collection {row.name}: next index {row.next_index} would reuse "
                f"v{row.highest} or lower",
            )
    for alias_row in conn.execute(
        select(aliases.c.alias, aliases.c.version_id, collections.c.name, versions.c.state)
        .join(collections, collections.c.id == aliases.c.collection_id)
        .outerjoin(versions, versions.c.id == aliases.c.version_id)
    ):
        if alias_row.state != COMMITTED:
            state = alias_row.state
            target = "a missing version" if state is None else f"a {state} version"
            subject = f"{alias_row.name}:{alias_row.alias}"
            yield Problem("dangling_alias", subject, f"alias {subject} points to {target}")
    for link_row in conn.execute(
        select(links.c.link_index, collections.c.name, versions.c.state)
        .join(collections, collections.c.id == links.c.collection_id)
        .outerjoin(versions, versions.c.id == links.c.version_id)
    ):
        if link_row.state != COMMITTED:
            subject = f"{link_row.name}:v{link_row.link_index}"
            yield Problem(
                "dangling_link", subject, f"registry link {subject} names no live version"
            )


# ----- versions and their manifests ---------------------------------------------------


def _check_version(
    store: Store,
    version: LiveVersion,
    row: Any,
    listed: dict[Digest, BlobInfo],
    needed: dict[Digest, list[tuple[LiveVersion, str]]],
) -> Iterator[Problem]:
    key = version.manifest_blob
    if key is None:
        return  # a pending version without a manifest yet; its entries are checked apart
    try:
        manifest_digest = parse_blob_ref(key)
    except SokoError:
        yield Problem(
            "bad_manifest", version.name, f"version {version.name}: bad manifest key {key!r}"
        )
        return
    if manifest_digest not in listed and not store.blobs.exists(manifest_digest):
        yield Problem(
            "missing_manifest",
            key,
            f"missing manifest blob {key} of version {version.name}",
        )
        return
    try:
        manifest = read_manifest(store, version)
    except (SokoError, ValueError) as exc:
        yield Problem(
            "bad_manifest", key, f"unreadable manifest blob {key} of version {version.name}: {exc}"
        )
        return
    if row is not None and version.state == COMMITTED:
        yield from _compare_row(version, row, manifest)
    for entry in manifest:
        if entry.ref is None:
            try:
                digest = entry.blob_digest()
            except SokoError as exc:
                yield Problem("bad_manifest", key, f"version {version.name}: {exc}")
                continue
            needed.setdefault(digest, []).append((version, entry.path))


def _compare_row(version: LiveVersion, row: Any, manifest: Manifest) -> Iterator[Problem]:
    if row.digest != manifest.digest():
        yield Problem(
            "version_mismatch",
            version.name,
            f"version {version.name}: digest {row.digest} differs from its manifest's "
            f"{manifest.digest()}",
        )
    if row.size != manifest.size or row.file_count != len(manifest):
        yield Problem(
            "version_mismatch",
            version.name,
            f"version {version.name}: row says {row.file_count} files, {row.size} bytes; its "
            f"manifest has {len(manifest)} files, {manifest.size} bytes",
        )


def _missing_blobs(
    store: Store,
    needed: dict[Digest, list[tuple[LiveVersion, str]]],
    listed: dict[Digest, BlobInfo],
) -> Iterator[Problem]:
    absent = [d for d in needed if d not in listed]
    if not absent:
        return
    still_absent = store.blobs.missing(absent)
    with store.engine.connect() as conn:
        for digest in sorted(still_absent, key=str):
            users = [(v, p) for v, p in needed[digest] if _still_live(conn, v.id)]
            if not users:
                continue
            version, path = users[0]
            more = f" and {len(users) - 1} more" if len(users) > 1 else ""
            yield Problem(
                "missing_blob",
                str(digest),
                f"missing blob {digest}, named by {path!r} of {version.name}{more}",
            )


def _still_live(conn: Connection, version_id: str) -> bool:
    state = conn.execute(select(versions.c.state).where(versions.c.id == version_id)).scalar()
    return state in LIVE_STATES


# ----- blobs --------------------------------------------------------------------------


def _rehash_all(
    store: Store, blobs: list[BlobInfo], progress: CheckProgress | None
) -> tuple[list[Problem], int]:
    if progress is not None:
        progress.start(len(blobs), sum(b.size for b in blobs))

    def check(info: BlobInfo) -> tuple[Problem | None, int]:
        result = _rehash(store, info)
        if progress is not None:
            progress(1, info.size)
        return result

    problems: list[Problem] = []
    total = 0
    with ThreadPoolExecutor(max_workers=_HASH_THREADS, thread_name_prefix="soko-fsck") as pool:
        for problem, size in pool.map(check, blobs):
            total += size
            if problem is not None:
                problems.append(problem)
    return problems, total


def _rehash(store: Store, info: BlobInfo) -> tuple[Problem | None, int]:
    digest = info.digest
    hasher = digest.algorithm.hasher()
    size = 0
    try:
        with store.blobs.open(digest) as stream:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
    except NotFoundError:
        return None, 0  # deleted since it was listed (garbage collection)
    except (OSError, StoreError) as exc:
        # StoreError: a packed blob whose pack is missing or shorter than the index says.
        return Problem("corrupt_blob", str(digest), f"unreadable blob {digest}: {exc}"), size
    actual = Digest(digest.algorithm, hasher.digest())
    if actual != digest:
        return (
            Problem(
                "corrupt_blob",
                str(digest),
                f"corrupt blob {digest}: its {size} bytes hash to {actual}",
            ),
            size,
        )
    return None, size


def _temp_notes(store: Store) -> list[str]:
    blobs: Any = store.blobs
    if not isinstance(blobs, LocalBlobStore):
        return []
    now = time.time()
    notes = []
    for path in blobs.temp_files_older_than(0):
        try:
            age = now - os.stat(path).st_mtime
        except FileNotFoundError:
            continue
        notes.append(
            f"temp file {os.path.basename(path)} ({age:.0f}s old) left by an interrupted "
            "write; `soko gc` removes it once older than the grace period"
        )
    return notes
