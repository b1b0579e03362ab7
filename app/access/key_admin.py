"""Client keys as an admin sees them: create, list, show, change, rotate and revoke, each one audited.

The admin API (``app.api.admin``) and the ``keys`` commands call these same
methods, so both check the same fields (``key_fields``) and leave the same
audit trail: one log line and one ``admin_audit`` row per action, naming the
actor (a fingerprint of the admin token, or ``cli``), never a key or a token.

A key's id is what its usage, conversations, limits and budgets are counted
under (``Caller.id``/``limit_key`` are ``key:<id>``), so a rotation changes
the secret and nothing else. Every change drops this worker's cache of
verified keys; the other workers follow within ``keys.CACHE_SECONDS``.
"""
from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import Conflict, NotFound
from ..storage.database import Database
from ..storage.tables import AdminAuditRow, ClientKeyMetaRow, ClientKeyRow, utcnow
from ..storage.usage import UsageLedger
from . import key_fields
from .keys import KeyRing

log = logging.getLogger(__name__)

CLI_ACTOR = "cli"


@dataclass(frozen=True)
class KeyView:
    """One key without its secret: the row, its metadata and its state at ``now``."""

    row: ClientKeyRow
    metadata: dict[str, str]
    state: str  # active, expired or revoked


@dataclass(frozen=True)
class Page:
    """One page of a list and the id to pass as ``after`` for the next (None on the last page)."""

    items: list
    next_after: int | None


def state_of(row: ClientKeyRow, now: datetime) -> str:
    """active, expired or revoked."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


class KeyAdmin:
    """The one service layer for managing client keys."""

    def __init__(self, database: Database, keyring: KeyRing, ledger: UsageLedger,
                 clock: Callable[[], datetime] = utcnow):
        self._db = database
        self._keyring = keyring
        self._ledger = ledger
        self._clock = clock

    def __repr__(self) -> str:
        return "<KeyAdmin>"

    def fingerprint(self, token: str) -> str:
        """Who an admin token is in the audit trail: a keyed hash's first 12 hex digits, never the token."""
        return "admin:" + self._keyring.digest("admin-token:" + token).hex()[:12]

    def create(self, fields: Mapping[str, object], *, actor: str, address: str | None = None) -> tuple[str, KeyView]:
        """Make a key from ``fields`` (key_fields.FIELDS); returns the key, shown this once, and its view."""
        now = self._clock()
        values = key_fields.checked(fields, now, clearing=False)
        meta = values.pop("metadata", {})
        name = values.pop("name", None) or "key-" + secrets.token_hex(6)
        key, prefix, digest = self._keyring.new_key()
        with self._db.session(write=True) as session:
            if session.scalar(select(ClientKeyRow.id).where(ClientKeyRow.name == name)) is not None:
                raise Conflict(f"a key named {name!r} exists already", param="name", code="duplicate")
            row = ClientKeyRow(name=name, prefix=prefix, digest=digest, created_at=now, **values)
            session.add(row)
            session.flush()
            session.add_all(ClientKeyMetaRow(key_id=row.id, name=k, value=v) for k, v in meta.items())
            entry = self._audit(session, actor, "create", row.id, address, sorted(fields), now)
            view = KeyView(row, dict(meta), state_of(row, now))
        _said(entry)
        return key, view

    def find(self, name: str) -> int:
        """The id of the key called ``name``; NotFound when there is none."""
        with self._db.session() as session:
            found = session.scalar(select(ClientKeyRow.id).where(ClientKeyRow.name == name))
        if found is None:
            raise NotFound(f"no key named {name!r}", param="name", code="key_not_found")
        return found

    def keys(self, *, limit: int = 20, after: int | None = None,
             metadata: Mapping[str, str] | None = None) -> Page:
        """Keys by id, ``limit`` at a time after the id ``after``, with every metadata entry given."""
        stmt = select(ClientKeyRow).order_by(ClientKeyRow.id).limit(limit + 1)
        if after is not None:
            stmt = stmt.where(ClientKeyRow.id > after)
        for name, value in (metadata or {}).items():
            stmt = stmt.where(ClientKeyRow.id.in_(select(ClientKeyMetaRow.key_id).where(
                ClientKeyMetaRow.name == name, ClientKeyMetaRow.value == value)))
        now = self._clock()
        with self._db.session() as session:
            rows = list(session.scalars(stmt))
            metas = self._metadata(session, [row.id for row in rows[:limit]])
        views = [KeyView(row, metas.get(row.id, {}), state_of(row, now)) for row in rows[:limit]]
        return Page(views, views[-1].row.id if len(rows) > limit else None)

    def get(self, key_id: int) -> KeyView:
        """One key; NotFound when there is none."""
        with self._db.session() as session:
            row = self._row(session, key_id)
            return KeyView(row, self._metadata(session, [key_id]).get(key_id, {}), state_of(row, self._clock()))

    def usage(self, key_id: int) -> dict:
        """The key's requests, tokens and cost today and this month (UTC), from the usage ledger."""
        today = self._clock()
        client = f"key:{key_id}"
        return {"today": self._ledger.sums(client, today.strftime("%Y-%m-%d")),
                "month": self._ledger.sums(client, today.strftime("%Y-%m-01"))}

    def update(self, key_id: int, fields: Mapping[str, object], *, actor: str,
               address: str | None = None) -> KeyView:
        """Change some fields of an unrevoked key (None clears one); every worker sees it within seconds."""
        now = self._clock()
        values = key_fields.checked(fields, now, clearing=True)
        meta = values.pop("metadata", None)
        with self._db.session(write=True) as session:
            row = self._live_row(session, key_id)
            if "name" in values and values["name"] != row.name and session.scalar(
                    select(ClientKeyRow.id).where(ClientKeyRow.name == values["name"])) is not None:
                raise Conflict(f"a key named {values['name']!r} exists already", param="name", code="duplicate")
            for column, value in values.items():
                setattr(row, column, value)
            if meta is not None:
                session.execute(delete(ClientKeyMetaRow).where(ClientKeyMetaRow.key_id == key_id))
                session.add_all(ClientKeyMetaRow(key_id=key_id, name=k, value=v) for k, v in meta.items())
            entry = self._audit(session, actor, "update", key_id, address, sorted(fields), now)
        _said(entry)
        self._keyring.forget()
        return self.get(key_id)

    def rotate(self, key_id: int, grace_seconds: object = 0, *, actor: str,
               address: str | None = None) -> tuple[str, KeyView]:
        """A new secret for the key; the old one keeps working for ``grace_seconds`` (at most seven days)."""
        grace = key_fields.grace(grace_seconds)
        now = self._clock()
        key, prefix, digest = self._keyring.new_key()
        with self._db.session(write=True) as session:
            row = self._live_row(session, key_id)
            # The deadline is kept even with no grace, so the old key is refused as expired, not unknown.
            row.previous_digest, row.previous_expires_at = row.digest, now + timedelta(seconds=grace)
            row.digest, row.prefix, row.rotated_at = digest, prefix, now
            entry = self._audit(session, actor, "rotate", key_id, address, [f"grace_seconds={grace}"], now)
        _said(entry)
        self._keyring.forget()
        return key, self.get(key_id)

    def revoke(self, key_id: int, *, actor: str, address: str | None = None) -> KeyView:
        """Revoke the key (revoking a revoked key changes nothing); every worker refuses it within seconds."""
        now = self._clock()
        with self._db.session(write=True) as session:
            row = self._row(session, key_id)
            if row.revoked_at is None:
                row.revoked_at = now
            entry = self._audit(session, actor, "revoke", key_id, address, [], now)
        _said(entry)
        self._keyring.forget()
        return self.get(key_id)

    def audit(self, *, limit: int = 50, after: int | None = None, key_id: int | None = None) -> Page:
        """Audit rows oldest first, ``limit`` at a time after the id ``after``, optionally for one key."""
        stmt = select(AdminAuditRow).order_by(AdminAuditRow.id).limit(limit + 1)
        if after is not None:
            stmt = stmt.where(AdminAuditRow.id > after)
        if key_id is not None:
            stmt = stmt.where(AdminAuditRow.key_id == key_id)
        with self._db.session() as session:
            rows = list(session.scalars(stmt))
        return Page(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)

    def _row(self, session: Session, key_id: int) -> ClientKeyRow:
        row = session.get(ClientKeyRow, key_id)
        if row is None:
            raise NotFound(f"no key with id {key_id}", param="id", code="key_not_found")
        return row

    def _live_row(self, session: Session, key_id: int) -> ClientKeyRow:
        row = self._row(session, key_id)
        if row.revoked_at is not None:
            raise Conflict("this key is revoked; create a new one", param="id", code="key_revoked")
        return row

    @staticmethod
    def _metadata(session: Session, ids: list[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        if ids:
            for meta in session.scalars(select(ClientKeyMetaRow).where(ClientKeyMetaRow.key_id.in_(ids))
                                        .order_by(ClientKeyMetaRow.key_id, ClientKeyMetaRow.name)):
                out.setdefault(meta.key_id, {})[meta.name] = meta.value
        return out

    @staticmethod
    def _audit(session: Session, actor: str, action: str, key_id: int, address: str | None, detail: list[str],
               now: datetime) -> tuple:
        """Add the action's audit row; returns what ``_said`` logs once the transaction has committed."""
        # Field names only: values could be anything an admin typed, and the key itself never reaches here.
        text = ",".join(detail)[:512] or None
        session.add(AdminAuditRow(at=now, actor=actor[:64], action=action, key_id=key_id,
                                  address=(address or None) and address[:64], detail=text))
        return action, key_id, actor, address or "-", f" ({text})" if text else ""


def _said(entry: tuple) -> None:
    # Logged after the commit: a failed transaction leaves an error line, never a false record.
    log.info("admin: %s key %s by %s from %s%s", *entry)

def same_token(sent: str, token: str) -> bool:
    """Constant-time comparison of a presented admin token with the configured one."""
    return hmac.compare_digest(sent.encode("utf-8", "replace"), token.encode("utf-8"))
