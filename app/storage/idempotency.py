"""Idempotency keys for /chat: a retried turn gets its stored reply back instead of being stored twice.

A key is the client's own (the ``Idempotency-Key`` header), kept per caller as
a SHA-256 digest next to the digest of the request body, for
``IDEMPOTENCY_TTL``. The row is written in the same transaction as the turn,
so a turn whose commit reached the database but whose acknowledgement did not
is found by the retry. Reusing a key for a different body is a 422.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from ..errors import IdempotencyKeyReused
from .database import Database
from .tables import IdempotencyRow

BATCH = 500


@dataclass(frozen=True)
class Idempotency:
    """One request's key and body, as digests."""

    key_digest: bytes
    request_digest: bytes

    @classmethod
    def of(cls, key: str, body: dict) -> Idempotency:
        """Digests of ``key`` and of ``body`` (as canonical JSON: key order and spacing do not matter)."""
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return cls(hashlib.sha256(key.encode("utf-8")).digest(), hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True)
class StoredReply:
    """What an earlier request with the same key got."""

    conversation_id: str
    reply: str
    meta: dict  # id, model, created, finish_reason, usage, filter


def find(session: Session, client_id: str, idem: Idempotency, cutoff: datetime) -> IdempotencyRow | None:
    """The live row for this caller's key; IdempotencyKeyReused when it was made for another body."""
    row = session.get(IdempotencyRow, (client_id, idem.key_digest))
    if row is None or row.created_at < cutoff:
        return None
    if row.request_digest != idem.request_digest:
        raise IdempotencyKeyReused()
    return row


def record(session: Session, client_id: str, idem: Idempotency, conversation_id: str, seq: int, meta: dict,
           now: datetime, cutoff: datetime) -> None:
    """Remember the key in the turn's own transaction (an expired row with the same key makes way)."""
    session.execute(delete(IdempotencyRow).where(IdempotencyRow.client_id == client_id,
                                                 IdempotencyRow.key_digest == idem.key_digest,
                                                 IdempotencyRow.created_at < cutoff))
    session.add(IdempotencyRow(client_id=client_id, key_digest=idem.key_digest, request_digest=idem.request_digest,
                               conversation_id=conversation_id, seq=seq,
                               response=json.dumps(meta, separators=(",", ":")), created_at=now))


def purge(db: Database, cutoff: datetime) -> int:
    """Forget keys older than ``cutoff``, in short batches; returns how many."""
    purged = 0
    while True:
        with db.session(write=True) as session:
            rows = session.execute(select(IdempotencyRow.client_id, IdempotencyRow.key_digest)
                                   .where(IdempotencyRow.created_at < cutoff).limit(BATCH)).all()
            if rows:
                session.execute(delete(IdempotencyRow)
                                .where(tuple_(IdempotencyRow.client_id, IdempotencyRow.key_digest)
                                       .in_([tuple(r) for r in rows]))
                                .execution_options(synchronize_session=False))
        purged += len(rows)
        if len(rows) < BATCH:
            return purged
