"""Client API keys: made, listed, revoked and checked (``AUTH_MODE=keys``).

Keys are random, shown once, and stored only as HMAC-SHA256 digests under a
server secret (``KEY_HASH_SECRET``), so a copy of the database does not let
anyone call the gateway. A presented key is hashed and looked up by digest
(or by the digest it replaced, while a rotation's grace period lasts); the
final comparison is constant-time. Verified keys are cached in-process for a
few seconds (never past their expiry), which is also how long a revocation, a
rotation or a change of limits takes to reach every worker.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from sqlalchemy import CursorResult, or_, select, update

from ..config import Config
from ..errors import AuthenticationFailed, ConfigError, InvalidRequest
from ..storage.crypto import development_key
from ..storage.database import Database
from ..storage.tables import ClientKeyRow

KEY_PREFIX = "cg-"
_KEY_SHAPE = re.compile(r"^cg-[A-Za-z0-9_-]{43}$")
_BEARER = re.compile(r"^Bearer ([!-~]{1,200})$")
CACHE_SECONDS = 5.0
LAST_USED_EVERY = 60.0


@dataclass(frozen=True)
class Caller:
    """The authenticated client of this request."""

    id: str                       # owner of conversations and usage rows
    limit_key: str                # what limits are counted against
    name: str = "anonymous"
    rate_limit: str | None = None
    token_rate_limit: str | None = None
    daily_token_quota: int | None = None
    budget_day_micros: int | None = None      # dollar budgets, in micro-dollars
    budget_month_micros: int | None = None
    max_streams: int | None = None            # open streams at once (None: MAX_STREAMS_PER_CLIENT)

# The limits a key row carries, as ``create`` and ``update`` take them.
KEY_LIMITS = ("rate_limit", "token_rate_limit", "daily_token_quota", "budget_day_micros", "budget_month_micros",
              "max_streams")


class KeyRing:
    """Creates, lists, revokes and checks client keys (``key_admin`` builds the admin's operations on it)."""

    def __init__(self, database: Database, secret: bytes):
        self._db = database
        self._secret = secret
        self._cache: dict[bytes, tuple[float, Caller]] = {}
        self._touched: dict[int, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "<KeyRing>"

    def digest(self, key: str) -> bytes:
        """The keyed hash stored for ``key``."""
        return hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).digest()

    def new_key(self) -> tuple[str, str, bytes]:
        """A fresh key with its prefix and digest: the caller shows the key once and stores the other two."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        return key, key[:10], self.digest(key)

    def forget(self) -> None:
        """Drop this process's verified keys (other workers drop theirs within CACHE_SECONDS)."""
        with self._lock:
            self._cache.clear()

    def create(self, name: str, **limits) -> str:
        """Make a key for ``name`` (with any of KEY_LIMITS) and return it: the only time it is ever visible."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise InvalidRequest("a key name is 1 to 64 letters, digits, '.', '_' or '-'", param="name")
        key, prefix, digest = self.new_key()
        row = ClientKeyRow(name=name, prefix=prefix, digest=digest, created_at=_now(),
                           **{field: limits.get(field) for field in KEY_LIMITS})
        with self._db.session(write=True) as session:
            if session.scalar(select(ClientKeyRow.id).where(ClientKeyRow.name == name)) is not None:
                raise InvalidRequest(f"a key named {name!r} exists already", param="name", code="duplicate")
            session.add(row)
        return key

    def list(self) -> list[ClientKeyRow]:
        """Every key, oldest first (digests included, keys never)."""
        with self._db.session() as session:
            return list(session.scalars(select(ClientKeyRow).order_by(ClientKeyRow.id)))

    def revoke(self, name: str) -> bool:
        """Revoke the key called ``name``; False when there is none."""
        with self._db.session(write=True) as session:
            done = session.execute(update(ClientKeyRow).where(ClientKeyRow.name == name,
                                                              ClientKeyRow.revoked_at.is_(None))
                                   .values(revoked_at=_now()))
        self.forget()
        return bool(cast(CursorResult, done).rowcount)

    def authenticate(self, header: str | None, before_lookup: Callable[[], None] | None = None) -> Caller:
        """The caller behind an Authorization header, or AuthenticationFailed (never echoing the key).

        ``before_lookup`` runs only when the database must be asked (the key is
        well formed and not cached): the failed-authentication throttle goes there.
        """
        match = _BEARER.match(header or "")
        if not match:
            raise _refused("missing or malformed Authorization header; send 'Bearer <key>'",
                           "missing_api_key" if not header else "invalid_api_key")
        key = match.group(1)
        if not _KEY_SHAPE.match(key):
            raise _refused("invalid API key")
        digest = self.digest(key)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached and cached[0] > now:
            return cached[1]
        if before_lookup is not None:
            before_lookup()
        with self._db.session() as session:
            row = session.scalar(select(ClientKeyRow).where(or_(ClientKeyRow.digest == digest,
                                                                ClientKeyRow.previous_digest == digest)))
        if row is None:
            raise _refused("invalid API key")
        current = hmac.compare_digest(row.digest, digest)
        if not current and not hmac.compare_digest(row.previous_digest or b"", digest):
            raise _refused("invalid API key")
        wall = _now()
        if row.revoked_at is not None:
            raise _refused("this API key has been revoked", "key_revoked")
        # A rotated-out key lives until its grace deadline, and never past the key's own expiry.
        ends = row.expires_at if current else _earliest(row.expires_at, row.previous_expires_at or wall)
        if ends is not None and ends <= wall:
            raise _refused("this API key has expired", "key_expired")
        caller = Caller(id=f"key:{row.id}", limit_key=f"key:{row.id}", name=row.name, rate_limit=row.rate_limit,
                        token_rate_limit=row.token_rate_limit, daily_token_quota=row.daily_token_quota,
                        budget_day_micros=row.budget_day_micros, budget_month_micros=row.budget_month_micros,
                        max_streams=row.max_streams)
        # Never cached past the moment the key (or a rotated-out key's grace) ends.
        left = CACHE_SECONDS if ends is None else min(CACHE_SECONDS, (ends - wall).total_seconds())
        with self._lock:
            self._cache[digest] = (now + left, caller)
        self._touch(row.id, now)
        return caller

    def _touch(self, key_id: int, now: float) -> None:
        # last_used_at is for operators, to the minute: one write a minute per key, not one per request.
        if now - self._touched.get(key_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
            return
        self._touched[key_id] = now
        with self._db.session(write=True) as session:
            session.execute(update(ClientKeyRow).where(ClientKeyRow.id == key_id).values(last_used_at=_now()))


def _refused(message: str, code: str = "invalid_api_key") -> AuthenticationFailed:
    return AuthenticationFailed(message, code=code, headers={"WWW-Authenticate": 'Bearer realm="chatgate"'})


def _now() -> datetime:
    return datetime.now(UTC)


def _earliest(*moments: datetime | None) -> datetime | None:
    found = [m for m in moments if m is not None]
    return min(found) if found else None


def hash_secret(config: Config, instance_path: str) -> bytes:
    """KEY_HASH_SECRET, or a generated development secret; production must set it."""
    if config.KEY_HASH_SECRET is not None:
        return config.KEY_HASH_SECRET.reveal().encode("utf-8")
    if config.APP_ENV == "production" and config.AUTH_MODE == "keys":
        raise ConfigError("KEY_HASH_SECRET: production needs a secret for hashing client keys")
    if config.APP_ENV != "development":
        return secrets.token_bytes(32)  # no key can be checked against it: tests, or production in open mode
    return development_key(Path(instance_path) / "key-hash.secret", "KEY_HASH_SECRET").encode("ascii")
