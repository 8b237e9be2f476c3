"""What the service stores (submissions, scores, taught categories): tables, queries and Alembic migrations.

Shared by the API and by training's export, so it depends on SQLAlchemy (and Alembic for
migrations) only, never on ``api`` or ``training``. SQLite is the embedded default; a
``postgresql+psycopg://`` URL uses PostgreSQL.
"""
