"""Checking a whole store (``soko verify``): every blob re-hashed, every live version's
manifest read and every blob it names looked up, every alias and link row checked.

Each problem names what is wrong (the blob's key, the version's qualified name, the entry's
path), so that a user can act on it. Files left in the store's ``tmp/`` by a killed writer
are reported as notes, not problems: they are never blobs, and ``soko gc`` removes them.

A blob whose bytes no longer hash to its digest is moved to the store's quarantine (see
:mod:`soko.storage.quarantine`) as soon as it is found, and reported with every live
version it breaks. The store then reports it missing, so that logging the intact files
again stores it again, and :func:`soko.service.repair.repair_store` may restore it from an
intact copy elsewhere. A later check reports a blob that a live version needs and that
only the quarantine holds as damaged still.

The database is read first and the blobs listed afterwards: a version committed meanwhile
has stored its blobs before it committed, so a live version never appears to lack a blob
because of the order of the checks. The blobs are re-hashed before the manifests are read,
so that a damaged manifest is known as such. A blob reported missing is looked up once more
(and its version's state re-read) before it is reported, so a concurrent delete and garbage
collection cannot raise a false alarm.

This module must not import the client, SDK or server layers.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, func, select, text

from soko.core import metering
from soko.core.digests import VERSION_DIGEST_HEADER, Algorithm, Digest
from soko.core.manifest import Entry, ManifestRef
from soko.core.records import COMMITTED, DELETED
from soko.errors import CorruptBlobError, NotFoundError, SokoError, StoreError
from soko.metadata.schema import aliases, collections, versions
from soko.service import pages
from soko.service.gc import (
    LIVE_STATES,
    LiveVersion,
    live_versions,
    pending_blob_digests,
)
from soko.service.store import Store
from soko.storage.base import BlobInfo
from soko.storage.capabilities import Compacts

_CHUNK = 4 * 1024 * 1024
_HASH_THREADS = min(4, os.cpu_count() or 1)
_NAMED_VERSIONS = 5
"""A problem's message names this many of the versions it breaks; the report holds all."""
_SET_ASIDE_EARLIER = "found damaged by an earlier read and set aside in the quarantine"


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
    digest: Digest | None = None
    """The blob a ``corrupt_blob``, ``missing_blob`` or ``missing_manifest`` is about."""
    versions: tuple[str, ...] = ()
    """The live versions the blob breaks, by qualified name (``entity/project/name:vN``)."""

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
    set_aside: list[Digest] = field(default_factory=list)
    """The damaged blobs this check moved to the quarantine."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Findings:
    """What the blob and version checks learn, for the problems reported at the end."""

    damaged: dict[Digest, str] = field(default_factory=dict)
    """Blobs that fail their digest, with what is wrong with each."""
    set_aside: set[Digest] = field(default_factory=set)
    needed: dict[Digest, int] = field(default_factory=dict)
    """Blobs live versions' entries name: how many entries name each."""
    users: dict[Digest, list[tuple[LiveVersion, str]]] = field(default_factory=dict)
    """Of the blobs found missing or damaged only: (version, entry path) of each entry
    naming it, gathered by a second walk (the first keeps no path per entry)."""
    manifests: dict[Digest, list[LiveVersion]] = field(default_factory=dict)


def check_store(
    store: Store, *, progress: CheckProgress | None = None, sample: int | None = None
) -> FsckReport:
    """Check everything the store holds; returns every problem found (raises nothing for
    what is wrong with the store itself). Damaged blobs are moved to the quarantine.

    With *sample*, only that many blobs, chosen at random, are re-hashed (the costly part,
    which reads the whole store); every version is still checked against the listing, so
    a missing blob is always found, a damaged one with the sample's odds."""
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
    found = _Findings()
    chosen: list[BlobInfo] = list(listed.values())
    if sample is not None and sample < len(chosen):
        chosen = random.sample(chosen, sample)
        report.notes.append(
            f"Re-hashed a random sample of {sample} of the {len(listed)} blobs; every "
            "version was checked for missing blobs."
        )
    found.damaged, report.bytes_checked = _rehash_all(store, chosen, progress)
    report.blobs_checked = len(chosen)
    found.set_aside = {digest for digest in found.damaged if store.set_aside(digest)}
    for version in live:
        report.problems.extend(_check_version(store, version, rows.get(version.id), found))
    names = {v.id: v for v in live}
    for version_id, _, digest in pending:
        if version_id in names:
            found.needed[digest] = found.needed.get(digest, 0) + 1
    wrong = {d for d in found.needed if d not in listed or d in found.damaged}
    if wrong:
        _gather_users(store, live, found, wrong)
        for version_id, path, digest in pending:
            owner = names.get(version_id)
            if owner is not None and digest in wrong:
                found.users.setdefault(digest, []).append((owner, path))
    report.problems.extend(_missing_blobs(store, found, listed))
    report.problems.extend(_damaged_blobs(found))
    report.set_aside = sorted(found.set_aside, key=str)
    report.unreferenced_blobs = sum(
        1 for d in listed if d not in found.needed and d not in found.manifests
    )
    report.notes.extend(_quarantine_notes(store, found))
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
    source = versions.alias("source")
    for link_row in conn.execute(
        select(versions.c.version_index, collections.c.name, source.c.state)
        .join(collections, collections.c.id == versions.c.collection_id)
        .outerjoin(source, source.c.id == versions.c.source_version_id)
        .where(versions.c.source_version_id.is_not(None))
    ):
        if link_row.state != COMMITTED:
            subject = f"{link_row.name}:v{link_row.version_index}"
            yield Problem(
                "dangling_link", subject, f"registry link {subject} names no live version"
            )


# ----- versions and their manifests ---------------------------------------------------


def _check_version(
    store: Store, version: LiveVersion, row: Any, found: _Findings
) -> Iterator[Problem]:
    key = version.manifest_blob
    if key is None:
        return  # a pending version without a manifest yet; its entries are checked apart
    try:
        manifest_ref = ManifestRef.parse(key)
    except SokoError:
        yield Problem(
            "bad_manifest", version.name, f"version {version.name}: bad manifest key {key!r}"
        )
        return
    manifest_digest = manifest_ref.digest
    found.manifests.setdefault(manifest_digest, []).append(version)
    if manifest_digest in found.damaged:
        return  # reported with the damaged blobs, naming this version
    algorithm = Algorithm.parse(version.algorithm)
    # A slice of the manifest at a time (through its index): no version is held whole.
    hasher = algorithm.hasher(VERSION_DIGEST_HEADER)
    size = count = 0
    bad: list[Problem] = []
    try:
        for part in _slices(pages.iter_entries(store, manifest_ref)):
            hasher.update("".join(f"{e.path}:{e.digest}\n" for e in part).encode())
            count += len(part)
            for entry in part:
                size += entry.size or 0
                if entry.ref is not None:
                    continue
                try:
                    digest = entry.blob_digest()
                except SokoError as exc:
                    bad.append(Problem("bad_manifest", key, f"version {version.name}: {exc}"))
                    continue
                found.needed[digest] = found.needed.get(digest, 0) + 1
    except NotFoundError:
        return  # reported with the missing blobs
    except CorruptBlobError:
        # Damaged since it was re-hashed (or not listed then): the load set it aside.
        found.damaged[manifest_digest] = "its bytes do not hash to it"
        if not store.blobs.exists(manifest_digest):
            found.set_aside.add(manifest_digest)
        return
    except (SokoError, ValueError) as exc:
        yield Problem(
            "bad_manifest", key, f"unreadable manifest blob {key} of version {version.name}: {exc}"
        )
        return
    yield from bad
    if row is not None and version.state == COMMITTED:
        yield from _compare_row(version, row, hasher.hexdigest(), size, count)


def _slices(entries: Iterator[Entry], size: int = 8192) -> Iterator[list[Entry]]:
    while part := list(itertools.islice(entries, size)):
        yield part


def _gather_users(
    store: Store, live: list[LiveVersion], found: _Findings, wanted: set[Digest]
) -> None:
    """The entries naming each of *wanted* (blobs missing or damaged): the versions'
    manifests walked again, a slice at a time; only when something is wrong."""
    for version in live:
        key = version.manifest_blob
        if key is None:
            continue
        try:
            for entry in pages.iter_entries(store, key):
                if entry.ref is None:
                    digest = entry.blob_digest()
                    if digest in wanted:
                        found.users.setdefault(digest, []).append((version, entry.path))
        except (SokoError, ValueError):
            continue  # reported by the first walk


def _compare_row(
    version: LiveVersion, row: Any, digest: str, size: int, count: int
) -> Iterator[Problem]:
    if row.digest != digest:
        yield Problem(
            "version_mismatch",
            version.name,
            f"version {version.name}: digest {row.digest} differs from its manifest's {digest}",
        )
    if row.size != size or row.file_count != count:
        yield Problem(
            "version_mismatch",
            version.name,
            f"version {version.name}: row says {row.file_count} files, {row.size} bytes; its "
            f"manifest has {count} files, {size} bytes",
        )


def _missing_blobs(
    store: Store, found: _Findings, listed: dict[Digest, BlobInfo]
) -> Iterator[Problem]:
    """Blobs live versions need that the store lacks; those the quarantine holds are
    added to the damaged ones instead (set aside by an earlier read)."""
    wanted = found.manifests.keys() | found.needed.keys()
    absent = [d for d in wanted if d not in listed and d not in found.damaged]
    if not absent:
        return
    still_absent = store.blobs.missing(absent)
    quarantine = store.quarantine
    earlier = quarantine.holds(still_absent) if quarantine is not None else set()
    with store.engine.connect() as conn:
        for digest in sorted(still_absent, key=str):
            owners = [v for v in found.manifests.get(digest, ()) if _still_live(conn, v.id)]
            users = [(v, p) for v, p in found.users.get(digest, ()) if _still_live(conn, v.id)]
            if not owners and not users:
                continue
            if digest in earlier:
                found.damaged[digest] = _SET_ASIDE_EARLIER
                continue
            if owners:
                key = str(digest)
                yield Problem(
                    "missing_manifest",
                    key,
                    f"missing manifest blob {key} of version {owners[0].name}",
                    digest=digest,
                    versions=tuple(v.name for v in owners),
                )
            if users:
                version, path = users[0]
                more = f" and {len(users) - 1} more" if len(users) > 1 else ""
                yield Problem(
                    "missing_blob",
                    str(digest),
                    f"missing blob {digest}, named by {path!r} of {version.name}{more}",
                    digest=digest,
                    versions=_names(v for v, _ in users),
                )


def _damaged_blobs(found: _Findings) -> Iterator[Problem]:
    """One problem per damaged blob, naming the live versions it breaks."""
    for digest in sorted(found.damaged, key=str):
        owners = found.manifests.get(digest, [])
        users = sorted(found.users.get(digest, []), key=lambda user: user[0].name)
        breaks = [f"{v.name} (its manifest)" for v in owners]
        breaks += [f"{v.name} ({path!r})" for v, path in users]
        message = f"corrupt {'manifest blob' if owners else 'blob'} {digest}: "
        message += found.damaged[digest]
        if breaks:
            shown = ", ".join(breaks[:_NAMED_VERSIONS])
            more = len(breaks) - _NAMED_VERSIONS
            message += f"; breaks {shown}" + (f" and {more} more" if more > 0 else "")
        else:
            message += "; no live version needs it"
        if digest in found.set_aside:
            message += "; moved to the quarantine"
        yield Problem(
            "corrupt_blob",
            str(digest),
            message,
            digest=digest,
            versions=_names([*owners, *(v for v, _ in users)]),
        )


def _names(versions: Iterable[LiveVersion]) -> tuple[str, ...]:
    return tuple(sorted({v.name for v in versions}))


def _still_live(conn: Connection, version_id: str) -> bool:
    state = conn.execute(select(versions.c.state).where(versions.c.id == version_id)).scalar()
    return state in LIVE_STATES


# ----- blobs --------------------------------------------------------------------------


def _rehash_all(
    store: Store, blobs: Iterable[BlobInfo], progress: CheckProgress | None
) -> tuple[dict[Digest, str], int]:
    """Every blob re-hashed; returns the damaged ones (with what is wrong with each) and
    the bytes read."""
    blobs = list(blobs)
    if progress is not None:
        progress.start(len(blobs), sum(b.size for b in blobs))

    def check(info: BlobInfo) -> tuple[str | None, int]:
        if progress is None:
            return _rehash(store, info)
        # A large blob moves the bar as it is read, chunk by chunk.
        with metering.metered(lambda nbytes: progress(0, nbytes)) as meter:
            result = _rehash(store, info)
        progress(1, max(0, info.size - meter.counted))
        return result

    damaged: dict[Digest, str] = {}
    total = 0
    with ThreadPoolExecutor(max_workers=_HASH_THREADS, thread_name_prefix="soko-fsck") as pool:
        for info, (wrong, size) in zip(blobs, pool.map(check, blobs), strict=True):
            total += size
            if wrong is not None:
                damaged[info.digest] = wrong
    return damaged, total


def _rehash(store: Store, info: BlobInfo) -> tuple[str | None, int]:
    """What is wrong with the blob (None when nothing), and how many bytes were read."""
    digest = info.digest
    hasher = digest.algorithm.hasher()
    size = 0
    try:
        with store.blobs.open(digest) as stream:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
                metering.count(len(chunk))
    except NotFoundError:
        return None, 0  # deleted since it was listed (garbage collection)
    except (OSError, StoreError) as exc:
        # StoreError: a packed blob whose pack is missing or shorter than the index says.
        return f"unreadable ({exc})", size
    actual = Digest(digest.algorithm, hasher.digest())
    if actual != digest:
        return f"its {size} bytes hash to {actual}", size
    return None, size


def _quarantine_notes(store: Store, found: _Findings) -> list[str]:
    quarantine = store.quarantine
    if quarantine is None:
        return []
    idle = [d for d in quarantine.digests() if d not in found.damaged]
    if not idle:
        return []
    return [
        f"the quarantine ({quarantine.folder}) holds {len(idle)} damaged blobs that are "
        "stored again or that no live version needs; `soko gc` removes them"
    ]


def _temp_notes(store: Store) -> list[str]:
    blobs = store.blobs
    if not isinstance(blobs, Compacts):
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
