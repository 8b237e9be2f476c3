"""Alembic environment: migrates the connection ``store.schema`` hands over, or, from the
``alembic`` command line (``alembic.ini`` at the repository root), ``$DATABASE_URL``."""

from __future__ import annotations

import os

from alembic import context

from store.db import DEFAULT_DATABASE_URL, make_engine
from store.tables import Base

config = context.config
target_metadata = Base.metadata


def run(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; Alembic rebuilds the table instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    with engine.connect() as conn:
        run(conn)
        conn.commit()
    engine.dispose()
