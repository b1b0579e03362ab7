"""Alembic environment: runs on the connection chatgate hands it (see app/storage/migrate.py)."""
from __future__ import annotations

from alembic import context

from app.storage.tables import Base, UTCDateTime

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations through chatgate: flask --app wsgi db upgrade")


def render_item(kind, obj, _autogen_context):
    """Write our column types as plain SQLAlchemy ones: migrations must not import app code that changes."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(connection=connection, target_metadata=Base.metadata, render_item=render_item,
                  # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
