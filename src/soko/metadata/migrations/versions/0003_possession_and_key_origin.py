"""blob possession per project; where an API key came from

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project_blobs",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=48), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("project_id", "digest"),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("origin")
    op.drop_table("project_blobs")
