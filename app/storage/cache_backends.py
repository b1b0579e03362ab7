"""Where response-cache entries live: a database table, or Redis with native expiry.

Both hold opaque Fernet tokens under the hex digest of a cache key; neither
ever sees plaintext (``response_cache`` encrypts before it writes). Both
bound their size the same way: expired entries go first, then the oldest
until at most ``max_entries`` remain.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .database import Database
from .tables import CacheRow

BATCH = 200
# Redis keys: one string per entry, and one sorted set (digest -> creation time in ms) that orders them.
REDIS_PREFIX = "cg:cache:"
REDIS_INDEX = "cg:cache-index"

# One round trip per batch: write each entry with its lifetime, index it, drop what expired, then the oldest.
_LUA_PUT = """
local index = KEYS[1]
local max, now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV, 3 do
  redis.call('SET', ARGV[i], ARGV[i + 2], 'PX', ttl)
  redis.call('ZADD', index, tonumber(ARGV[i + 1]), ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', now - ttl)
local over = redis.call('ZCARD', index) - max
if over > 0 then
  for _, key in ipairs(redis.call('ZPOPMIN', index, over)) do
    redis.call('DEL', key)
  end
end
return over
"""
# Entries created at or before ARGV[1] (ms), which expiry has not removed yet when the TTL was shortened.
_LUA_PURGE = """
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, key in ipairs(old) do
  redis.call('DEL', key)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return #old
"""
# Only where unchanged meanwhile: an entry rewritten since is already under the newest key.
_LUA_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# A lookup is on every request's path: read through the driver. Expiry is checked on the entry's own time.
_GET = "SELECT body FROM response_cache WHERE key = ?"


class DatabaseEntries:
    """Entries in the ``response_cache`` table (SQLite or PostgreSQL)."""

    def __init__(self, db: Database):
        self.db = db
        # Built once: a writer runs several times a second, and building the statement cost more than running it.
        insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(cast(Table, CacheRow.__table__))
        # Two workers may store the same reply at once: the later write wins, which is as good.
        self._upsert = stmt.on_conflict_do_update(
            index_elements=[CacheRow.key],
            set_={"body": stmt.excluded.body, "created_at": stmt.excluded.created_at,
                  "expires_at": stmt.excluded.expires_at})

    def get(self, digest: str, now: float) -> bytes | None:
        """The token stored under ``digest`` (expired or not: the store checks the entry's age)."""
        token = self.db.quick_read(_GET, (digest,))
        return bytes(token) if token is not None else None

    def put(self, entries: list[tuple[str, bytes, float]], now: float, ttl: int, max_entries: int,
            trim: bool = True) -> None:
        """Write (digest, token, created) entries, replacing older ones; with ``trim``, then trim to ``max_entries``."""
        rows = [{"key": digest, "body": token, "created_at": _when(created), "expires_at": _when(created + ttl)}
                for digest, token, created in entries]
        with self.db.session(write=True) as session:
            session.connection().execute(self._upsert, rows)
            if not trim:
                return
            session.execute(delete(CacheRow).where(CacheRow.expires_at <= _when(now))
                            .execution_options(synchronize_session=False))
            over = (session.scalar(select(func.count()).select_from(CacheRow)) or 0) - max_entries
            if over > 0:
                oldest = select(CacheRow.key).order_by(CacheRow.created_at, CacheRow.key).limit(over)
                session.execute(delete(CacheRow).where(CacheRow.key.in_(oldest.scalar_subquery()))
                                .execution_options(synchronize_session=False))

    def purge_expired(self, now: float, ttl: int) -> int:
        """Delete every entry past its expiry or older than ``ttl`` seconds; returns how many."""
        purged = 0
        expired = or_(CacheRow.expires_at <= _when(now), CacheRow.created_at <= _when(now - ttl))
        while True:
            with self.db.session(write=True) as session:
                keys = session.scalars(select(CacheRow.key).where(expired).limit(BATCH)).all()
                if not keys:
                    return purged
                session.execute(delete(CacheRow).where(CacheRow.key.in_(keys))
                                .execution_options(synchronize_session=False))
            purged += len(keys)

    def reencrypt(self, rotate: Callable[[str, bytes], bytes]) -> int:
        """Re-encrypt every entry with ``rotate(digest, token)``; returns the rows rewritten."""
        table = cast(Table, CacheRow.__table__)
        stmt = (table.update().where(table.c.key == bindparam("k"), table.c.body == bindparam("old"))
                .values(body=bindparam("new")))
        done, after = 0, ""
        while True:
            with self.db.session(write=True) as session:
                rows = session.execute(select(CacheRow.key, CacheRow.body).where(CacheRow.key > after)
                                       .order_by(CacheRow.key).limit(BATCH)).all()
                if not rows:
                    return done
                session.connection().execute(stmt, [{"k": r.key, "old": r.body, "new": rotate(r.key, r.body)}
                                                    for r in rows])
            done += len(rows)
            after = rows[-1].key


class RedisEntries:
    """Entries in Redis: each a string with its own expiry, ordered by a sorted set for eviction."""

    def __init__(self, url: str):
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                            health_check_interval=30)
        self._put = self._client.register_script(_LUA_PUT)
        self._swap = self._client.register_script(_LUA_SWAP)
        self._purge = self._client.register_script(_LUA_PURGE)

    def get(self, digest: str, now: float) -> bytes | None:
        """The token stored under ``digest``; Redis has already dropped it if it expired."""
        return cast(bytes | None, self._client.get(REDIS_PREFIX + digest))

    def put(self, entries: list[tuple[str, bytes, float]], now: float, ttl: int, max_entries: int,
            trim: bool = True) -> None:
        """Write (digest, token, created) entries with their lifetime, then trim to ``max_entries``.

        Always trims: in Redis that is a sorted-set call or two in the same round trip.
        """
        args: list = [max_entries, int(now * 1000), ttl * 1000]
        for digest, token, created in entries:
            args += [REDIS_PREFIX + digest, int(created * 1000), token]
        self._put(keys=[REDIS_INDEX], args=args)

    def purge_expired(self, now: float, ttl: int) -> int:
        """Delete every entry older than ``ttl`` seconds (Redis drops the rest when they expire); returns how many."""
        return int(self._purge(keys=[REDIS_INDEX], args=[int((now - ttl) * 1000)]))

    def reencrypt(self, rotate: Callable[[str, bytes], bytes]) -> int:
        """Re-encrypt every entry with ``rotate(digest, token)``, keeping its expiry; returns the entries rewritten."""
        done = 0
        for key in self._client.scan_iter(match=REDIS_PREFIX + "*", count=BATCH):
            token = cast(bytes | None, self._client.get(key))
            digest = key.decode()[len(REDIS_PREFIX):]
            if token is not None and self._swap(keys=[key], args=[token, rotate(digest, token)]):
                done += 1
        return done
