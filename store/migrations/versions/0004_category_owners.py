"""Taught categories get owners, a name key, and their embeddings stored with them.

``name_key`` is ``store.names.key(name)`` (unique): names that look the same are the same name.
``delete_token_hash``: only whoever taught a category may delete it (categories taught before have
none, and only an operator can remove them). ``embeddings`` (float32, one row per drawing) and
``embedded_by`` (the model version that computed them): a worker loads them instead of embedding
every drawing again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from store.names import key

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("taught_categories", sa.Column("name_key", sa.String(200), nullable=True))
    op.add_column("taught_categories", sa.Column("delete_token_hash", sa.String(64), nullable=True))
    op.add_column("taught_categories", sa.Column("embeddings", sa.LargeBinary(), nullable=True))
    op.add_column("taught_categories", sa.Column("embedded_by", sa.String(80), nullable=True))
    connection = op.get_bind()
    table = sa.table("taught_categories", sa.column("id"), sa.column("name"), sa.column("name_key"))
    seen: set[str] = set()
    for cid, name in connection.execute(sa.select(table.c.id, table.c.name).order_by(table.c.id)).all():
        # Names taught before that now share a key keep their rows: the later ones get a distinct key.
        name_key = key(name) if key(name) not in seen else f"{key(name)}#{cid}"
        seen.add(name_key)
        connection.execute(sa.update(table).where(table.c.id == cid).values(name_key=name_key))
    with op.batch_alter_table("taught_categories") as batch:
        batch.alter_column("name_key", existing_type=sa.String(200), nullable=False)
        batch.create_unique_constraint("uq_taught_categories_name_key", ["name_key"])


def downgrade() -> None:
    with op.batch_alter_table("taught_categories") as batch:
        batch.drop_constraint("uq_taught_categories_name_key", type_="unique")
        batch.drop_column("embedded_by")
        batch.drop_column("embeddings")
        batch.drop_column("delete_token_hash")
        batch.drop_column("name_key")
