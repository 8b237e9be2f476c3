"""Players: where a submission's label came from, its delete token, and the leaderboard.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Rows already stored do not say who chose their label: 'unknown', never exported for training.
    op.add_column("submissions", sa.Column("label_source", sa.String(16), nullable=False, server_default="unknown"))
    op.add_column("submissions", sa.Column("delete_token_hash", sa.String(64), nullable=True))
    op.create_table(
        "scores",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("name", sa.String(24), nullable=False),
        sa.Column("rounds_won", sa.Integer(), nullable=False),
        sa.Column("rounds_played", sa.Integer(), nullable=False),
        sa.Column("total_seconds", sa.Float(), nullable=False),
        sa.CheckConstraint("rounds_played BETWEEN 1 AND 20", name="scores_rounds_played"),
        sa.CheckConstraint("rounds_won BETWEEN 0 AND rounds_played", name="scores_rounds_won"),
        sa.CheckConstraint("total_seconds > 0 AND total_seconds <= 60 * rounds_played", name="scores_total_seconds"),
        sqlite_autoincrement=True,
    )
    op.create_index("scores_rank", "scores", ["rounds_won", "total_seconds"])


def downgrade() -> None:
    op.drop_index("scores_rank", table_name="scores")
    op.drop_table("scores")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("delete_token_hash")
        batch.drop_column("label_source")
