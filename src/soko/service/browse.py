"""Listings for people browsing a store: pages of collections, versions and runs, and the
lineage neighbourhood of a version or a run.

Every listing is a page (``offset``, ``limit``) with the total it is a page of, read with
a bounded number of queries however large the collection: the web UI shows the first page
of a collection of 10,000 versions as fast as that of one with ten.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Connection, and_, func, or_, select

from soko.core.names import validate_job_type, validate_run_id, validate_version_id
from soko.core.records import COMMITTED, RunRecord, VersionRecord, as_utc
from soko.errors import ValidationError
from soko.metadata.schema import collections, entities, lineage, projects, runs, versions
from soko.service.catalog import find_collection, find_project, records_by_ids, version_records
from soko.service.runs import _run_record, get_run
from soko.service.store import Store
from soko.service.versions import _home, get_version

T = TypeVar("T")

PAGE_MAX = 500
"""The most rows one page holds."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total


def _check_page(offset: int, limit: int) -> None:
    if offset < 0:
        raise ValidationError(f"A page's offset must be 0 or more, not {offset}.")
    if not 1 <= limit <= PAGE_MAX:
        raise ValidationError(f"A page holds from 1 to {PAGE_MAX} rows, not {limit}.")


@dataclass(frozen=True, slots=True)
class CollectionSummary:
    name: str
    type: str
    description: str | None
    version_count: int
    created_at: datetime
    updated_at: datetime
    """When its newest version was logged (its creation, while it has none)."""


CollectionOrder = Literal["updated", "name"]


def project_exists(store: Store, entity: str, project: str) -> bool:
    with store.engine.connect() as conn:
        return find_project(conn, entity, project) is not None


def _like_pattern(text: str) -> str:
    """*text* as a LIKE pattern matching it anywhere, its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def collection_page(
    store: Store,
    entity: str,
    project: str,
    *,
    search: str = "",
    type_name: str | None = None,
    order: CollectionOrder = "updated",
    offset: int = 0,
    limit: int = 100,
) -> Page[CollectionSummary]:
    """The project's collections whose name contains *search* (case-insensitive), newest
    update first (or by name)."""
    _check_page(offset, limit)
    with store.engine.connect() as conn:
        entity = _home(conn, entity, project)
        project_id = find_project(conn, entity, project)
        if project_id is None:
            return Page([], 0, offset, limit)
        stats = (
            select(
                versions.c.collection_id,
                func.count().label("n"),
                func.max(versions.c.created_at).label("newest"),
            )
            .where(versions.c.state == COMMITTED)
            .group_by(versions.c.collection_id)
            .subquery()
        )
        where = [collections.c.project_id == project_id]
        if search:
            where.append(
                func.lower(collections.c.name).like(_like_pattern(search.lower()), escape="\\")
            )
        if type_name is not None:
            where.append(collections.c.type == type_name)
        updated = func.coalesce(stats.c.newest, collections.c.created_at)
        query = (
            select(
                collections.c.name,
                collections.c.type,
                collections.c.description,
                collections.c.created_at,
                func.coalesce(stats.c.n, 0).label("n"),
                updated.label("updated"),
            )
            .select_from(collections.outerjoin(stats, stats.c.collection_id == collections.c.id))
            .where(and_(*where))
        )
        ordering = (
            (updated.desc(), collections.c.name) if order == "updated" else (collections.c.name,)
        )
        total = conn.execute(
            select(func.count()).select_from(collections).where(and_(*where))
        ).scalar_one()
        rows = conn.execute(query.order_by(*ordering).offset(offset).limit(limit)).all()
    items = [
        CollectionSummary(
            name=r.name,
            type=r.type,
            description=r.description,
            version_count=int(r.n),
            created_at=as_utc(r.created_at),
            updated_at=as_utc(r.updated),
        )
        for r in rows
    ]
    return Page(items, int(total), offset, limit)


def version_page(
    store: Store, entity: str, project: str, name: str, *, offset: int = 0, limit: int = 50
) -> Page[VersionRecord]:
    """Committed versions (or links) of a collection, newest first."""
    _check_page(offset, limit)
    with store.engine.connect() as conn:
        entity = _home(conn, entity, project)
        collection = find_collection(conn, entity, project, name)
        live = and_(versions.c.collection_id == collection.id, versions.c.state == COMMITTED)
        total = conn.execute(select(func.count()).select_from(versions).where(live)).scalar_one()
        rows = conn.execute(
            select(versions)
            .where(live)
            .order_by(versions.c.version_index.desc())
            .offset(offset)
            .limit(limit)
        ).all()
        records = version_records(conn, rows, entity=entity, project=project)
    return Page(records, int(total), offset, limit)


def run_page(
    store: Store,
    entity: str,
    project: str,
    *,
    job_type: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[RunRecord]:
    """The project's runs (of *job_type*, when given), newest first."""
    _check_page(offset, limit)
    with store.engine.connect() as conn:
        project_id = find_project(conn, entity, project)
        if project_id is None:
            return Page([], 0, offset, limit)
        where = [runs.c.project_id == project_id]
        if job_type is not None:
            where.append(runs.c.job_type == validate_job_type(job_type))
        total = conn.execute(
            select(func.count()).select_from(runs).where(and_(*where))
        ).scalar_one()
        rows = conn.execute(
            select(runs)
            .where(and_(*where))
            .order_by(runs.c.created_at.desc(), runs.c.id)
            .offset(offset)
            .limit(limit)
        ).all()
        records = [_run_record(conn, r) for r in rows]
    return Page(records, int(total), offset, limit)


# ----- lineage ---------------------------------------------------------------------------

NodeKind = Literal["run", "version"]


@dataclass
class Neighbourhood:
    """Runs and versions within some hops of a start node, and the edges between them.

    An edge ``(a, b)`` is an id pair: a version used by a run (version → run) or logged by
    it (run → version). Node ids are ``"run:<id>"`` and ``"version:<id>"``.
    """

    start: str
    runs: dict[str, RunRecord] = field(default_factory=dict)
    versions: dict[str, VersionRecord] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    truncated: bool = False
    """Whether the walk stopped at ``max_nodes`` before its last hop."""


def _edges_touching(conn: Connection, nodes: Iterable[str], *, upstream: bool) -> Sequence[Any]:
    """Lineage rows that lead into (*upstream*) or out of the given nodes."""
    run_ids = [n[4:] for n in nodes if n.startswith("run:")]
    version_ids = [n[8:] for n in nodes if n.startswith("version:")]
    conditions = []
    # Into a run: the versions it used; out of it: those it logged. The other way round
    # for a version.
    run_direction = "used" if upstream else "logged"
    version_direction = "logged" if upstream else "used"
    for part in _parts(run_ids):
        conditions.append(and_(lineage.c.run_id.in_(part), lineage.c.direction == run_direction))
    for part in _parts(version_ids):
        conditions.append(
            and_(lineage.c.version_id.in_(part), lineage.c.direction == version_direction)
        )
    if not conditions:
        return []
    return conn.execute(
        select(lineage.c.run_id, lineage.c.version_id, lineage.c.direction).where(or_(*conditions))
    ).all()


def _parts(ids: list[str], size: int = 400) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _run_outlines(conn: Connection, run_ids: list[str]) -> list[RunRecord]:
    """The runs of *run_ids* as a graph names them, in one query: their config, summary
    and history are left out (a graph of a thousand runs reads none of them)."""
    rows = conn.execute(
        select(
            runs.c.id,
            runs.c.name,
            runs.c.job_type,
            runs.c.group_name,
            runs.c.state,
            runs.c.created_at,
            runs.c.finished_at,
            entities.c.name.label("entity"),
            projects.c.name.label("project"),
        )
        .join(projects, projects.c.id == runs.c.project_id)
        .join(entities, entities.c.id == projects.c.entity_id)
        .where(runs.c.id.in_(run_ids))
    ).all()
    return [
        RunRecord(
            id=r.id,
            entity=r.entity,
            project=r.project,
            name=r.name,
            job_type=r.job_type,
            group=r.group_name,
            config={},
            state=r.state,
            created_at=as_utc(r.created_at),
            finished_at=as_utc(r.finished_at) if r.finished_at else None,
        )
        for r in rows
    ]


def runs_using(store: Store, version_id: str, *, limit: int = 50) -> Page[RunRecord]:
    """The first *limit* runs that used the version, oldest first (outlines, see
    :func:`_run_outlines`), and how many there are."""
    validate_version_id(version_id)
    _check_page(0, limit)
    used = and_(lineage.c.version_id == version_id, lineage.c.direction == "used")
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(lineage).where(used)).scalar_one()
        ids = list(
            conn.execute(
                select(lineage.c.run_id).where(used).order_by(lineage.c.created_at).limit(limit)
            ).scalars()
        )
        outlines = {r.id: r for r in _run_outlines(conn, ids)}
    return Page([outlines[i] for i in ids if i in outlines], int(total), 0, limit)


def neighbourhood(
    store: Store, kind: NodeKind, node_id: str, *, hops: int = 2, max_nodes: int = 2000
) -> Neighbourhood:
    """The runs and versions upstream and downstream of a version or run, up to *hops*
    edges away in each direction (at most about *max_nodes* of them)."""
    if not 1 <= hops <= 20:
        raise ValidationError(f"hops must be from 1 to 20, not {hops}.")
    if kind == "run":
        validate_run_id(node_id)
        get_run(store, node_id)  # NotFoundError for an unknown run
    else:
        validate_version_id(node_id)
        get_version(store, node_id)
    start = f"{kind}:{node_id}"
    found = Neighbourhood(start=start)
    seen = {start}
    with store.engine.connect() as conn:
        for upstream in (True, False):
            frontier = {start}
            for _ in range(hops):
                if not frontier or len(seen) >= max_nodes:
                    found.truncated = found.truncated or bool(frontier)
                    break
                next_frontier: set[str] = set()
                for row in _edges_touching(conn, frontier, upstream=upstream):
                    run_node, version_node = f"run:{row.run_id}", f"version:{row.version_id}"
                    if row.direction == "used":
                        found.edges.add((version_node, run_node))
                    else:
                        found.edges.add((run_node, version_node))
                    for node in (run_node, version_node):
                        if node not in seen:
                            seen.add(node)
                            next_frontier.add(node)
                frontier = next_frontier
        run_ids = [n[4:] for n in seen if n.startswith("run:")]
        version_ids = [n[8:] for n in seen if n.startswith("version:")]
        for part in _parts(run_ids):
            found.runs.update((r.id, r) for r in _run_outlines(conn, part))
        for record in records_by_ids(conn, version_ids):
            found.versions[record.id] = record
    return found
