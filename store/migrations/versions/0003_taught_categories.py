"""Categories taught by players: their drawings, and a version counter every replica reads.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "taught_categories",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(40), nullable=False, unique=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "taught_drawings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("category_id", BigId, sa.ForeignKey("taught_categories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("strokes", sa.JSON(), nullable=False),
        sa.Column("simplified", sa.JSON(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_taught_drawings_category_id", "taught_drawings", ["category_id"])
    version = op.create_table(
        "taught_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("taught_version")
    op.drop_index("ix_taught_drawings_category_id", table_name="taught_drawings")
    op.drop_table("taught_drawings")
    op.drop_table("taught_categories")
