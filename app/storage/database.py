"""The database: one pooled engine per app, short transactions, readiness.

SQLite (the embedded default) runs in WAL mode with ``synchronous=NORMAL``
and a busy timeout, and write transactions start with ``BEGIN IMMEDIATE``,
so concurrent writers queue instead of failing with "database is locked".
PostgreSQL (``postgresql+psycopg://``) gets a sized pool with pre-ping.
Nothing connects at import time, nor while the app is being built.

A stalled database answers 503 ``database_unavailable`` in bounded time:
waiting for a pooled connection gives up after ``DB_POOL_TIMEOUT``; on
PostgreSQL the server cancels a statement after ``DB_STATEMENT_TIMEOUT``, and
because a stalled network (packets dropped, nothing refused) brings no
cancellation back, the client also stops waiting a second later and closes
that connection, so the pool never hands it out again.

Schema policy: in development and testing start-up (``app.start``) upgrades the
schema (``DB_AUTO_MIGRATE``, on by default there). In production it does not: run
``flask --app wsgi db upgrade`` once per release; until then every storage
call is a 503 ``schema_outdated`` and ``/readyz`` fails, so a load balancer
never routes to an instance whose code is ahead of its schema.
"""
from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from ..errors import ConfigError, StorageUnavailable, translate
from . import migrate

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30
PG_CONNECT_TIMEOUT_S = 5
# How much longer than the server's statement timeout the client waits before it gives up on the network.
CLIENT_GRACE_S = 1.0
_WRITE = "chatgate_write"


class Database:
    """An engine plus the transaction helpers every storage module uses."""

    def __init__(self, engine: Engine, *, check_schema: bool = False):
        self.engine = engine
        self._writer = engine.execution_options(**{_WRITE: True})
        # A single shared in-memory connection must never carry two transactions at once.
        self._serial = threading.RLock() if isinstance(engine.pool, StaticPool) else nullcontext()
        self._schema_ok = not check_schema
        dialect = engine.dialect
        # The driver's own error base and placeholder style, for quick_read.
        self._dbapi_error = getattr(dialect.loaded_dbapi, "Error", Exception)
        self._quick_marks = dialect.paramstyle != "qmark"
        own_reader = dialect.name == "sqlite" and not isinstance(engine.pool, StaticPool)
        self._reader_lock = threading.Lock() if own_reader else None
        self._reader: tuple | None = None  # (process id, detached DBAPI connection)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._serial:
            try:
                self.require_schema()
                with Session(self._writer if write else self.engine, expire_on_commit=False) as session:
                    with session.begin():
                        yield session
            except Exception as err:
                down = translate(err)
                if not isinstance(down, StorageUnavailable):
                    raise
                # The type only: a driver's message may quote a statement with user data.
                log.error("database unavailable: %s", type(err).__name__)
                raise down from None

    def quick_read(self, sql: str, params: tuple):
        """The first column of the first row of ``sql`` (``?`` placeholders), straight through the driver.

        For a lookup on every request's path: no ORM session, no statement compilation and no
        transaction (one SELECT reads a consistent snapshot by itself), at a tenth of a session's
        cost. A SQLite file is read through one connection of this process's own, kept open (a
        read takes microseconds, so they queue on it rather than on the pool). Any failure of the
        database is a StorageUnavailable, as everywhere else.
        """
        if self._quick_marks:
            sql = sql.replace("?", "%s")
        with self._serial if self._reader_lock is None else self._reader_lock:
            conn = None
            try:
                conn = self._quick_connection()
                cursor = conn.cursor()
                cursor.execute(sql, params)
                row = cursor.fetchone()
                cursor.close()
            except Exception as err:
                if self._reader is not None and conn is self._reader[1]:
                    self._close_reader()  # a broken connection is not kept
                if not isinstance(err, self._dbapi_error) and not isinstance(translate(err), StorageUnavailable):
                    raise
                log.error("database unavailable: %s", type(err).__name__)
                raise StorageUnavailable() from None
            finally:
                if conn is not None and self._reader_lock is None:
                    conn.close()  # back to the pool, which rolls back whatever the driver began
        return row[0] if row else None

    def _quick_connection(self):
        if self._reader_lock is None:
            return self.engine.raw_connection()
        if self._reader is None or self._reader[0] != os.getpid():
            reader = self.engine.raw_connection()
            reader.detach()  # ours until dispose(), never back in the pool
            self._reader = (os.getpid(), reader)
        return self._reader[1]

    def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and reader[0] == os.getpid():
            try:
                reader[1].close()
            except Exception as err:  # pragma: no cover - closing a broken connection may fail too
                log.debug("closing the reading connection failed: %s", type(err).__name__)

    def require_schema(self) -> None:
        """Refuse to use a schema older than this release (checked until it is not)."""
        if self._schema_ok:
            return
        with self.engine.connect() as conn:
            current = migrate.current(conn)
        # A newer schema is fine: during a rolling deploy the old release keeps serving on it.
        if migrate.is_behind(current):
            log.error("database schema is at %s, this release needs %s: run `flask --app wsgi db upgrade`",
                      current or "nothing", migrate.head())
            raise StorageUnavailable("the database schema is out of date; run `flask --app wsgi db upgrade`",
                                     code="schema_outdated")
        self._schema_ok = True

    def check(self) -> str:
        """'ok', 'unavailable' or 'schema_outdated', for /readyz."""
        try:
            with self._serial:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
                self.require_schema()
        except StorageUnavailable as err:
            return "schema_outdated" if err.code == "schema_outdated" else "unavailable"
        except Exception as err:
            if not isinstance(translate(err), StorageUnavailable):
                raise
            log.warning("readiness: database unavailable: %s", type(err).__name__)
            return "unavailable"
        return "ok"

    def upgrade(self, revision: str = "head", cipher=None) -> None:
        """Run migrations up to ``revision`` (one runner at a time); ``cipher`` for those that re-encrypt text."""
        with self._serial:
            migrate.upgrade(self._writer, revision, cipher)

    def upgrade_at_start(self, cipher=None) -> None:
        """Upgrade to the newest schema at start-up; an unreachable database is one ConfigError line."""
        try:
            self.upgrade(cipher=cipher)
        except Exception as err:
            if not isinstance(translate(err), StorageUnavailable):
                raise
            raise ConfigError(f"DATABASE_URL: cannot reach the database to migrate it ({type(err).__name__})") from None

    def downgrade(self, revision: str, cipher=None) -> None:
        """Run migrations down to ``revision``."""
        with self._serial:
            migrate.downgrade(self._writer, revision, cipher)

    def revision(self) -> str | None:
        """The schema revision the database is at (None before the first migration)."""
        with self._serial, self.engine.connect() as conn:
            return migrate.current(conn)

    def dispose(self) -> None:
        """Close every pooled connection, and the reading one."""
        self._close_reader()
        self.engine.dispose()


def database_url(raw: str, root: str) -> URL:
    """Parse DATABASE_URL; a relative SQLite path is relative to ``root``, not the working directory."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError("DATABASE_URL: expected a SQLAlchemy URL such as sqlite:///instance/chatgate.db") from None
    if url.drivername in ("postgres", "postgresql"):
        # psycopg (3) is the driver we ship; a bare postgresql:// would look for psycopg2.
        url = url.set(drivername="postgresql+psycopg")
    if _sqlite_file(url) and not os.path.isabs(url.database or ""):
        url = url.set(database=os.path.join(root, url.database or ""))
    return url


def _sqlite_file(url: URL) -> bool:
    db = url.database or ""
    return url.get_backend_name() == "sqlite" and db not in ("", ":memory:") and not db.startswith("file:")


def make_engine(url: URL, *, pool_size: int = 10, max_overflow: int = 20, pool_timeout: float = 5.0,
                statement_timeout: float = 5.0) -> Engine:
    """A pooled engine for ``url``, tuned for its backend, that never waits without a bound."""
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_engine(url, pool_size, max_overflow, pool_timeout)
        return _postgres_engine(url, pool_size, max_overflow, pool_timeout, statement_timeout)
    except (ImportError, ArgumentError) as err:
        raise ConfigError(f"DATABASE_URL: cannot use the {url.drivername} driver ({type(err).__name__})") from None


def _postgres_engine(url: URL, pool_size: int, max_overflow: int, pool_timeout: float,
                     statement_timeout: float) -> Engine:
    connect_timeout = max(2, min(PG_CONNECT_TIMEOUT_S, math.ceil(pool_timeout)))  # libpq's floor is 2 s
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": connect_timeout}
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True,
                           pool_recycle=1800, pool_timeout=pool_timeout, connect_args=connect_args)
    connection_class = deadline_connection(statement_timeout + CLIENT_GRACE_S)
    setting = f"-c statement_timeout={int(statement_timeout * 1000)}"

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        # Added to any options the URL carries (a search_path, say), not instead of them.
        cparams["options"] = f"{cparams.get('options', '')} {setting}".strip()
        return connection_class.connect(*cargs, **cparams)

    return engine


def deadline_connection(seconds: float | None):
    """A psycopg connection class whose every wait on the server gives up after ``seconds``, closing itself."""
    import psycopg

    timeout_error = getattr(psycopg.errors, "_WaitTimeout", psycopg.OperationalError)

    class DeadlineConnection(psycopg.Connection):
        deadline = seconds

        def wait(self, gen, interval=0.1, timeout=None):
            """psycopg's wait, with our deadline unless the call brings its own."""
            try:
                return super().wait(gen, interval, timeout if timeout is not None else self.deadline)
            except timeout_error:
                # The statement may still be running, or its answer lost: this connection is done for.
                self.pgconn.finish()
                raise

    return DeadlineConnection


def _sqlite_engine(url: URL, pool_size: int, max_overflow: int, pool_timeout: float) -> Engine:
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    if _sqlite_file(url):
        engine = create_engine(url, connect_args=connect_args, pool_size=pool_size, max_overflow=max_overflow,
                               pool_timeout=pool_timeout)
        path = url.database or ""

        @event.listens_for(engine, "do_connect")
        def _make_dir(*_args):
            # The instance/ folder is made on first use, not at import or start-up.
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    else:
        # One connection, so every checkout sees the same in-memory database.
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # We emit BEGIN ourselves (below); the driver's own transaction handling would defer it.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in (f"busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}", "journal_mode = WAL",
                       "synchronous = NORMAL", "foreign_keys = ON", "secure_delete = ON"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # IMMEDIATE takes the write lock up front: a writer waits for another (busy_timeout)
        # instead of failing later when its read snapshot turns out to be stale.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine
