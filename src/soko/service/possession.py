"""Possession: which stored blobs a project may name in a commit.

Blobs are content-addressed and shared by every project, so a digest alone must never
reach bytes: a writer of project A who names the digest of a blob only project B holds in
a commit of A, without uploading it, would then read B's bytes through A's version. So:

    A commit may name a stored blob only if the committing project has proven possession of it.

A project possesses a blob (a ``project_blobs`` row holding the blob's real size) once

- one of its writers uploaded the bytes *for it* and the server verified them
  (:func:`record_uploads`), or
- a commit into it named the blob as a *source* names it: a committed version the
  committer may read (the collection's latest, implicitly, or a version the client lists),
  whose manifest gives the blob the same size. The committer could read those bytes
  already. Blobs borrowed from another project's version are recorded for the project in
  the commit's transaction (its ``borrowed``, beside the request); the project's own versions are
  its proof already, so borrowing from them records nothing (an incremental log of 20,000
  files writes no 20,000 rows).

:func:`check_commit` refuses a commit naming any other blob as "not stored" (the
MissingBlobsError of an absent blob, never "belongs to another project"), and an entry
whose size is not the blob's real size. :func:`missing` answers the uploader's question
per project: a blob stored only for other projects is missing, exactly like an absent one,
and uploading it is how the project proves possession.

The embedded store has one user and calls none of this.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from soko.core.digests import BatchedDigests, Digest, DigestBatch
from soko.core.manifest import Manifest
from soko.core.records import COMMITTED, VersionRecord
from soko.errors import MissingBlobsError, ValidationError
from soko.metadata.engine import reading
from soko.metadata.schema import aliases, collections, project_blobs
from soko.service.catalog import ensure_project, find_project, now, records_by_ids
from soko.service.store import Store

# Digests per IN query: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters,
# and large enough that 20,000 blobs cost four queries, not forty.
_CHUNK = 5_000

# The rows are written and read with the driver's own executemany and plain SQL, not
# SQLAlchemy's statements: for the 20,000 blobs of one log, its per-row parameter handling
# took 0.26 s of the server's CPU to record them and 0.16 s to look them up (SQLite); the
# driver takes 0.09 s and 0.05 s. The SQL is the same for SQLite and PostgreSQL; only the
# placeholder differs.
_TABLE = project_blobs.name
# Rows one INSERT writes: one statement, where an executemany runs one a row (and SQLite's
# driver lets the GIL go and takes it back at each, which a busy server makes wait).
_ROWS_PER_INSERT = 500
_SQLITE_RECORDING = threading.Lock()


@dataclass(frozen=True)
class Source:
    """A committed version the committer may read, and the size its manifest gives each of
    its blobs (None when unknown: such a blob cannot be borrowed)."""

    entity: str
    project: str
    sizes: Mapping[Digest, int | None]


def not_stored(name: str, digests: Collection[Digest]) -> MissingBlobsError:
    """The one answer for a blob a commit may not name: absent, or not the project's."""
    sample = ", ".join(sorted(str(d) for d in digests)[:3])
    return MissingBlobsError(
        f"Cannot commit {name!r}: {len(digests)} blob(s) are not stored ({sample})."
    )


def manifest_blob_not_stored(digest: Digest) -> MissingBlobsError:
    return MissingBlobsError(f"The manifest blob {digest} is not stored; upload it first.")


# ----- recording ----------------------------------------------------------------------


def _mark(conn: Connection) -> str:
    """The driver's placeholder: ``?`` for sqlite3, ``%s`` for psycopg."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def record(
    conn: Connection, project_id: int, blobs: Mapping[Digest, int], *, measured: bool = False
) -> None:
    """Record that the project possesses *blobs* (digest -> real size): an INSERT of many
    rows at a time.

    With *measured* the sizes are what the server measured of uploaded bytes, and they
    replace the size of a row already there (one learnt from an older manifest may be
    wrong); otherwise rows already there are left as they are.

    The rows go in in digest order: two transactions inserting overlapping digests then
    wait for each other in one order, where opposite orders deadlock on PostgreSQL (each
    waits for the other's uncommitted row).
    """
    if not blobs:
        return
    stamp: Any = now()
    column_type = project_blobs.c.created_at.type.dialect_impl(conn.dialect)
    to_column = column_type.bind_processor(conn.dialect)
    if to_column is not None:
        stamp = to_column(stamp)  # SQLite keeps text, in the form SQLAlchemy writes
    m = _mark(conn)
    on_conflict = (
        f"ON CONFLICT (project_id, digest) DO UPDATE SET size = excluded.size "
        f"WHERE {_TABLE}.size <> excluded.size"
        if measured
        else "ON CONFLICT DO NOTHING"
    )
    rows = sorted((str(d), size) for d, size in blobs.items())
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        part = rows[start : start + _ROWS_PER_INSERT]
        conn.exec_driver_sql(
            f"INSERT INTO {_TABLE} (project_id, digest, size, created_at) VALUES "
            + ", ".join([f"({m}, {m}, {m}, {m})"] * len(part))
            + f" {on_conflict}",
            tuple(v for text, size in part for v in (project_id, text, size, stamp)),
        )


def record_uploads(
    store: Store, *, entity: str, project: str, blobs: Iterable[tuple[Digest, int]]
) -> None:
    """Record blobs a writer of the project uploaded and the server verified, with the
    sizes the server measured, which correct a row's size (the project is created when
    new)."""
    sizes = dict(blobs)
    if not sizes:
        return
    # SQLite takes one writer at a time, and a second one's BEGIN sleeps in its busy
    # handler (1 to 100 ms at a time) while the first commits in a few: the upload
    # batches of this process take turns here instead.
    turn = _SQLITE_RECORDING if store.engine.dialect.name == "sqlite" else contextlib.nullcontext()
    with turn, store.engine.begin() as conn:
        record(conn, ensure_project(conn, entity, project), sizes, measured=True)


# ----- asking -------------------------------------------------------------------------


def possessed(
    conn: Connection, project_id: int | None, digests: Collection[Digest]
) -> dict[Digest, int]:
    """Which of *digests* the project possesses, with their real sizes."""
    if project_id is None or not digests:
        return {}
    by_text = {str(d): d for d in digests}
    texts = list(by_text)
    m = _mark(conn)
    found: dict[Digest, int] = {}
    cursor = conn.connection.cursor()  # the driver's rows, without a Row object each
    try:
        for start in range(0, len(texts), _CHUNK):
            part = texts[start : start + _CHUNK]
            cursor.execute(
                f"SELECT digest, size FROM {_TABLE} "
                f"WHERE project_id = {m} AND digest IN ({', '.join([m] * len(part))})",
                (project_id, *part),
            )
            found.update((by_text[text], int(size)) for text, size in cursor.fetchall())
    finally:
        cursor.close()
    return found


def source_versions(
    store: Store,
    *,
    entity: str,
    project: str,
    name: str | None,
    version_ids: Sequence[str],
) -> list[VersionRecord]:
    """The committed versions a commit into ``entity/project/name`` may borrow from, before
    the caller keeps those it may read: the collection's latest (when *name* is given and
    it has one), then each of *version_ids* that names a committed version."""
    with reading(store.engine) as conn:
        latest = None if name is None else _latest_id(conn, entity, project, name)
        wanted = list(dict.fromkeys([*([latest] if latest else []), *version_ids]))
        found = records_by_ids(conn, wanted)
    return [r for r in found if r.state == COMMITTED and r.manifest_blob is not None]


def _latest_id(conn: Connection, entity: str, project: str, name: str) -> str | None:
    project_id = find_project(conn, entity, project)
    if project_id is None:
        return None
    found = conn.execute(
        select(aliases.c.version_id)
        .join(collections, collections.c.id == aliases.c.collection_id)
        .where(
            collections.c.project_id == project_id,
            collections.c.name == name,
            aliases.c.alias == "latest",
        )
    ).scalar()
    return None if found is None else str(found)


def _lent(
    digests: Iterable[Digest], sources: Sequence[Source], *, entity: str, project: str
) -> dict[Digest, tuple[int, bool]]:
    """The blobs of *digests* a source names with a known size: that size, and whether
    the source is a version of another project (whose blobs are then recorded)."""
    remaining = set(digests)
    found: dict[Digest, tuple[int, bool]] = {}
    # The project's own versions first: a blob they name needs no row.
    for source in sorted(sources, key=lambda s: (s.entity, s.project) != (entity, project)):
        if not remaining:
            break
        foreign = (source.entity, source.project) != (entity, project)
        sizes = source.sizes
        for digest in list(remaining):
            size = sizes.get(digest)
            if size is not None:
                found[digest] = (size, foreign)
                remaining.discard(digest)
    return found


def missing(
    store: Store,
    *,
    entity: str,
    project: str,
    digests: Collection[Digest],
    sources: Sequence[Source] | Callable[[], Sequence[Source]],
) -> set[Digest]:
    """Which of *digests* a writer of the project must upload before a commit may name
    them: those not stored, and those the project neither possesses nor can borrow from
    one of *sources*. A blob stored only for other projects is missing, like an absent one.

    *sources* may be given as a callable, called only for stored blobs the project does
    not hold: finding a source's blobs reads its manifest whole (a million entries for
    the latest version of a large collection), which the new blobs of a log never need.
    """
    absent = store.blobs.missing(digests)
    stored = [d for d in digests if d not in absent]
    return absent | _not_held(store, entity=entity, project=project, stored=stored, sources=sources)


def missing_raw(
    store: Store,
    *,
    entity: str,
    project: str,
    batch: DigestBatch,
    sources: Callable[[], Sequence[Source]],
) -> set[bytes]:
    """:func:`missing` for one batch of raw digests, answered as raw digests: a digest
    the store holds is made an object only to look up the project's row for it."""
    absent = {d.raw for d in store.blobs.missing(BatchedDigests(lambda: iter((batch,))))}
    algorithm = batch.algorithm
    stored = [Digest(algorithm, raw) for raw in set(batch.raw_list()) if raw not in absent]
    unheld = _not_held(store, entity=entity, project=project, stored=stored, sources=sources)
    return absent | {d.raw for d in unheld}


def _not_held(
    store: Store,
    *,
    entity: str,
    project: str,
    stored: Sequence[Digest],
    sources: Sequence[Source] | Callable[[], Sequence[Source]],
) -> set[Digest]:
    """Those of the *stored* blobs the project neither possesses nor can borrow."""
    if not stored:
        return set()
    if callable(sources):
        with reading(store.engine) as conn:
            held = possessed(conn, find_project(conn, entity, project), stored)
        rest = [d for d in stored if d not in held]
        if not rest:
            return set()
        lent = _lent(rest, sources(), entity=entity, project=project)
        return {d for d in rest if d not in lent}
    lent = _lent(stored, sources, entity=entity, project=project)
    rest = [d for d in stored if d not in lent]
    if not rest:
        return set()
    with reading(store.engine) as conn:
        held = possessed(conn, find_project(conn, entity, project), rest)
    return {d for d in rest if d not in held}


def require_manifest_blob(store: Store, *, entity: str, project: str, digest: Digest) -> None:
    """MissingBlobsError unless the project possesses the manifest blob (its writer
    uploaded it for the project: a manifest is never borrowed)."""
    with reading(store.engine) as conn:
        held = possessed(conn, find_project(conn, entity, project), [digest])
    if digest not in held:
        raise manifest_blob_not_stored(digest)


def check_commit(
    store: Store,
    *,
    entity: str,
    project: str,
    name: str,
    manifest: Manifest,
    sources: Sequence[Source],
) -> dict[Digest, int]:
    """Check that the project may name every blob of *manifest*, each with its real size.

    Returns the blobs borrowed from other projects' versions, to record in the commit's
    transaction. Raises MissingBlobsError (as for absent blobs) naming the blobs it may
    not name, and ValidationError when an entry's size is not its blob's real size (the
    project's recorded size, else the source manifest's). References are not blobs.
    """
    # The manifest's entries are walked a slice at a time, each slice's blobs looked up
    # in the sources and the project's rows: a million blobs are never held as a map of
    # sizes, nor written out as text at once, nor held with their real sizes.
    absent: dict[Digest, None] = {}
    wrong = 0
    first_wrong: tuple[str, int | None, int] | None = None
    borrowed: dict[Digest, int] = {}
    entries = manifest.stored_entries()
    with reading(store.engine) as conn:
        project_id = find_project(conn, entity, project)
        while part := list(itertools.islice(entries, _CHUNK)):
            digests = {digest for _, digest, _ in part}
            lent = _lent(digests, sources, entity=entity, project=project) if sources else {}
            held = possessed(conn, project_id, [d for d in digests if d not in lent])
            for path, digest, size in part:
                known = lent.get(digest)
                real = known[0] if known is not None else held.get(digest)
                if real is None:
                    absent[digest] = None
                elif size != real:
                    wrong += 1
                    first_wrong = first_wrong or (path, size, real)
            borrowed.update((d, size) for d, (size, foreign) in lent.items() if foreign)
    if absent:
        raise not_stored(name, absent)
    if first_wrong is not None:
        path, given, actual = first_wrong
        given_text = "no size" if given is None else f"a size of {given} bytes"
        raise ValidationError(
            f"The manifest of {name!r} gives {path!r} {given_text}, but its blob has {actual} "
            f"bytes ({wrong} entr{'y' if wrong == 1 else 'ies'} with a wrong size). "
            "Nothing was committed."
        )
    return borrowed
