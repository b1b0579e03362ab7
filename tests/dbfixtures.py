"""Database fixtures: every storage test runs against SQLite and against PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (``TEST_POSTGRES_URL`` overrides);
each test gets a schema of its own (through ``search_path``), dropped after.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from typing import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from app import create_app, start

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


@contextmanager
def pg_schema() -> Iterator[str]:
    """A DATABASE_URL confined to a fresh PostgreSQL schema, dropped on exit."""
    name = "chatgate_test_" + secrets.token_hex(6)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    except OperationalError as err:
        admin.dispose()
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} ({type(err).__name__}); start it with "
                    + "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/chatgate.db"
    else:
        with pg_schema() as url:
            yield url


@pytest.fixture
def db_app(database_url):
    """Build testing apps on the test's database, sharing one key; their pools are closed afterwards."""
    made = []
    key = Fernet.generate_key().decode("ascii")

    def factory(**env):
        settings = {"APP_ENV": "testing", "DATABASE_URL": database_url, "DATA_ENCRYPTION_KEY": key,
                    **{k: str(v) for k, v in env.items()}}
        app = start(create_app(settings))
        made.append(app)
        return app

    yield factory
    for app in made:
        app.extensions["chatgate"].ledger.flush()  # before the database goes away under the writer
        app.extensions["chatgate"].cache_store.flush()
        app.extensions["chatgate"].database.dispose()


def raw_rows(app, sql: str) -> list[tuple]:
    """Rows of a raw SQL query on the app's database, bypassing the store."""
    with app.extensions["chatgate"].database.engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql).all()]


def identify_clients(app):
    """Let tests act as any client: ``X-Test-Client`` replaces the caller's id after admission has run."""
    import dataclasses

    from flask import g, request

    from app.api.admission import current_caller

    def _client():
        if "X-Test-Client" in request.headers:
            g.caller = dataclasses.replace(current_caller(), id=request.headers["X-Test-Client"])

    # Test-only: runs after the API blueprint's own admission hook.
    app.before_request_funcs.setdefault("api", []).append(_client)
    return app
