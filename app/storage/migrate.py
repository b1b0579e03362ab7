"""Alembic, configured in code: migrations run the same from any working directory.

The scripts live in ``app/storage/migrations/versions``. Every run
holds a lock (PostgreSQL: an advisory lock; SQLite: ``BEGIN IMMEDIATE``) for
its whole transaction, so workers or instances starting together migrate once.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
# Any fixed 64-bit number; the same in every instance of chatgate.
_PG_LOCK = 0x63686174676174


def alembic_config(connection: Connection | None = None, cipher=None) -> AlembicConfig:
    """An Alembic config pointing at our scripts, sharing ``connection`` (and the cipher, for data) with them."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.attributes["connection"] = connection
    cfg.attributes["cipher"] = cipher
    return cfg


@functools.cache
def head() -> str:
    """The newest revision this release knows."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if found is None:  # pragma: no cover - a release always ships its migrations
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return found


@functools.cache
def known() -> frozenset[str]:
    """Every revision this release knows."""
    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def is_behind(revision: str | None) -> bool:
    """True when a database at ``revision`` needs ``upgrade`` for this release (never when it is newer)."""
    return revision is None or (revision != head() and revision in known())


def current(connection: Connection) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head", cipher=None) -> None:
    """Upgrade the schema to ``revision`` under the migration lock (``cipher`` for migrations that re-encrypt)."""
    with _locked(engine) as conn:
        command.upgrade(alembic_config(conn, cipher), revision)


def downgrade(engine: Engine, revision: str, cipher=None) -> None:
    """Downgrade the schema to ``revision`` under the migration lock."""
    with _locked(engine) as conn:
        command.downgrade(alembic_config(conn, cipher), revision)


def revision(engine: Engine, message: str, autogenerate: bool) -> None:
    """Write a new migration script (compared with the models when ``autogenerate``)."""
    with engine.connect() as conn:
        command.revision(alembic_config(conn), message=message, autogenerate=autogenerate)


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the migration lock until it commits (waiting for it as long as it takes)."""
    with engine.begin() as conn, without_deadline(conn):
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
        yield conn


@contextmanager
def without_deadline(conn) -> Iterator[None]:
    """Lift the statement timeouts (database.deadline_connection) on one connection for a block.

    Migrations may wait for one another's lock, and re-encrypting a large
    database takes as long as it takes.
    """
    driver = conn.connection.driver_connection
    if conn.dialect.name != "postgresql" or not hasattr(driver, "deadline"):
        yield
        return
    conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
    driver.deadline = None
    try:
        yield
    finally:
        driver.deadline = type(driver).deadline
