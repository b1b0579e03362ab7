"""Conversations: open, continue, read, list, erase and expire them.

Text is encrypted before it reaches the database and decrypted on the way
out (``app.crypto``); the store never writes plaintext. Replies are stored as
the client saw them, i.e. after the response filter (redacted or blocked).

A conversation is visible only to the client that made it; anything else,
like an expired conversation (no turn for ``CONVERSATION_TTL``), is a 404,
never a 403. Each turn takes the next two sequence numbers from the
conversation row (``turns``) inside the transaction that stores it, so two
concurrent requests on one conversation queue on that row and never lose or
interleave a turn; the (conversation_id, seq) key backs that up. A turn that
starts a conversation creates it in the same transaction, and a turn sent
with an Idempotency-Key records the key there too (``idempotency.py``).
Every text is encrypted bound to its conversation and position.
"""
from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import NotFound
from . import idempotency, maintenance
from .crypto import Cipher, NoCipher, message_context, system_context
from .cursors import ID_PATTERN, decode_cursor, encode_cursor
from .database import Database
from .idempotency import Idempotency, StoredReply
from .tables import ConversationRow, MessageRow, utcnow

TITLE_CHARS = 60


@dataclass(frozen=True)
class StoredConversation:
    """A conversation as the pipeline sees it (system prompt decrypted)."""

    id: str
    client_id: str
    system: str | None
    created_at: datetime
    updated_at: datetime
    turns: int = 0


@dataclass(frozen=True)
class Message:
    """One stored message, decrypted."""

    role: str
    content: str
    created_at: datetime


@dataclass(frozen=True)
class Summary:
    """One line of a conversation list."""

    id: str
    created_at: datetime
    updated_at: datetime
    turns: int
    title: str | None


@dataclass(frozen=True)
class Page:
    """One page of a conversation list and the cursor of the next (None on the last)."""

    items: list[Summary]
    next_cursor: str | None


def not_found() -> NotFound:
    """The one answer for missing, expired and other clients' conversations."""
    return NotFound("conversation not found", param="conversation_id", code="conversation_not_found")


class ConversationStore:
    """Conversation operations over one database and one cipher."""

    def __init__(self, db: Database, cipher: Cipher | NoCipher, *, ttl_seconds: int,
                 idempotency_ttl: int = 86400, clock: Callable[[], datetime] = utcnow):
        self.db = db
        self.cipher = cipher
        self.ttl_seconds = ttl_seconds
        self.idempotency_ttl = idempotency_ttl
        self._clock = clock

    def open(self, client_id: str, conversation_id: str | None, system: str | None) -> StoredConversation:
        """A new conversation (id None) or the caller's live one; a given ``system`` replaces the stored one."""
        now = self._clock()
        if conversation_id is None:
            new_id = secrets.token_urlsafe(16)
            row = ConversationRow(id=new_id, client_id=client_id, system=self._seal(new_id, system),
                                  turns=0, created_at=now, updated_at=now)
            with self.db.session(write=True) as session:
                session.add(row)
            return StoredConversation(row.id, client_id, system or None, now, now, 0)
        with self.db.session(write=system is not None) as session:
            row = self._load(session, client_id, conversation_id, lock=system is not None)
            if system is None:
                return self._conversation(row)
            if row.system is None or self.cipher.decrypt(row.system, system_context(row.id)) != system:
                row.system = self._seal(row.id, system)
            return StoredConversation(row.id, client_id, system or None, row.created_at, row.updated_at, row.turns)

    def recent_turns(self, conversation: StoredConversation) -> Iterator[list[dict]]:
        """Whole turns (user message, then reply), newest turn first, decrypted as they are read."""
        rows = self._newest_first(conversation.id)
        for _turn, group in itertools.groupby(rows, key=lambda r: (r.seq + 1) // 2):
            yield [{"role": r.role, "content": self.cipher.decrypt(r.content, message_context(conversation.id, r.seq))}
                   for r in reversed(list(group))]

    def append_turn(self, conversation: StoredConversation, user_text: str, assistant_text: str, *,
                    model: str, finish_reason: str | None, filter_action: str) -> None:
        """Store a user message and its (already filtered) reply as one atomic turn of ``conversation``."""
        self.save_turn(conversation, conversation.client_id, None, user_text, assistant_text, model=model,
                       finish_reason=finish_reason, filter_action=filter_action)

    def save_turn(self, conversation: StoredConversation | None, client_id: str, system: str | None,
                  user_text: str, assistant_text: str, *, model: str, finish_reason: str | None,
                  filter_action: str, idempotency_key: Idempotency | None = None,
                  meta: dict | None = None) -> str | StoredReply:
        """Store one turn atomically: a new conversation too when ``conversation`` is None, and the key.

        Returns the conversation id; or, when another request with the same
        Idempotency-Key stored its turn first, that request's stored reply.
        """
        now = self._clock()
        try:
            with self.db.session(write=True) as session:
                if conversation is None:
                    conversation_id, turns = secrets.token_urlsafe(16), 1
                    session.add(ConversationRow(id=conversation_id, client_id=client_id,
                                                system=self._seal(conversation_id, system), turns=1,
                                                created_at=now, updated_at=now))
                else:
                    conversation_id = conversation.id
                    # The UPDATE locks the row: a concurrent turn waits here and then gets the next number.
                    counted = session.execute(
                        update(ConversationRow)
                        .where(ConversationRow.id == conversation_id, ConversationRow.client_id == client_id)
                        .values(turns=ConversationRow.turns + 1, updated_at=now)
                        .returning(ConversationRow.turns)
                        .execution_options(synchronize_session=False)).scalar_one_or_none()
                    if counted is None:
                        raise not_found()  # erased or purged while the reply was being made
                    turns = counted
                user_seq, reply_seq = 2 * turns - 1, 2 * turns
                session.add_all([
                    MessageRow(conversation_id=conversation_id, seq=user_seq, role="user", created_at=now,
                               content=self.cipher.encrypt(user_text, message_context(conversation_id, user_seq))),
                    MessageRow(conversation_id=conversation_id, seq=reply_seq, role="assistant", created_at=now,
                               content=self.cipher.encrypt(assistant_text,
                                                           message_context(conversation_id, reply_seq)),
                               model=(model or "")[:255] or None, finish_reason=finish_reason,
                               filter_action=filter_action),
                ])
                if idempotency_key is not None:
                    session.flush()  # the conversation and its messages before the row that points at them
                    idempotency.record(session, client_id, idempotency_key, conversation_id, reply_seq, meta or {},
                                       now, self._idempotency_cutoff())
        except IntegrityError:
            # A request with the same key (a client's quick retry) stored its turn first: this one stores
            # nothing, and answers what that one stored.
            stored = self.replay(client_id, idempotency_key) if idempotency_key is not None else None
            if stored is None:
                raise
            return stored
        return conversation_id

    def replay(self, client_id: str, key: Idempotency) -> StoredReply | None:
        """The reply stored for this caller's Idempotency-Key (None if none, or expired); 422 for another body."""
        with self.db.session() as session:
            row = idempotency.find(session, client_id, key, self._idempotency_cutoff())
            if row is None:
                return None
            conversation_id, seq, meta = row.conversation_id, row.seq, row.response
            content = session.scalar(select(MessageRow.content).where(MessageRow.conversation_id == conversation_id,
                                                                      MessageRow.seq == seq))
        if content is None:
            return None
        return StoredReply(conversation_id, self.cipher.decrypt(content, message_context(conversation_id, seq)),
                           json.loads(meta))

    def get(self, client_id: str, conversation_id: str) -> tuple[StoredConversation, list[Message]]:
        """The caller's conversation and all its messages, oldest first."""
        with self.db.session() as session:
            row = self._load(session, client_id, conversation_id)
            rows = session.execute(select(MessageRow.seq, MessageRow.role, MessageRow.content, MessageRow.created_at)
                                   .where(MessageRow.conversation_id == row.id).order_by(MessageRow.seq)).all()
        return self._conversation(row), [Message(r.role, self.cipher.decrypt(r.content, message_context(row.id, r.seq)),
                                                 r.created_at) for r in rows]

    def delete(self, client_id: str, conversation_id: str) -> None:
        """Erase the caller's conversation: its rows are deleted, not flagged (expired ones too)."""
        if not isinstance(conversation_id, str) or not ID_PATTERN.fullmatch(conversation_id):
            raise not_found()
        with self.db.session(write=True) as session:
            owned = session.scalar(select(ConversationRow.id).where(
                ConversationRow.id == conversation_id, ConversationRow.client_id == client_id).with_for_update())
            if owned is None:
                raise not_found()
            maintenance.erase(session, [owned])

    def purge_expired(self) -> int:
        """Erase every conversation idle for longer than the TTL; returns how many."""
        return maintenance.purge_idle(self.db, self._cutoff())

    def purge_idempotency_keys(self) -> int:
        """Forget Idempotency-Keys older than IDEMPOTENCY_TTL; returns how many."""
        return idempotency.purge(self.db, self._idempotency_cutoff())

    def reencrypt(self) -> int:
        """Re-encrypt every stored text under the newest key; returns the number of rows rewritten."""
        return maintenance.reencrypt(self.db, self.cipher)

    def list(self, client_id: str, limit: int = 20, cursor: str | None = None) -> Page:
        """The caller's live conversations, most recently active first, ``limit`` per page."""
        stmt = select(ConversationRow.id, ConversationRow.created_at, ConversationRow.updated_at,
                      ConversationRow.turns).where(ConversationRow.client_id == client_id,
                                                   ConversationRow.updated_at >= self._cutoff())
        if cursor is not None:
            when, last_id = decode_cursor(cursor)
            stmt = stmt.where(or_(ConversationRow.updated_at < when,
                                  and_(ConversationRow.updated_at == when, ConversationRow.id < last_id)))
        stmt = stmt.order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc()).limit(limit + 1)
        with self.db.session() as session:
            rows = session.execute(stmt).all()
            more, rows = len(rows) > limit, rows[:limit]
            firsts = dict(session.execute(select(MessageRow.conversation_id, MessageRow.content).where(
                MessageRow.conversation_id.in_([r.id for r in rows]), MessageRow.seq == 1)).all()) if rows else {}
        items = [Summary(r.id, r.created_at, r.updated_at, r.turns,
                         _title(self.cipher.decrypt(firsts[r.id], message_context(r.id, 1))) if r.id in firsts
                         else None) for r in rows]
        return Page(items, encode_cursor(rows[-1].updated_at, rows[-1].id) if more else None)

    # --- helpers

    def _cutoff(self) -> datetime:
        return self._clock() - timedelta(seconds=self.ttl_seconds)

    def _idempotency_cutoff(self) -> datetime:
        return self._clock() - timedelta(seconds=self.idempotency_ttl)

    def _seal(self, conversation_id: str, system: str | None) -> bytes | None:
        return self.cipher.encrypt(system, system_context(conversation_id)) if system else None

    def _load(self, session, client_id: str, conversation_id: str, *, lock: bool = False) -> ConversationRow:
        if not isinstance(conversation_id, str) or not ID_PATTERN.fullmatch(conversation_id):
            raise not_found()
        stmt = select(ConversationRow).where(ConversationRow.id == conversation_id,
                                             ConversationRow.client_id == client_id,
                                             ConversationRow.updated_at >= self._cutoff())
        row = session.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
        if row is None:
            raise not_found()
        return row

    def _conversation(self, row: ConversationRow) -> StoredConversation:
        system = self.cipher.decrypt(row.system, system_context(row.id)) if row.system is not None else None
        return StoredConversation(row.id, row.client_id, system, row.created_at, row.updated_at, row.turns)

    def _newest_first(self, conversation_id: str) -> Iterator:
        # Page through in short reads: history usually needs only the last few turns.
        below = None
        while True:
            stmt = select(MessageRow.seq, MessageRow.role, MessageRow.content).where(
                MessageRow.conversation_id == conversation_id)
            if below is not None:
                stmt = stmt.where(MessageRow.seq < below)
            with self.db.session() as session:
                rows = session.execute(stmt.order_by(MessageRow.seq.desc()).limit(64)).all()
            yield from rows
            if len(rows) < 64:
                return
            below = rows[-1].seq


def _title(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= TITLE_CHARS else words[:TITLE_CHARS - 1].rstrip() + "…"
