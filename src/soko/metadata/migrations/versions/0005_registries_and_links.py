"""registries: organisations, registries, links as versions, collection tags

A link becomes a row of ``versions`` in its registry collection, with ``source_version_id``
naming the version it links: it gets its own id, ``vN``, aliases and tags. The rows of the
old ``links`` table are moved there, the registry's aliases re-pointed from the source
versions to the new link rows, and the table dropped.

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    # Plain added columns and indexes, no foreign keys: SQLite adds them in place, where a
    # constraint would mean re-creating tables that other tables' rows reference.
    op.add_column("entities", sa.Column("organisation_id", sa.Integer(), nullable=True))
    op.create_table(
        "registries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organisation", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("artifact_types", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation", "name", name="uq_registries_organisation_name"),
    )
    op.create_table(
        "collection_tags",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"]),
        sa.PrimaryKeyConstraint("collection_id", "tag"),
    )
    op.add_column("versions", sa.Column("source_version_id", sa.String(length=36), nullable=True))
    op.create_index(
        "uq_versions_collection_source",
        "versions",
        ["collection_id", "source_version_id"],
        unique=True,
    )
    op.create_index("ix_versions_source", "versions", ["source_version_id"])
    _move_links()
    op.drop_table("links")


def _move_links() -> None:
    conn = op.get_bind()
    meta = sa.MetaData()
    links = sa.Table("links", meta, autoload_with=conn)
    versions = sa.Table("versions", meta, autoload_with=conn)
    aliases = sa.Table("aliases", meta, autoload_with=conn)
    collections = sa.Table("collections", meta, autoload_with=conn)
    stamp = datetime.now(UTC)
    rows = conn.execute(
        sa.select(
            links.c.collection_id,
            links.c.version_id,
            links.c.link_index,
            links.c.created_at.label("linked_at"),
            versions.c.state,
            versions.c.digest,
            versions.c.algorithm,
            versions.c.manifest_blob,
            versions.c.metadata,
            versions.c.description,
            versions.c.size,
            versions.c.file_count,
        )
        .join(versions, versions.c.id == links.c.version_id)
        .order_by(links.c.collection_id, links.c.link_index)
    ).all()
    highest: dict[int, int] = {}
    for row in rows:
        link_id = str(uuid.uuid4())
        conn.execute(
            sa.insert(versions).values(
                id=link_id,
                collection_id=row.collection_id,
                version_index=row.link_index,
                state=row.state,
                digest=row.digest,
                algorithm=row.algorithm,
                manifest_blob=row.manifest_blob,
                metadata=row.metadata,
                description=row.description,
                size=row.size,
                file_count=row.file_count,
                created_at=row.linked_at,
                committed_at=row.linked_at,
                updated_at=stamp,
                source_version_id=row.version_id,
            )
        )
        conn.execute(
            sa.update(aliases)
            .where(
                aliases.c.collection_id == row.collection_id,
                aliases.c.version_id == row.version_id,
            )
            .values(version_id=link_id)
        )
        highest[row.collection_id] = max(highest.get(row.collection_id, -1), row.link_index)
    for collection_id, index in highest.items():
        conn.execute(
            sa.update(collections)
            .where(collections.c.id == collection_id)
            .values(next_index=index + 1)
        )


def downgrade() -> None:
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("link_index", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("collection_id", "link_index", name="uq_links_collection_index"),
        sa.UniqueConstraint("collection_id", "version_id", name="uq_links_collection_version"),
    )
    conn = op.get_bind()
    meta = sa.MetaData()
    versions = sa.Table("versions", meta, autoload_with=conn)
    links = sa.Table("links", meta, autoload_with=conn)
    aliases = sa.Table("aliases", meta, autoload_with=conn)
    tags = sa.Table("tags", meta, autoload_with=conn)
    lineage = sa.Table("lineage", meta, autoload_with=conn)
    rows = conn.execute(sa.select(versions).where(versions.c.source_version_id.is_not(None)))
    for row in rows.all():
        conn.execute(
            sa.insert(links).values(
                collection_id=row.collection_id,
                version_id=row.source_version_id,
                link_index=row.version_index,
                created_at=row.created_at,
            )
        )
        conn.execute(
            sa.update(aliases)
            .where(aliases.c.version_id == row.id)
            .values(version_id=row.source_version_id)
        )
        conn.execute(sa.delete(tags).where(tags.c.version_id == row.id))
        conn.execute(sa.delete(lineage).where(lineage.c.version_id == row.id))
        conn.execute(sa.delete(versions).where(versions.c.id == row.id))
    op.drop_index("ix_versions_source", table_name="versions")
    op.drop_index("uq_versions_collection_source", table_name="versions")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("source_version_id")
    op.drop_table("collection_tags")
    op.drop_table("registries")
    with op.batch_alter_table("entities") as batch:
        batch.drop_column("organisation_id")
    op.drop_table("organisations")
