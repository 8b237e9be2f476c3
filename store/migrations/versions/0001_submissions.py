"""Submissions, as the pre-Alembic SQLite store created them (such databases are stamped at this revision).

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# PostgreSQL BIGINT; SQLite INTEGER PRIMARY KEY AUTOINCREMENT (the 64-bit rowid, never reused).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("strokes", sa.JSON(), nullable=False),
        sa.Column("simplified", sa.JSON(), nullable=False),
        sa.Column("canvas_width", sa.Integer(), nullable=False),
        sa.Column("canvas_height", sa.Integer(), nullable=False),
        sa.Column("predictions", sa.JSON(), nullable=True),
        sa.Column("n_strokes", sa.Integer(), nullable=False),
        sa.Column("n_points", sa.Integer(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("submissions_label_id", "submissions", ["label", "id"])


def downgrade() -> None:
    op.drop_index("submissions_label_id", table_name="submissions")
    op.drop_table("submissions")
