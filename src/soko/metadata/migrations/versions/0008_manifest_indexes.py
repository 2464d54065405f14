"""manifest indexes: the slices and folders of a stored manifest, read a page at a time

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Versions committed before this table get their index on first need (it is derived
    # from the manifest blob), so the upgrade writes no rows.
    op.create_table(
        "manifest_indexes",
        sa.Column("manifest_blob", sa.String(length=80), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("manifest_blob"),
    )


def downgrade() -> None:
    op.drop_table("manifest_indexes")
