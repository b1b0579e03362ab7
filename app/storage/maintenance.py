"""Bulk upkeep over every stored conversation: erasure by id, expiry purge, key rotation.

Each pass works in batches, one short write transaction per batch, so a
large database never holds a lock for long and live traffic keeps flowing.
"""
from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, tuple_

from .crypto import Cipher, NoCipher, message_context, system_context
from .database import Database
from .tables import ConversationRow, IdempotencyRow, MessageRow

BATCH = 200


def erase(session, ids: list[str]) -> None:
    """Delete the conversations ``ids``, their messages and their idempotency keys (removed, not flagged)."""
    session.execute(delete(IdempotencyRow).where(IdempotencyRow.conversation_id.in_(ids))
                    .execution_options(synchronize_session=False))
    session.execute(delete(MessageRow).where(MessageRow.conversation_id.in_(ids))
                    .execution_options(synchronize_session=False))
    session.execute(delete(ConversationRow).where(ConversationRow.id.in_(ids))
                    .execution_options(synchronize_session=False))


def purge_idle(db: Database, cutoff: datetime) -> int:
    """Erase every conversation whose last turn is older than ``cutoff``; returns how many."""
    purged = 0
    while True:
        with db.session(write=True) as session:
            # Locked, so a turn being appended right now waits and then finds the row gone.
            ids = session.scalars(select(ConversationRow.id).where(ConversationRow.updated_at < cutoff)
                                  .limit(BATCH).with_for_update()).all()
            if not ids:
                return purged
            erase(session, list(ids))
            purged += len(ids)


def reencrypt(db: Database, cipher: Cipher | NoCipher) -> int:
    """Re-encrypt every system prompt and message under the newest key; returns the rows rewritten."""
    return _rotate_systems(db, cipher) + _rotate_messages(db, cipher)


def _rotate_systems(db: Database, cipher: Cipher | NoCipher) -> int:
    table = cast(Table, ConversationRow.__table__)
    # Only where unchanged meanwhile: a system prompt replaced since is already under the newest key.
    stmt = (table.update().where(table.c.id == bindparam("k"), table.c.system == bindparam("old"))
            .values(system=bindparam("new")))
    done, after = 0, ""
    while True:
        with db.session(write=True) as session:
            rows = session.execute(select(ConversationRow.id, ConversationRow.system)
                                   .where(ConversationRow.id > after, ConversationRow.system.is_not(None))
                                   .order_by(ConversationRow.id).limit(BATCH)).all()
            if not rows:
                return done
            session.connection().execute(stmt, [{"k": r.id, "old": r.system,
                                                 "new": cipher.rotate(r.system, system_context(r.id))} for r in rows])
        done += len(rows)
        after = rows[-1].id


def _rotate_messages(db: Database, cipher: Cipher | NoCipher) -> int:
    table = cast(Table, MessageRow.__table__)
    stmt = (table.update().where(table.c.conversation_id == bindparam("c"), table.c.seq == bindparam("s"))
            .values(content=bindparam("new")))
    done, position = 0, ("", 0)
    while True:
        with db.session(write=True) as session:
            rows = session.execute(select(MessageRow.conversation_id, MessageRow.seq, MessageRow.content)
                                   .where(tuple_(MessageRow.conversation_id, MessageRow.seq) > tuple_(*position))
                                   .order_by(MessageRow.conversation_id, MessageRow.seq).limit(BATCH)).all()
            if not rows:
                return done
            # Messages are never edited, so no concurrent writer can race this update.
            session.connection().execute(stmt, [
                {"c": r.conversation_id, "s": r.seq,
                 "new": cipher.rotate(r.content, message_context(r.conversation_id, r.seq))} for r in rows])
        done += len(rows)
        position = (rows[-1].conversation_id, rows[-1].seq)
