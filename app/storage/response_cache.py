"""The response cache's store: encrypted entries, written in the background, never a reason to fail a request.

An entry is a JSON document ``{"stored_at": <epoch seconds>, "body": <completion>}``
encrypted with the storage cipher (``DATA_ENCRYPTION_KEY``), so neither the
database nor Redis ever holds a reply in plain form. Writes are queued and
written by a background writer a batch at a time (within ``FLUSH_SECONDS``),
so a request pays for a list append; until then this process answers from the
queue itself, and other processes see the entry once it is written. Each
process also keeps the ``RECENT_ENTRIES`` entries it wrote or read last in its
memory (never on disk), so a hot entry is answered without a round trip.

Any failure of the backend (database or Redis down, an entry no configured
key opens) makes the lookup a miss: the request goes upstream as if there were
no cache. The first failure logs one warning and the cache rests for
``REST_SECONDS``, neither reading nor keeping anything (so a hung backend
costs one timeout, not one per request);
``chatgate_cache_requests_total{result="error"}`` counts every failure.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from ..errors import APIError, KeyMissing, StorageUnavailable, StoreDown, Undecryptable, translate
from ..ops.metrics import NULL
from ..ops.writer import BackgroundWriter
from .crypto import Cipher, NoCipher, cache_context

log = logging.getLogger(__name__)

# As often as the usage ledger: each write transaction has a fixed cost that small batches would multiply.
FLUSH_SECONDS = 0.2
REST_SECONDS = 5.0
# Entries waiting for the writer; beyond this (a backend down for long) the oldest are dropped.
MAX_PENDING = 1000
# Entries this process wrote or read lately, kept in its memory: a hot entry costs no round trip.
RECENT_ENTRIES = 256
# How often a process trims the database to CACHE_MAX_ENTRIES (counting rows each batch would cost more than
# the writes); between trims the table may run over by what that time brings.
TRIM_SECONDS = 1.0


@dataclass(frozen=True)
class StoredReply:
    """One cached upstream reply: the completion body and when it was stored."""

    body: dict
    stored_at: float


class CacheStore:
    """Reads and queues writes of encrypted entries over one backend (``cache_backends``)."""

    def __init__(self, backend, cipher: Cipher | NoCipher, *, ttl: int, max_entries: int, metrics=NULL,
                 clock: Callable[[], float] = time.time, also=()):
        self.backend = backend
        # Other backends that may hold entries from an earlier configuration: upkeep covers them too.
        self.backends = (backend, *also)
        self.cipher = cipher
        self.ttl = ttl
        self.max_entries = max_entries
        self.metrics = metrics
        self._clock = clock
        self._pending: dict[str, tuple[str, float]] = {}   # digest -> (plaintext entry, stored_at)
        self._writing: dict[str, tuple[str, float]] = {}   # the batch being written now
        self._recent: OrderedDict[str, tuple[str, float]] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._writer = BackgroundWriter("response-cache", self.flush, lambda: not self._pending, self._lock,
                                        FLUSH_SECONDS, "response cache: write failed (%s)", log)
        self._resting_until = 0.0
        self._down = False
        self._unreadable = False
        self._trimmed = 0.0

    def get(self, digest: str) -> StoredReply | None:
        """The entry under ``digest``, or None (not there, expired, or the backend failing)."""
        now = self._clock()
        with self._lock:
            known = self._recent.get(digest)
            if known is not None:
                if now - known[1] < self.ttl:
                    self._recent.move_to_end(digest)
                else:
                    del self._recent[digest]
                    known = None
            known = known or self._pending.get(digest) or self._writing.get(digest)
        if known is not None:
            return self._open(known[0])
        if now < self._resting_until:
            return None
        try:
            token = self.backend.get(digest, now)
        except Exception as err:
            self._failed(err, "read")
            return None
        self._recovered()
        if token is None:
            return None
        try:
            text = self.cipher.decrypt(token, cache_context(digest))
            reply = self._open(text)
        except (Undecryptable, KeyMissing, ValueError, KeyError, TypeError) as err:
            # A key dropped too early, or a damaged entry: a miss, and the next store overwrites it.
            self.metrics.cache("error")
            if not self._unreadable:
                self._unreadable = True
                log.warning("response cache: an entry could not be read (%s); treated as a miss", type(err).__name__)
            return None
        if now - reply.stored_at >= self.ttl:
            return None  # expiry is enforced on read, whatever the backend still holds
        self._remember(digest, text, reply.stored_at)
        return reply

    def put(self, digest: str, body: dict) -> None:
        """Queue ``body`` to be stored under ``digest``; the writer encrypts and writes it shortly."""
        stored_at = self._clock()
        if stored_at < self._resting_until:
            return  # the backend is down: keep nothing, so every request of an outage is a plain miss
        # Serialised now: the caller goes on to use ``body``, and every hit gets a fresh copy.
        entry = json.dumps({"stored_at": stored_at, "body": body}, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._pending[digest] = (entry, stored_at)
            self._remember(digest, entry, stored_at, locked=True)
            if len(self._pending) > MAX_PENDING:
                del self._pending[next(iter(self._pending))]
            self._writer.wake()

    def flush(self) -> int:
        """Write every queued entry now, in one batch; returns how many were written."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._writing = batch
            try:
                if not batch:
                    return 0
                now = self._clock()
                if now < self._resting_until:
                    return 0  # dropped: a cache may forget, and the backend is known to be down
                try:
                    entries = [(digest, self.cipher.encrypt(entry, cache_context(digest)), stored_at)
                               for digest, (entry, stored_at) in batch.items()]
                    trim = now - self._trimmed >= TRIM_SECONDS
                    self.backend.put(entries, now, self.ttl, self.max_entries, trim=trim)
                except Exception as err:
                    self._failed(err, "write")
                    return 0
                if trim:
                    self._trimmed = now
                self._recovered()
                self.metrics.cache("store", len(batch))
                return len(batch)
            finally:
                with self._lock:
                    self._writing = {}

    def purge_expired(self) -> int:
        """Delete the entries past their lifetime (all of them when the cache is off); returns how many."""
        self.flush()
        now = self._clock()
        return sum(self._operate(backend.purge_expired, now, self.ttl) for backend in self.backends)

    def reencrypt(self) -> int:
        """Re-encrypt every entry under the newest key; returns how many were rewritten."""
        self.flush()
        return sum(self._operate(backend.reencrypt, self._rotate) for backend in self.backends)

    def _rotate(self, digest: str, token: bytes) -> bytes:
        """One entry re-encrypted under the newest key, still bound to its digest."""
        return self.cipher.rotate(token, cache_context(digest))

    def _operate(self, action: Callable[..., int], *args) -> int:
        """An operator's bulk action: Redis out of reach is one StoreDown, for the command to report."""
        try:
            return action(*args)
        except Exception as err:
            if isinstance(err, APIError) or not _outage(err):
                raise
            raise StoreDown(type(err).__name__) from None

    def _remember(self, digest: str, text: str, stored_at: float, locked: bool = False) -> None:
        """Keep an entry in this process's memory, dropping the least recently used past RECENT_ENTRIES."""
        if not locked:
            with self._lock:
                self._remember(digest, text, stored_at, locked=True)
            return
        self._recent[digest] = (text, stored_at)
        self._recent.move_to_end(digest)
        while len(self._recent) > RECENT_ENTRIES:
            self._recent.popitem(last=False)

    def _open(self, text: str) -> StoredReply:
        entry = json.loads(text)
        return StoredReply(entry["body"], float(entry["stored_at"]))

    def _failed(self, err: Exception, what: str) -> None:
        """Count a failed operation; warn once per outage and rest; re-raise what is not an outage."""
        if not _outage(err):
            raise err
        self.metrics.cache("error")
        self._resting_until = self._clock() + REST_SECONDS
        if not self._down:
            self._down = True
            # The type only: a driver's message may quote a statement with user data.
            log.warning("response cache unavailable (%s on %s); serving without it", type(err).__name__, what)

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.info("response cache available again")


def _outage(err: Exception) -> bool:
    """True for failures of the backend itself, which a cache may shrug off.

    Unreachable, timed out, no key, and any error the database driver reports (a table missing
    under an older schema too): a cache that cannot be used is a miss, never a failed request.
    """
    if isinstance(err, (StorageUnavailable, StoreDown, RedisError, OSError, DBAPIError)):
        return True
    return isinstance(translate(err), (StorageUnavailable, StoreDown))
