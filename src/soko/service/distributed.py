"""Distributed versions: many writers, on many processes or machines, build one version.

A *pending version* is a ``versions`` row in state PENDING with a ``distributed_id``, no
index, no digest and no manifest; there is at most one per (collection, distributed_id).
Its entries live in ``pending_entries`` (path → entry JSON, and the run that wrote it)
until it is finished. Readers never see it: every read of versions asks for COMMITTED.

Invariants (the commit protocol's, extended; see docs/distributed.md):

- :func:`upsert` checks that every blob it names is stored and syncs the blob store
  *before* its transaction, so a pending entry never names a blob that is not durable;
  it checks again inside the transaction, under the collection lock that garbage
  collection's sweep excludes, so it never names a blob swept meanwhile.
- One upsert is one transaction: all its entries merge, or none do. A path already
  pending with the same content is accepted (two writers adding one file is fine); with
  other content the whole upsert is refused with ConflictError, and what is pending stays.
- Upserts and finishes of one collection are serialised by a lock on the collection row
  (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises every writer already), so
  "find the pending row, else create it" and the conflict check cannot race.
- :func:`finish` reads the pending state, builds and stores the manifest (pending entries
  plus the finisher's own) outside any transaction, then commits with
  :func:`~soko.service.commit.commit_in` in a transaction that first checks the pending state
  is unchanged; when an upsert slipped in between, it builds again. So no upserted entry is
  ever dropped by a finish, and a finish is all-or-nothing.
- Blobs of pending entries are live: garbage collection marks them (``service/gc.py``).

While a version is PENDING its ``metadata`` column holds ``{"metadata": {...}, "aliases":
[...], "incremental": bool}``: the metadata merged from the upserts so far, the aliases they
asked for, which are applied when it commits (an alias cannot point at a PENDING row
without hiding the version it names now), and whether any writer was incremental. Tags go
to the ``tags`` table directly, as they will stay.

An incremental distributed version (any upsert or the finish with ``incremental``) is
committed over the collection's latest version as the finish finds it, in the finish's
transaction (:mod:`soko.service.incremental`): the pending and finishing entries win over
the base's, and a version committed between the plan and the commit makes the finish
build again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from soko.core.digests import Algorithm
from soko.core.manifest import Entry, Manifest
from soko.core.names import (
    PENDING_PATH_MAX_LENGTH,
    validate_aliases,
    validate_distributed_id,
    validate_metadata,
    validate_name,
    validate_size,
    validate_tags,
)
from soko.core.records import PENDING, VersionRecord
from soko.core.requests import CommitRequest
from soko.errors import ConflictError, NotFoundError, ValidationError
from soko.metadata.schema import (
    aliases,
    collections,
    lineage,
    pending_entries,
    tags,
    versions,
)
from soko.service import incremental, possession
from soko.service.catalog import (
    ensure_collection,
    ensure_project,
    find_collection,
    find_project,
    now,
    version_record,
)
from soko.service.commit import (
    NOTHING_BORROWED,
    Borrowed,
    add_lineage,
    add_tags,
    commit_in,
    require_stored,
    validated,
)
from soko.service.store import Store

_FINISH_ATTEMPTS = 20
# SQLite allows 32,766 bound parameters per statement; stay far below it.
_CHUNK = 500


def _distributed_id(request: CommitRequest) -> str:
    """The request's distributed id, validated; a request without one is refused."""
    if request.distributed_id is None:
        raise ValidationError("distributed_id is required to upsert or finish a version.")
    return validate_distributed_id(request.distributed_id)


# ----- upsert ---------------------------------------------------------------------------


def upsert(
    store: Store, request: CommitRequest, *, borrowed: Borrowed = NOTHING_BORROWED
) -> VersionRecord:
    """Merge the entries of *request* into the pending version of its ``distributed_id``.

    Creates the pending version when there is none (the first upsert, or the first after a
    finish). Returns its PENDING record. Raises ConflictError, applying nothing, when a path
    is already pending with other content or the digest algorithm differs.
    """
    request = validated(request)
    distributed_id = _distributed_id(request)
    too_long = [e.path for e in request.manifest if len(e.path) > PENDING_PATH_MAX_LENGTH]
    if too_long:
        raise ValidationError(
            f"A distributed version's paths have at most {PENDING_PATH_MAX_LENGTH} characters; "
            f"{too_long[0][:60]!r}... has {len(too_long[0])}."
        )
    require_stored(store, request.manifest, name=request.name)
    store.blobs.sync()
    with store.engine.begin() as conn:
        collection = _locked_collection(conn, request)
        # Checked again under the lock that garbage collection's sweep excludes (see
        # soko.service.gc): a blob swept since the first check fails the upsert here.
        require_stored(store, request.manifest, name=request.name)
        possession.record(conn, collection.project_id, borrowed)
        pending = _pending_row(conn, collection.id, distributed_id)
        if pending is None:
            pending = _new_pending(conn, collection.id, distributed_id, request)
        elif len(request.manifest) and pending.algorithm != request.manifest.algorithm.value:
            raise ConflictError(
                f"The pending version of {request.name!r} (distributed id {distributed_id!r}) "
                f"uses {pending.algorithm} digests; this upsert uses "
                f"{request.manifest.algorithm.value}. Use one digest algorithm for every writer."
            )
        added = _merge_entries(conn, pending.id, request, distributed_id=distributed_id)
        state = _pending_state(pending)
        metadata = validate_metadata({**state.metadata, **request.metadata})
        size = pending.size + sum(e.size for e in added if e.size)
        validate_size(size, f"The pending version of {request.name!r}")
        values: dict[str, Any] = {
            "metadata": _envelope(
                metadata,
                [*state.aliases, *request.aliases],
                incremental=state.incremental or request.incremental,
            ),
            "file_count": pending.file_count + len(added),
            "size": size,
            "updated_at": now(),
        }
        if request.description is not None:
            values["description"] = request.description
        if request.ttl_seconds is not None:
            values["ttl_seconds"] = request.ttl_seconds
        conn.execute(update(versions).where(versions.c.id == pending.id).values(**values))
        add_tags(conn, pending.id, request.tags)
        if request.run_id:
            add_lineage(conn, request.run_id, pending.id, "logged")
        return _pending_record(conn, pending.id, entity=request.entity, project=request.project)


def _locked_collection(conn: Connection, request: CommitRequest) -> Row[Any]:
    """The request's collection (created if new), locked until the transaction ends."""
    project_id = ensure_project(conn, request.entity, request.project)
    collection = ensure_collection(conn, project_id, request.name, request.type)
    conn.execute(
        select(collections.c.id).where(collections.c.id == collection.id).with_for_update()
    ).one()
    return collection


def _pending_row(conn: Connection, collection_id: int, distributed_id: str) -> Row[Any] | None:
    return conn.execute(
        select(versions).where(
            versions.c.collection_id == collection_id,
            versions.c.distributed_id == distributed_id,
            versions.c.state == PENDING,
        )
    ).first()


def _new_pending(
    conn: Connection, collection_id: int, distributed_id: str, request: CommitRequest
) -> Row[Any]:
    version_id = uuid.uuid4().hex
    stamp = now()
    conn.execute(
        insert(versions).values(
            id=version_id,
            collection_id=collection_id,
            version_index=None,
            state=PENDING,
            digest="",
            algorithm=request.manifest.algorithm.value,
            manifest_blob=None,
            metadata=_envelope({}, []),
            size=0,
            file_count=0,
            distributed_id=distributed_id,
            created_by_run=request.run_id,
            created_at=stamp,
            updated_at=stamp,
        )
    )
    return conn.execute(select(versions).where(versions.c.id == version_id)).one()


def _same_content(a: Entry, b: Entry) -> bool:
    if a.ref != b.ref or a.digest != b.digest:
        return False
    return a.ref is not None or a.algorithm is b.algorithm


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _merge_entries(
    conn: Connection, version_id: str, request: CommitRequest, *, distributed_id: str
) -> list[Entry]:
    """Insert the entries the pending version lacks; returns them. All or nothing."""
    entries = list(request.manifest)
    existing: dict[str, Entry] = {}
    for chunk in _chunks([e.path for e in entries]):
        rows = conn.execute(
            select(pending_entries.c.path, pending_entries.c.entry).where(
                pending_entries.c.version_id == version_id, pending_entries.c.path.in_(chunk)
            )
        )
        existing.update((r.path, Entry.from_json(r.path, r.entry)) for r in rows)
    conflicts = [
        e.path for e in entries if e.path in existing and not _same_content(existing[e.path], e)
    ]
    if conflicts:
        sample = ", ".join(repr(p) for p in sorted(conflicts)[:5])
        raise ConflictError(
            f"{len(conflicts)} path(s) of {request.name!r} were already upserted with other "
            f"content under distributed id {distributed_id!r}: {sample}. Nothing of this "
            "upsert was applied; the entries upserted before are kept."
        )
    added = [e for e in entries if e.path not in existing]
    if added:
        conn.execute(
            insert(pending_entries),
            [
                {
                    "version_id": version_id,
                    "path": e.path,
                    "entry": e.to_json(),
                    "writer": request.run_id,
                }
                for e in added
            ],
        )
    return added


# ----- the pending state ----------------------------------------------------------------


@dataclass(frozen=True)
class _Envelope:
    metadata: dict[str, Any]
    aliases: list[str]
    incremental: bool = False


def _envelope(
    metadata: dict[str, Any], alias_names: Sequence[str], *, incremental: bool = False
) -> dict[str, Any]:
    envelope: dict[str, Any] = {"metadata": metadata, "aliases": list(dict.fromkeys(alias_names))}
    if incremental:
        envelope["incremental"] = True
    return envelope


def _pending_state(row: Row[Any]) -> _Envelope:
    stored = row.metadata if isinstance(row.metadata, dict) else {}
    metadata = stored.get("metadata")
    alias_names = stored.get("aliases")
    return _Envelope(
        dict(metadata) if isinstance(metadata, dict) else {},
        [a for a in alias_names if isinstance(a, str)] if isinstance(alias_names, list) else [],
        stored.get("incremental") is True,
    )


def _pending_record(
    conn: Connection, version_id: str, *, entity: str, project: str
) -> VersionRecord:
    row = conn.execute(select(versions).where(versions.c.id == version_id)).one()
    state = _pending_state(row)
    record = version_record(conn, row, entity=entity, project=project)
    return replace(record, metadata=state.metadata, aliases=state.aliases)


@dataclass(frozen=True)
class _Snapshot:
    """What a finish built its manifest from; it commits only if this is still the state."""

    version_id: str | None
    file_count: int = 0
    metadata: Any = None
    description: str | None = None
    ttl_seconds: int | None = None
    tags: tuple[str, ...] = ()


def _snapshot(conn: Connection, row: Row[Any] | None) -> _Snapshot:
    if row is None:
        return _Snapshot(None)
    tag_names = conn.execute(
        select(tags.c.tag).where(tags.c.version_id == row.id).order_by(tags.c.tag)
    ).scalars()
    return _Snapshot(
        row.id, row.file_count, row.metadata, row.description, row.ttl_seconds, tuple(tag_names)
    )


# ----- finish ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    snapshot: _Snapshot
    request: CommitRequest
    writers: list[str]
    base: incremental.Base | None = None
    """The version an incremental plan was built on; it must still be the latest."""


def finish(
    store: Store, request: CommitRequest, *, borrowed: Borrowed = NOTHING_BORROWED
) -> VersionRecord:
    """Commit the pending version of the request's ``distributed_id`` with the entries of
    *request* added.

    The finisher's metadata, description and TTL win over the upserts'; aliases and tags
    are the union of all. With no pending version, *request* is committed as a plain
    version (W&B's ``finish_artifact`` without upserts). Content equal to a committed
    version's makes no new version: that version is returned (the commit protocol's rule)
    and the pending one is dropped. Raises ConflictError, committing nothing, when one of
    the finisher's paths is pending with other content.
    """
    request = validated(request)
    distributed_id = _distributed_id(request)
    require_stored(store, request.manifest, name=request.name)
    for _ in range(_FINISH_ATTEMPTS):
        with store.engine.connect() as conn:
            plan = _plan_finish(store, conn, request, distributed_id=distributed_id)
        manifest_key = store.put_manifest(plan.request.manifest)
        store.blobs.sync()
        with store.engine.begin() as conn:
            collection = _locked_collection(conn, request)
            pending = _pending_row(conn, collection.id, distributed_id)
            if _snapshot(conn, pending) != plan.snapshot:
                continue
            latest = incremental.latest_id(conn, collection.id)
            if plan.request.incremental and latest != incremental.base_id(plan.base):
                continue
            # Pending entries' blobs are live for garbage collection; the finisher's own
            # are checked again under the lock its sweep excludes, as commit_version does.
            require_stored(store, request.manifest, name=request.name)
            record = commit_in(
                conn,
                collection,
                plan.request,
                manifest_key=manifest_key,
                borrowed=borrowed,
                pending_id=plan.snapshot.version_id,
                writers=plan.writers,
            )
            if pending is not None:
                _drop_entries(conn, pending.id)
                if record.id != pending.id:
                    _drop_pending(conn, pending.id)
            return record
    raise ConflictError(
        f"The pending version of {request.name!r} (distributed id {distributed_id!r}) kept "
        f"changing while it was being finished ({_FINISH_ATTEMPTS} attempts); try again once "
        "the writers are done."
    )


def _plan_finish(
    store: Store, conn: Connection, request: CommitRequest, *, distributed_id: str
) -> _Plan:
    """The request to commit: the pending state read now, merged with the finisher's."""
    project_id = find_project(conn, request.entity, request.project)
    pending = None
    if project_id is not None:
        collection_id = conn.execute(
            select(collections.c.id).where(
                collections.c.project_id == project_id, collections.c.name == request.name
            )
        ).scalar()
        if collection_id is not None:
            pending = _pending_row(conn, collection_id, distributed_id)
    snapshot = _snapshot(conn, pending)
    if pending is None:
        return _over_base(store, conn, _Plan(snapshot, request, []))
    own = request.manifest
    if len(own) and own.algorithm.value != pending.algorithm:
        raise ConflictError(
            f"The pending version of {request.name!r} uses {pending.algorithm} digests; the "
            f"finishing artifact uses {own.algorithm.value}. Use one digest algorithm."
        )
    merged = {e.path: e for e in _pending_entries(conn, pending.id)}
    conflicts = [e.path for e in own if e.path in merged and not _same_content(merged[e.path], e)]
    if conflicts:
        sample = ", ".join(repr(p) for p in sorted(conflicts)[:5])
        raise ConflictError(
            f"{len(conflicts)} path(s) of the finishing artifact {request.name!r} were upserted "
            f"with other content under distributed id {distributed_id!r}: {sample}. Nothing "
            "was committed; the pending version is kept."
        )
    merged.update((e.path, e) for e in own if e.path not in merged)
    state = _pending_state(pending)
    final = replace(
        request,
        manifest=Manifest.of(merged.values(), Algorithm.parse(pending.algorithm)),
        metadata=validate_metadata({**state.metadata, **request.metadata}),
        aliases=validate_aliases(dict.fromkeys([*state.aliases, *request.aliases])),
        tags=validate_tags(dict.fromkeys([*snapshot.tags, *request.tags])),
        description=request.description if request.description is not None else pending.description,
        ttl_seconds=request.ttl_seconds if request.ttl_seconds is not None else pending.ttl_seconds,
    )
    validate_size(final.manifest.size, f"Artifact {request.name!r}")
    writers = list(
        conn.execute(
            select(lineage.c.run_id)
            .where(lineage.c.version_id == pending.id, lineage.c.direction == "logged")
            .order_by(lineage.c.created_at)
        ).scalars()
    )
    if state.incremental:
        final = replace(final, incremental=True)
    return _over_base(store, conn, _Plan(snapshot, final, writers))


def _over_base(store: Store, conn: Connection, plan: _Plan) -> _Plan:
    """An incremental *plan* laid over the collection's latest version, read now."""
    request = plan.request
    if not request.incremental:
        return plan
    base = incremental.resolve_base(
        store, conn, entity=request.entity, project=request.project, name=request.name
    )
    whole = replace(request, manifest=incremental.overlay(base, request.manifest))
    validate_size(whole.manifest.size, f"Artifact {request.name!r}")
    return replace(plan, request=whole, base=base)


def _pending_entries(conn: Connection, version_id: str) -> Iterator[Entry]:
    rows = conn.execute(
        select(pending_entries.c.path, pending_entries.c.entry).where(
            pending_entries.c.version_id == version_id
        )
    )
    for row in rows:
        yield Entry.from_json(row.path, row.entry)


def pending_manifest(store: Store, version_id: str, algorithm: Algorithm) -> Manifest:
    """The entries upserted so far into the pending version *version_id*, as a manifest
    (its digest is the digest the version gets if it is finished as it is)."""
    with store.engine.connect() as conn:
        return Manifest.of(_pending_entries(conn, version_id), algorithm)


def _drop_entries(conn: Connection, version_id: str) -> None:
    conn.execute(delete(pending_entries).where(pending_entries.c.version_id == version_id))


def _drop_pending(conn: Connection, version_id: str) -> None:
    """Delete a pending version and everything that points at it."""
    _drop_entries(conn, version_id)
    conn.execute(delete(tags).where(tags.c.version_id == version_id))
    conn.execute(delete(lineage).where(lineage.c.version_id == version_id))
    conn.execute(delete(aliases).where(aliases.c.version_id == version_id))
    conn.execute(delete(versions).where(versions.c.id == version_id))


# ----- listing and abandoning -----------------------------------------------------------


def list_pending(
    store: Store, *, entity: str, project: str, name: str | None = None
) -> list[VersionRecord]:
    """The pending versions of a project (of collection *name* when given), oldest first."""
    with store.engine.connect() as conn:
        project_id = find_project(conn, entity, project)
        if project_id is None:
            return []
        query = (
            select(versions.c.id)
            .join(collections, collections.c.id == versions.c.collection_id)
            .where(collections.c.project_id == project_id, versions.c.state == PENDING)
            .order_by(versions.c.created_at, versions.c.id)
        )
        if name is not None:
            query = query.where(collections.c.name == validate_name(name))
        ids = list(conn.execute(query).scalars())
        return [_pending_record(conn, i, entity=entity, project=project) for i in ids]


def abandon_pending(
    store: Store, *, entity: str, project: str, name: str, distributed_id: str
) -> VersionRecord:
    """Drop the pending version of *distributed_id* and its entries; returns what it was.

    Its blobs become unreferenced and garbage collection frees them. A later upsert with
    the same id starts a new pending version. NotFoundError when there is none.
    """
    distributed_id = validate_distributed_id(distributed_id)
    with store.engine.begin() as conn:
        collection = find_collection(conn, entity, project, name)
        conn.execute(
            select(collections.c.id).where(collections.c.id == collection.id).with_for_update()
        ).one()
        pending = _pending_row(conn, collection.id, distributed_id)
        if pending is None:
            raise NotFoundError(
                f"{entity}/{project}/{name} has no pending version with distributed id "
                f"{distributed_id!r}."
            )
        record = _pending_record(conn, pending.id, entity=entity, project=project)
        _drop_pending(conn, pending.id)
        return record
