"""Conversations: open, continue, read, list, erase and expire them.

Text is encrypted before it reaches the database and decrypted on the way
out (``app.crypto``); the store never writes plaintext. Replies are stored as
the client saw them, i.e. after the response filter (redacted or blocked).

A conversation is visible only to the client that made it; anything else,
like an expired conversation (no turn for ``CONVERSATION_TTL``), is a 404,
never a 403. Each turn takes the next two sequence numbers from the
conversation row (``turns``) inside the transaction that stores it, so two
concurrent requests on one conversation queue on that row and never lose or
interleave a turn; the (conversation_id, seq) key backs that up.
"""
from __future__ import annotations

import base64
import itertools
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from ..errors import InvalidRequest, NotFound
from . import maintenance
from .crypto import Cipher, NoCipher
from .database import Database
from .tables import ConversationRow, MessageRow, utcnow

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
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
                 clock: Callable[[], datetime] = utcnow):
        self.db = db
        self.cipher = cipher
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def open(self, client_id: str, conversation_id: str | None, system: str | None) -> StoredConversation:
        """A new conversation (id None) or the caller's live one; a given ``system`` replaces the stored one."""
        now = self._clock()
        if conversation_id is None:
            row = ConversationRow(id=secrets.token_urlsafe(16), client_id=client_id, system=self._seal(system),
                                  turns=0, created_at=now, updated_at=now)
            with self.db.session(write=True) as session:
                session.add(row)
            return StoredConversation(row.id, client_id, system or None, now, now, 0)
        with self.db.session(write=system is not None) as session:
            row = self._load(session, client_id, conversation_id, lock=system is not None)
            if system is None:
                return self._conversation(row)
            if row.system is None or self.cipher.decrypt(row.system) != system:
                row.system = self._seal(system)
            return StoredConversation(row.id, client_id, system or None, row.created_at, row.updated_at, row.turns)

    def recent_turns(self, conversation: StoredConversation) -> Iterator[list[dict]]:
        """Whole turns (user message, then reply), newest turn first, decrypted as they are read."""
        rows = self._newest_first(conversation.id)
        for _turn, group in itertools.groupby(rows, key=lambda r: (r.seq + 1) // 2):
            yield [{"role": r.role, "content": self.cipher.decrypt(r.content)} for r in reversed(list(group))]

    def append_turn(self, conversation: StoredConversation, user_text: str, assistant_text: str, *,
                    model: str, finish_reason: str | None, filter_action: str) -> None:
        """Store a user message and its (already filtered) reply as one atomic turn."""
        user, reply = self.cipher.encrypt(user_text), self.cipher.encrypt(assistant_text)
        now = self._clock()
        with self.db.session(write=True) as session:
            # The UPDATE locks the row: a concurrent turn waits here and then gets the next number.
            turns = session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation.id, ConversationRow.client_id == conversation.client_id)
                .values(turns=ConversationRow.turns + 1, updated_at=now)
                .returning(ConversationRow.turns)
                .execution_options(synchronize_session=False)).scalar_one_or_none()
            if turns is None:
                raise not_found()  # erased or purged while the reply was being made
            session.add_all([
                MessageRow(conversation_id=conversation.id, seq=2 * turns - 1, role="user", content=user,
                           created_at=now),
                MessageRow(conversation_id=conversation.id, seq=2 * turns, role="assistant", content=reply,
                           model=(model or "")[:255] or None, finish_reason=finish_reason,
                           filter_action=filter_action, created_at=now),
            ])

    def get(self, client_id: str, conversation_id: str) -> tuple[StoredConversation, list[Message]]:
        """The caller's conversation and all its messages, oldest first."""
        with self.db.session() as session:
            row = self._load(session, client_id, conversation_id)
            rows = session.execute(select(MessageRow.role, MessageRow.content, MessageRow.created_at)
                                   .where(MessageRow.conversation_id == row.id).order_by(MessageRow.seq)).all()
        return self._conversation(row), [Message(r.role, self.cipher.decrypt(r.content), r.created_at) for r in rows]

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
                         _title(self.cipher.decrypt(firsts[r.id])) if r.id in firsts else None) for r in rows]
        return Page(items, encode_cursor(rows[-1].updated_at, rows[-1].id) if more else None)

    # --- helpers

    def _cutoff(self) -> datetime:
        return self._clock() - timedelta(seconds=self.ttl_seconds)

    def _seal(self, text: str | None) -> bytes | None:
        return self.cipher.encrypt(text) if text else None

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
        system = self.cipher.decrypt(row.system) if row.system is not None else None
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


def encode_cursor(updated_at: datetime, conversation_id: str) -> str:
    """An opaque cursor for the page after (updated_at, id)."""
    raw = f"{updated_at.isoformat()}|{conversation_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (updated_at, id) inside a cursor; InvalidRequest if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        stamp, conversation_id = raw.split("|")
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or not ID_PATTERN.fullmatch(conversation_id):
            raise ValueError(cursor)
    except (ValueError, UnicodeDecodeError, TypeError):
        raise InvalidRequest("cursor is not valid; pass next_cursor from the previous page", param="cursor",
                             code="invalid_cursor") from None
    return when, conversation_id
