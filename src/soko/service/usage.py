"""What each project holds: collections, live versions, files and bytes, for operators.

Two sizes, since blobs are stored once however many versions name them: ``logical_bytes``
sums the sizes of the live versions (what downloading every one would move), and
``blob_bytes`` sums the distinct blobs the project has proven it holds
(``project_blobs``: uploaded for it, or borrowed by one of its commits). Neither is what
the store frees when the project goes: another project may hold the same blobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from soko.core.records import COMMITTED
from soko.metadata.schema import collections, entities, project_blobs, projects, versions


@dataclass(frozen=True, slots=True)
class ProjectUsage:
    entity: str
    project: str
    collections: int
    versions: int
    files: int
    logical_bytes: int
    blob_bytes: int
    last_commit_at: datetime | None


def project_usage(engine: Engine) -> list[ProjectUsage]:
    """Every project, sorted by entity and name, with what it holds."""
    live = (
        select(
            collections.c.project_id,
            func.count(versions.c.id).label("versions"),
            func.coalesce(func.sum(versions.c.file_count), 0).label("files"),
            func.coalesce(func.sum(versions.c.size), 0).label("bytes"),
            func.max(versions.c.committed_at).label("last_commit_at"),
        )
        .join(versions, versions.c.collection_id == collections.c.id)
        .where(versions.c.state == COMMITTED, versions.c.deleted_at.is_(None))
        .group_by(collections.c.project_id)
        .subquery()
    )
    counted = (
        select(collections.c.project_id, func.count(collections.c.id).label("collections"))
        .group_by(collections.c.project_id)
        .subquery()
    )
    held = (
        select(
            project_blobs.c.project_id,
            func.coalesce(func.sum(project_blobs.c.size), 0).label("blob_bytes"),
        )
        .group_by(project_blobs.c.project_id)
        .subquery()
    )
    query = (
        select(
            entities.c.name.label("entity"),
            projects.c.name.label("project"),
            counted.c.collections,
            live.c.versions,
            live.c.files,
            live.c.bytes,
            live.c.last_commit_at,
            held.c.blob_bytes,
        )
        .join(entities, entities.c.id == projects.c.entity_id)
        .outerjoin(counted, counted.c.project_id == projects.c.id)
        .outerjoin(live, live.c.project_id == projects.c.id)
        .outerjoin(held, held.c.project_id == projects.c.id)
        .order_by(entities.c.name, projects.c.name)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        ProjectUsage(
            entity=row.entity,
            project=row.project,
            collections=int(row.collections or 0),
            versions=int(row.versions or 0),
            files=int(row.files or 0),
            logical_bytes=int(row.bytes or 0),
            blob_bytes=int(row.blob_bytes or 0),
            last_commit_at=row.last_commit_at,
        )
        for row in rows
    ]
