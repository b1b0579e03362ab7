"""The usage ledger: one row per chat call, totals by day and model. No prompt text.

A call answered from the response cache has a row too, with zero tokens,
zero cost and ``cached`` set; totals count those apart (``cached``).

Rows are written in batches by a background writer, a few times a second,
rather than one transaction per request: on the hot path a row is a list
append. Totals flush first, so a process always sees its own rows; other
processes see them within ``FLUSH_SECONDS``. A crash can lose at most that
much of the ledger, never conversation text.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import case, func, insert, select

from ..errors import APIError
from ..ops.writer import BackgroundWriter
from .database import Database
from .tables import LedgerRow, utcnow

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2
# Rows kept while the database is down; beyond this the oldest are dropped (and counted in the log).
MAX_PENDING = 100_000


class UsageLedger:
    """Writes usage rows and sums them per client."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow):
        self._db = db
        self._clock = clock
        self._pending: list[dict] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._writer = BackgroundWriter("usage-ledger", self.flush, lambda: not self._pending, self._lock,
                                        FLUSH_SECONDS, "usage ledger: flush failed (%s)", log)

    def record(self, *, client_id: str, model: str, prompt_tokens: int, completion_tokens: int,
               latency_ms: float, status: int, filter_action: str, endpoint: str, stream: bool,
               cost_micros: int = 0, cached: bool = False, upstream: str | None = None,
               upstream_model: str | None = None) -> None:
        """Append one row for one call: ``model`` as asked, ``upstream_model`` as sent to ``upstream``."""
        now = self._clock()
        row = dict(client_id=client_id, day=now.strftime("%Y-%m-%d"), model=(model or "")[:255],
                   endpoint=endpoint[:64], stream=bool(stream), status=int(status),
                   filter_action=(filter_action or "none")[:16], prompt_tokens=max(0, int(prompt_tokens)),
                   completion_tokens=max(0, int(completion_tokens)), latency_ms=max(0.0, float(latency_ms)),
                   cost_micros=max(0, int(cost_micros)), cached=bool(cached), created_at=now,
                   upstream=upstream[:64] if upstream else None,
                   upstream_model=upstream_model[:255] if upstream_model else None)
        with self._lock:
            self._pending.append(row)
            self._writer.wake()

    def flush(self) -> int:
        """Write every pending row now, in one transaction; returns how many."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                with self._db.session(write=True) as session:
                    session.execute(insert(LedgerRow), batch)
            except APIError as err:
                with self._lock:
                    self._pending[:0] = batch  # keep them for the next try, oldest first
                    dropped = len(self._pending) - MAX_PENDING
                    if dropped > 0:
                        del self._pending[:dropped]
                        log.error("usage ledger: dropped %d rows while the database was down", dropped)
                log.error("usage ledger: %d rows not written yet (%s)", len(batch), err.code)
                return 0
            return len(batch)

    def totals(self, client_id: str, days: int) -> list[dict]:
        """Requests, tokens and cost per UTC day and model over the last ``days`` days (today included)."""
        return [row for _client, row in self._grouped(days, client_id)]

    def report(self, days: int) -> list[tuple[str, dict]]:
        """Every client's rows as ``totals`` gives them, as (client id, row), by client, day and model."""
        return self._grouped(days, None)

    def spent_since(self, client_id: str, first_day: str) -> int:
        """Micro-dollars the client spent from ``first_day`` (YYYY-MM-DD, UTC) on."""
        self.flush()
        stmt = select(func.sum(LedgerRow.cost_micros)).where(LedgerRow.client_id == client_id,
                                                             LedgerRow.day >= first_day)
        with self._db.session() as session:
            return int(session.scalar(stmt) or 0)

    def sums(self, client_id: str, first_day: str) -> dict:
        """The client's requests, tokens and cost from ``first_day`` (YYYY-MM-DD, UTC) on, all models together."""
        self.flush()
        stmt = select(func.count(), func.sum(LedgerRow.prompt_tokens), func.sum(LedgerRow.completion_tokens),
                      func.sum(LedgerRow.cost_micros)).where(LedgerRow.client_id == client_id,
                                                             LedgerRow.day >= first_day)
        with self._db.session() as session:
            count, prompt, completion, cost = session.execute(stmt).one()
        return {"requests": int(count or 0), "prompt_tokens": int(prompt or 0),
                "completion_tokens": int(completion or 0), "total_tokens": int(prompt or 0) + int(completion or 0),
                "cost_usd": int(cost or 0) / 1_000_000}

    def _grouped(self, days: int, client_id: str | None) -> list[tuple[str, dict]]:
        self.flush()
        since = (self._clock() - timedelta(days=days - 1)).strftime("%Y-%m-%d")
        stmt = (select(LedgerRow.client_id, LedgerRow.day, LedgerRow.model, func.count(),
                       func.sum(LedgerRow.prompt_tokens), func.sum(LedgerRow.completion_tokens),
                       func.sum(LedgerRow.cost_micros), func.sum(case((LedgerRow.cached, 1), else_=0)))
                .where(LedgerRow.day >= since)
                .group_by(LedgerRow.client_id, LedgerRow.day, LedgerRow.model)
                .order_by(LedgerRow.client_id, LedgerRow.day, LedgerRow.model))
        if client_id is not None:
            stmt = stmt.where(LedgerRow.client_id == client_id)
        with self._db.session() as session:
            rows = session.execute(stmt).all()
        return [(client, {"day": day, "model": model, "requests": int(count), "prompt_tokens": int(prompt or 0),
                          "completion_tokens": int(completion or 0),
                          "total_tokens": int(prompt or 0) + int(completion or 0),
                          "cost_usd": int(cost or 0) / 1_000_000, "cached": int(cached or 0)})
                for client, day, model, count, prompt, completion, cost, cached in rows]
